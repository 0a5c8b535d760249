"""`benchmarks/answer_probe.py`: the lead's conversation is replayed up to its answer, and an
answer counts as right only with the task's columns in its header, as the scorer sees it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from wideseek_env.trace import read_traces

REPO = Path(__file__).resolve().parents[2]


def test_the_teachers_answers_are_right_and_a_header_from_memory_is_not(load_benchmark,
                                                                         scripted_traces):
    from wideseek_env.worlds import World

    probe = load_benchmark("answer_probe")
    tasks = {t.instance_id: t for t in World.load(scripted_traces.parent / "world").tasks("train")}
    records = read_traces(scripted_traces / "episodes.jsonl")
    prompts = probe.answer_prompts(scripted_traces, 100)
    assert [p[0] for p in prompts] == [r["task_id"] for r in records
                                       if r["episode_end"] == "answer"] != []
    for record, (_, messages) in zip(records, prompts):
        lead = record["agents"][0]
        # The replay stops right before the answer: every message of the lead but its last reply.
        assert messages == lead["messages"][:-1] and lead["messages"][-1]["role"] == "assistant"
        assert messages[-1]["role"] == "tool"
        task, answer = tasks[record["task_id"]], lead["messages"][-1]["content"]
        right = probe.judge(task, answer + "<|im_end|>", "<|im_end|>")
        assert right["header_right"] and right["parsed"] and not right["redelegated"]
        assert right["item_f1"] == record["metrics"]["item_f1"]
        # The header from memory: the last column renamed; the scorer then finds no table.
        columns = task.gold.columns
        wrong = answer.replace(" | ".join(columns), " | ".join([*columns[:-1], "Notes"]), 1)
        assert wrong != answer
        verdict = probe.judge(task, wrong)
        assert not verdict["header_right"] and not verdict["parsed"] and verdict["item_f1"] == 0
        again = probe.judge(task, '<tool_call>\n{"name": "delegate"}\n</tool_call>')
        assert again["redelegated"] and again["header"] == [] and not again["parsed"]


def test_the_command_probes_a_real_model_and_refuses_missing_paths(tiny_model_dir, scripted_traces,
                                                                    tmp_path):
    cmd = [sys.executable, str(REPO / "benchmarks" / "answer_probe.py"), "--model",
           str(tiny_model_dir), "--world", str(scripted_traces.parent / "world"), "--split",
           "train", "--episodes", str(scripted_traces), "--tasks", "2", "--max-new-tokens", "8",
           "--label", "tiny", "--results", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    d = json.loads((tmp_path / "answer_probe_tiny.json").read_text())
    assert d["answers"] == len(d["probes"]) == 2 and all(p["reply"] for p in d["probes"])
    assert 0 <= d["parsed"] <= 2 and 0 <= d["header_right"] <= 2
    assert "Header right" in (tmp_path / "answer_probe_tiny.md").read_text()
    missing = subprocess.run([*cmd[:2], "--model", str(tmp_path / "nope"), *cmd[4:]],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "--model" in missing.stderr
