"""`benchmarks/episode_funnel.py`: each step of the answer is counted where the episode has it, so
an episode broken at one step loses that step (and the ones that depend on it) and no other."""

from __future__ import annotations

import copy
import json
import re

import pytest

from wideseek_env.trace import read_traces


def test_the_funnel_counts_each_step_where_the_episode_breaks(load_benchmark, scripted_traces,
                                                             tmp_path):
    f = load_benchmark("episode_funnel")
    keys = f.world_keys(scripted_traces.parent / "world")
    records = read_traces(scripted_traces / "episodes.jsonl")
    whole = f.funnel(records, keys)
    assert whole["episodes"] == len(records) == 6
    # The scripted teacher: every step of every episode (each subtask names one entity), but
    # for names it has no turns left to delegate (2 subagents × 2 delegations for up to 9 names).
    for step, c in whole["steps"].items():
        if step == "names_delegated":
            assert 0 < c["n"] < c["of"]
        elif step in f.FACT_STEPS:  # counted with the tasks only (next test)
            assert c["of"] == 0
        else:
            assert c["of"] > 0 and c["n"] == c["of"], step

    # Break one subagent's search (another name) and one answer (no table, not parsed).
    broken = copy.deepcopy(records)
    # (A subtask that names no entity -- "find the list of ..." -- is left out of those steps.)
    rec, sub, own = next((r, a, n) for r in broken for a in r["agents"]
                         for n in keys[r["task_id"]]
                         if a["role"] == "subagent" and n in a["messages"][1]["content"])
    call = next(m for m in sub["messages"] if m["role"] == "assistant")
    call["content"] = call["content"].replace(own, "Qorvath")
    other = next(r for r in broken if r is not rec)
    last = [m for m in other["agents"][0]["messages"] if m["role"] == "assistant"][-1]
    last["content"] = re.sub(r"(?m)^\s*\|.*$", "", last["content"])
    other["metrics"] = {**other["metrics"], "parse_ok": False, "item_f1": 0.0}
    out = f.funnel(broken, keys)
    for step, c in out["steps"].items():
        lost = {"subagent_searched_its_entity": 1, "answer_has_table": 1, "answer_parsed": 1,
                "item_f1_above_0": 1}.get(step, 0)
        assert (c["n"], c["of"]) == (whole["steps"][step]["n"] - lost, whole["steps"][step]["of"])
    # A run of another world is an error, not a silent zero.
    with pytest.raises(KeyError, match="not in the world"):
        f.funnel(records, {})

    # The command writes both result files, one column per run.
    assert f.main([str(scripted_traces), "--world", str(scripted_traces.parent / "world"),
                   "--names", "teacher", "--label", "t", "--results", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "episode_funnel_t.json").read_text())
    with_facts = f.funnel(records, keys, f.world_tasks(scripted_traces.parent / "world"))
    assert data["runs"]["teacher"]["steps"] == with_facts["steps"]
    assert {s: c for s, c in with_facts["steps"].items() if s not in f.FACT_STEPS} == {
        s: c for s, c in whole["steps"].items() if s not in f.FACT_STEPS}
    assert data["runs"]["teacher"]["run"] == str(scripted_traces)
    md = (tmp_path / "episode_funnel_t.md").read_text()
    assert "| `teacher` |" in md and "| answer parsed | 1.00 (6/6) |" in md
    with pytest.raises(SystemExit):  # one name per run
        f.main([str(scripted_traces), "--world", str(scripted_traces.parent / "world"),
                "--names", "a", "b", "--label", "t", "--results", str(tmp_path)])


def test_the_fact_steps_lose_exactly_the_facts_a_break_loses(load_benchmark, scripted_traces):
    """A gold fact is counted in a page, a report or the answer only where it is there: an
    emptied report loses that subagent's facts from the report step and no other, and one
    answer cell judged wrong loses one fact from the answer step."""
    f = load_benchmark("episode_funnel")
    tasks = f.world_tasks(scripted_traces.parent / "world")
    keys = f.world_keys(tasks)
    records = read_traces(scripted_traces / "episodes.jsonl")
    # Without the tasks there are no fact steps to count.
    assert all(f.funnel(records, keys)["steps"][s]["of"] == 0 for s in f.FACT_STEPS)
    whole = f.funnel(records, keys, tasks)["steps"]
    # The teacher reads every fact it reports and writes every fact it reports.
    page, report, answer = (whole[s] for s in f.FACT_STEPS)
    assert page["of"] == report["of"] == answer["of"] > 0
    assert page["n"] >= report["n"] >= answer["n"] > 0.9 * page["of"]

    broken = copy.deepcopy(records)
    rec = next(r for r in broken
               if sum(a["role"] == "subagent" for a in r["agents"]) > 0)
    sub = next(a for a in rec["agents"] if a["role"] == "subagent"
               and any(hit[1] for hit in f._facts(a, tasks[rec["task_id"]], rec)))
    reported = sum(hit[1] for hit in f._facts(sub, tasks[rec["task_id"]], rec))
    [m for m in sub["messages"] if m["role"] == "assistant"][-1]["content"] = "Nothing found."
    asked = sub["messages"][1]["content"]
    cell = next(c for row in rec["explanation"]["rows"]  # a fact of an entity `sub` was given
                if any(k["verdict"] == "key" and k["gold"] in asked for k in row["cells"])
                for c in row["cells"] if c["verdict"] == "correct")
    cell["verdict"], cell["score"] = "wrong", 0.0
    out = f.funnel(broken, keys, tasks)["steps"]
    assert out["fact_in_a_page_read"] == page
    assert out["fact_in_its_report"]["n"] == report["n"] - reported
    assert out["fact_in_the_answer"]["n"] == answer["n"] - 1
    assert {s: out[s]["of"] for s in f.FACT_STEPS} == {s: whole[s]["of"] for s in f.FACT_STEPS}
    # A value counts as a whole word only.
    assert f._has("founded in 2012.", "2012") and not f._has("founded in 2012.", "12")
