"""The runner on a real small world: complete traces, resume after a crash, Avg/Max/Pass@N,
cross-episode batching, determinism, robustness under a random policy, and the CLI."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from statistics import fmean

import pytest

from wideseek_env.cli import main
from wideseek_env.policies.base import AgentAction, AgentRequest
from wideseek_env.policies.random import RandomPolicy
from wideseek_env.policies.scripted import ScriptedPolicy
from wideseek_env.runner import EvalSpec, evaluate, run_episodes
from wideseek_env.runner.evaluate import make_env_factory
from wideseek_env.runner.loop import slim
from wideseek_env.scoring.explain import ScoreExplanation, explain_response
from wideseek_env.scoring.scorer import score_response
from wideseek_env.trace import TraceWriter, read_traces, render_episode
from wideseek_env.worlds import World, build_small_world


@pytest.fixture(scope="module")
def world_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_small_world(tmp_path_factory.mktemp("world") / "small")


@pytest.fixture(scope="module")
def world(world_path: Path) -> World:
    return World.load(world_path)


class Recording:
    """Wraps a policy and records the keys of every batch it is asked for."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.batches: list[list] = []

    def act(self, requests: Sequence[AgentRequest]) -> list[AgentAction]:
        self.batches.append([r.key for r in requests])
        return self.inner.act(requests)


class QuitOnOddRepeats:
    """Scripted on even repeats; on odd repeats the lead answers at once with an empty table."""

    def __init__(self) -> None:
        self.scripted = ScriptedPolicy()

    def act(self, requests: Sequence[AgentRequest]) -> list[AgentAction]:
        out = self.scripted.act(requests)
        return [AgentAction(r.key, "I give up.") if r.key[1] % 2 and r.role == "lead" else a
                for r, a in zip(requests, out)]


def _run(world: World, tasks, policy, path: Path, **kw):
    spec = EvalSpec(width=kw.pop("width", 4))
    return run_episodes(make_env_factory(spec, tasks, world.backend()), tasks, policy,
                        trace_path=path, progress=False, **kw)


def test_traces_are_complete_and_scores_match_the_answers(world: World, tmp_path: Path) -> None:
    tasks = world.tasks("test")[:5]
    outcome = _run(world, tasks, ScriptedPolicy(), tmp_path / "t.jsonl", repeats=2)
    records = read_traces(tmp_path / "t.jsonl")
    assert [slim(r) for r in records] == list(outcome.records)  # in memory: no conversations
    assert sorted((r["task_id"], r["repeat"]) for r in records) == sorted(
        (t.instance_id, k) for t in tasks for k in range(2))
    by_id = {t.instance_id: t for t in tasks}
    for r in records:
        lead = r["agents"][0]
        assert lead["id"] == "lead" and lead["parent"] is None
        assert lead["messages"][-1]["content"] == r["response"]
        assert r["score"] == score_response(by_id[r["task_id"]], r["response"]).as_dict()
        # Eval traces carry the cell-level explanation of that same score.
        expected = explain_response(by_id[r["task_id"]], r["response"])[1]
        assert ScoreExplanation.from_dict(r["explanation"]) == expected
        assert sum(a["generated_tokens"] for a in r["agents"]) == r["cost"]["generated_tokens"]
        subs = [a for a in r["agents"] if a["parent"] == "lead"]
        assert len(subs) == r["cost"]["subagents_used"] > 0
        for a in subs:  # every agent's whole conversation: system, subtask, turns, report
            roles = [m["role"] for m in a["messages"]]
            assert roles[:2] == ["system", "user"] and roles[-1] == "assistant"
            assert len([x for x in roles if x == "assistant"]) == a["turns"]
        assert r["cost"]["policy_calls"] == sum(a["turns"] for a in r["agents"]) == r["cost"]["total_turns"]
        assert r["cost"]["total_tool_calls"] == sum(r["cost"]["tool_calls"].values()) > 0
        assert r["cost"]["critical_path_turns"] <= r["cost"]["total_turns"]
    text = render_episode(records[0])
    assert "lead [lead" in text and "sub_0 [subagent" in text and "← delegate" in text


