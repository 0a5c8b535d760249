"""`benchmarks/name_copy_probe.py`: the probes put each name where the episode has it and count a
hit only for a name copied whole; the command runs on a real model and writes its results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_a_model_that_echoes_its_prompt_copies_every_name_and_one_that_does_not_none(
        load_benchmark, tiny_model_dir, scripted_traces, monkeypatch):
    probe = load_benchmark("name_copy_probe")
    world = scripted_traces.parent / "world"
    seen: list[list[dict[str, str]]] = []

    def echo(model, tokenizer, messages, max_new_tokens):
        seen.append(messages)
        return messages[-1]["content"]

    monkeypatch.setattr(probe, "greedy", echo)
    names = ["Qorvath", "Benson Municipal Airport"]
    d = probe.probe(tiny_model_dir, world, scripted_traces, names=names, tasks=2, system=False)
    assert (d["subagent"]["copied"], d["subagent"]["of"]) == (2, 2)
    assert d["lead"]["of"] >= 2 and d["lead"]["copied"] == d["lead"]["of"]
    # The name replaced the subtask's entity (the trace's own entity is gone), no system prompt.
    first = seen[0]
    assert len(first) == 1 and "Entities:\n- Qorvath\n" in first[0]["content"]
    trace_entity = probe.ENTITY_LINE.search(
        probe.first_episode(scripted_traces)["agents"][1]["messages"][1]["content"]).group(2)
    assert trace_entity not in first[0]["content"]
    # The lead's turns have the lead's system prompt and the task's query.
    assert [m["role"] for m in seen[2]] == ["system", "user"]
    assert "delegate" in seen[2][0]["content"]

    seen.clear()  # the lead without its system prompt: the query alone
    d = probe.probe(tiny_model_dir, world, scripted_traces, names=names, tasks=2, system=True,
                    lead_system=False)
    assert [m["role"] for m in seen[2]] == ["user"] and d["lead"]["copied"] == d["lead"]["of"]
    assert [m["role"] for m in seen[0]] == ["system", "user"]
    assert "without its system prompt" in probe.markdown(d)
    monkeypatch.setattr(probe, "greedy", lambda *a: "Entities:\n- Qorvat")  # not whole: no hit
    d = probe.probe(tiny_model_dir, world, scripted_traces, names=names, tasks=2, system=True)
    assert d["subagent"]["copied"] == 0 and d["lead"]["copied"] == 0


def test_the_command_probes_a_real_model_and_refuses_missing_paths(tiny_model_dir, scripted_traces,
                                                                    tmp_path):
    cmd = [sys.executable, str(REPO / "benchmarks" / "name_copy_probe.py"), "--model",
           str(tiny_model_dir), "--world", str(scripted_traces.parent / "world"), "--traces",
           str(scripted_traces), "--tasks", "1", "--names", "Mali", "--label", "tiny",
           "--results", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    d = json.loads((tmp_path / "name_copy_probe_tiny.json").read_text())
    assert d["subagent"]["of"] == 1 and len(d["subagent"]["probes"][0]["reply"]) > 0
    assert 0 <= d["lead"]["copied"] <= d["lead"]["of"]
    assert "Name-copy probe" in (tmp_path / "name_copy_probe_tiny.md").read_text()
    bad = subprocess.run([*cmd[:3], str(tmp_path / "nope"), *cmd[4:]], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and "nope" in bad.stderr and "--model" in bad.stderr