def test_explanations_can_be_left_out_and_change_no_number(world: World, tmp_path: Path) -> None:
    tasks = world.tasks("test")[:3]
    spec = EvalSpec(width=2)
    runs = {}
    for explain in (True, False):
        path = tmp_path / f"{explain}.jsonl"
        run_episodes(make_env_factory(spec, tasks, world.backend(), explain=explain), tasks,
                     ScriptedPolicy(), trace_path=path, progress=False)
        runs[explain] = read_traces(path)
    assert all(r["explanation"] is None for r in runs[False])
    assert all(r["explanation"]["task_id"] == r["task_id"] for r in runs[True])
    assert [{k: v for k, v in r.items() if k != "explanation"} for r in runs[True]] == [
        {k: v for k, v in r.items() if k != "explanation"} for r in runs[False]]


def test_resume_skips_finished_episodes_and_survives_a_torn_line(world: World, tmp_path: Path) -> None:
    tasks = world.tasks("test")[:6]
    path = tmp_path / "t.jsonl"
    first = _run(world, tasks, ScriptedPolicy(), path)
    assert (first.ran, first.skipped) == (6, 0)
    lines = path.read_bytes().splitlines(keepends=True)
    # Keep 3 complete records and half of the 4th, as a crash in mid-write would.
    path.write_bytes(b"".join(lines[:3]) + lines[3][: len(lines[3]) // 2])
    policy = Recording(ScriptedPolicy())
    second = _run(world, tasks, policy, path)
    assert (second.ran, second.skipped) == (3, 3)
    kept = {json.loads(line)["task_id"] for line in lines[:3]}
    asked = {key[0] for batch in policy.batches for key in batch}
    assert asked == {t.instance_id for t in tasks} - kept
    assert sorted(second.records, key=lambda r: r["task_id"]) == sorted(
        first.records, key=lambda r: r["task_id"])
    assert len(read_traces(path)) == 6
    third = _run(world, tasks, Recording(ScriptedPolicy()), path)
    assert (third.ran, third.skipped) == (0, 6)


def test_avg_max_pass_at_n(world: World, tmp_path: Path) -> None:
    tasks = world.tasks("test")[:4]
    summary = evaluate(EvalSpec(width=4, repeats=3), tasks, world.backend(), QuitOnOddRepeats(),
                       tmp_path / "run", progress=False)
    records = read_traces(tmp_path / "run" / "episodes.jsonl")
    per_task: dict[str, list[dict]] = {}
    for r in records:
        per_task.setdefault(r["task_id"], []).append(r["metrics"])
    assert all(len(v) == 3 for v in per_task.values())
    odd = [r["metrics"]["item_f1"] for r in records if r["repeat"] % 2]
    assert odd and all(f == 0 for f in odd)
    s = summary["scores"]
    assert s["item_f1_avg@n"] == pytest.approx(fmean(fmean(m["item_f1"] for m in v) for v in per_task.values()))
    assert s["item_f1_max@n"] == pytest.approx(fmean(max(m["item_f1"] for m in v) for v in per_task.values()))
    assert s["success_pass@n"] == pytest.approx(fmean(any(m["success"] for m in v) for v in per_task.values()))
    assert s["item_f1_max@n"] > s["item_f1_avg@n"] > 0
    on_disk = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert on_disk["scores"] == s and on_disk["episodes"] == 12


def test_one_policy_call_batches_agents_of_several_episodes(world: World, tmp_path: Path) -> None:
    tasks = world.tasks("test")[:6]
    policy = Recording(ScriptedPolicy())
    together = _run(world, tasks, policy, tmp_path / "a.jsonl", episodes_at_once=6, width=8)
    assert max(len({k[0] for k in batch}) for batch in policy.batches) == 6
    assert max(len(batch) for batch in policy.batches) > 6
    _run(world, tasks, ScriptedPolicy(), tmp_path / "b.jsonl", episodes_at_once=1, width=8)
    assert together.ran == 6
    key = lambda r: (r["task_id"], r["repeat"])  # noqa: E731
    full_a, full_b = read_traces(tmp_path / "a.jsonl"), read_traces(tmp_path / "b.jsonl")
    assert sorted(full_a, key=key) == sorted(full_b, key=key)  # every message the same


def test_random_policy_runs_without_crashing_and_is_reproducible(world: World, tmp_path: Path) -> None:
    tasks = world.tasks("test")[:5]
    key = lambda r: (r["task_id"], r["repeat"])  # noqa: E731
    runs = {}
    for name, seed, at_once in (("a", 3, 16), ("b", 3, 3), ("c", 4, 16)):
        _run(world, tasks, RandomPolicy(seed=seed), tmp_path / f"{name}.jsonl", repeats=2,
             episodes_at_once=at_once)
        runs[name] = sorted(read_traces(tmp_path / f"{name}.jsonl"), key=key)
    assert runs["a"] == runs["b"]
    assert sum(r["cost"]["format_errors"] for r in runs["a"]) > 0
    assert sum(r["cost"]["tool_calls"].get("search", 0) for r in runs["a"]) > 0
    assert [r["agents"] for r in runs["c"]] != [r["agents"] for r in runs["a"]]


def test_single_agent_env_through_the_runner(world: World, tmp_path: Path) -> None:
    tasks = world.tasks("test")[:3]
    summary = evaluate(EvalSpec(mode="single", max_turns=30), tasks, world.backend(),
                       ScriptedPolicy(), tmp_path / "run", progress=False)
    records = read_traces(tmp_path / "run" / "episodes.jsonl")
    assert [a["role"] for r in records for a in r["agents"]] == ["single"] * 3
    assert all(r["cost"]["critical_path_turns"] == r["cost"]["total_turns"] <= 30 for r in records)
    assert summary["scores"]["item_f1"] > 0.3


def test_a_bad_policy_or_a_changed_run_is_refused(world: World, tmp_path: Path) -> None:
    tasks = world.tasks("test")[:2]

    class Short:
        def act(self, requests):
            return []

    with pytest.raises(RuntimeError, match="returned 0 actions for 2 requests"):
        _run(world, tasks, Short(), tmp_path / "x.jsonl")
    evaluate(EvalSpec(width=2), tasks, world.backend(), ScriptedPolicy(), tmp_path / "run",
             policy_info={"name": "scripted"}, progress=False)
    with pytest.raises(ValueError, match=r"different settings: spec\.width \(2 in the folder, 4 now\)"):
        evaluate(EvalSpec(width=4), tasks, world.backend(), ScriptedPolicy(), tmp_path / "run",
                 policy_info={"name": "scripted"}, progress=False)


def test_eval_and_trace_commands(world_path: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    argv = ["eval", "--world", str(world_path), "--split", "test", "--policy", "scripted",
            "--width", "4", "--repeats", "2", "--limit", "3", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "3 tasks x 2 repeat(s) = 6 episodes" in printed and "item F1   avg@2" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == 6 and summary["world"]["tasks"] == 3
    assert main(argv) == 0  # resumes: nothing left to run
    assert json.loads((out / "summary.json").read_text())["episodes_run_now"] == 0
    assert main(["trace", "show", str(out / "episodes.jsonl"), "--index", "1"]) == 0
    shown = capsys.readouterr().out
    assert "lead [lead" in shown and "end: answer" in shown
    assert main(["trace", "show", str(out / "episodes.jsonl"), "--index", "99"]) == 2


@pytest.mark.parametrize("tail", [b"", b'{"task_id": "x", "rep', b"z" * 200_000])
def test_trace_writer_cuts_a_torn_tail(tmp_path: Path, tail: bytes) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"task_id": "a"}\n{"task_id": "b"}\n' + tail)
    assert [r["task_id"] for r in read_traces(path)] == ["a", "b"]
    with TraceWriter(path) as writer:
        writer.append({"task_id": "c", "text": "ünïcode"})
    assert read_traces(path) == [{"task_id": "a"}, {"task_id": "b"}, {"task_id": "c", "text": "ünïcode"}]
    path.write_bytes(b'{"task_id": "a"}\nnot json\n')
    with pytest.raises(ValueError, match=r"t\.jsonl:2"):
        read_traces(path)
