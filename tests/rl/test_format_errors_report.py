"""`benchmarks/format_errors.py`: every format error the env counted is reported once, under its
role and its kind, on episodes the env itself played."""

from __future__ import annotations

import json

from wideseek_env.trace import read_traces


class BreaksSomeCalls:
    """The scripted teacher, except that every lead's first action delegates one subtask more
    than the width allows and every subagent's first action is not JSON."""

    def __init__(self, inner):
        self.inner, self.seen = inner, set()

    def act(self, requests):
        from wideseek_env.policies.base import AgentAction

        actions = self.inner.act(requests)
        out = []
        for req, act in zip(requests, actions):
            first = req.key not in self.seen
            self.seen.add(req.key)
            if first and req.role == "lead":
                act = AgentAction(req.key, {"name": "delegate",
                                            "arguments": {"subtasks": ["a", "b", "c"]}})
            elif first:
                act = AgentAction(req.key, '<tool_call>{"name": "search", "arguments": '
                                           '{"queries": ["x"</tool_call>')
            out.append(act)
        return out


def test_each_counted_error_is_reported_under_its_role_and_kind(load_benchmark, tmp_path):
    from wideseek_env.policies.scripted import ScriptedPolicy
    from wideseek_env.runner.evaluate import EvalSpec, evaluate
    from wideseek_env.worlds import World, build_small_world

    report = load_benchmark("format_errors")
    world = World.load(build_small_world(tmp_path / "world"))
    spec = EvalSpec(width=2, lead_max_turns=4, subagent_max_turns=4, max_context_tokens=4096)
    evaluate(spec, world.tasks("train")[:3], world.backend(),
             BreaksSomeCalls(ScriptedPolicy(entities_per_subtask=1)), tmp_path / "run",
             policy_info={"name": "breaks"}, progress=False)
    records = read_traces(tmp_path / "run" / "episodes.jsonl")
    out = report.count(records)
    subagents = sum(a["role"] == "subagent" for r in records for a in r["agents"])
    assert out["episodes"] == 3 and subagents > 0
    # One error per lead and one per subagent, each under its own kind.
    assert out["roles"]["lead"]["format_errors"] == 3
    assert out["roles"]["subagent"]["format_errors"] == subagents
    kinds = {(k["role"], k["kind"]): k["n"] for k in out["kinds"]}
    assert kinds == {("lead", "delegate: too many subtasks; at most N per call."): 3,
                     ("subagent", "The tool call is not valid JSON."): subagents}
    turns = sum(a["turns"] for r in records for a in r["agents"])
    assert out["turns"] == turns and out["share"] == (3 + subagents) / turns

    # An error counted on an agent's last turn has no message: it is reported, as such.
    records[0]["agents"][0]["format_errors"] += 1
    again = report.count(records)
    assert {(k["role"], k["kind"]): k["n"] for k in again["kinds"]}[
        ("lead", report.NO_MESSAGE)] == 1

    # The command writes both files, one column per run.
    assert report.main([str(tmp_path / "run"), "--names", "broken", "--label", "t",
                        "--results", str(tmp_path / "results")]) == 0
    saved = json.loads((tmp_path / "results" / "format_errors_t.json").read_text())
    assert saved["runs"]["broken"]["format_errors"] == 3 + subagents
    assert "| lead turns |" in (tmp_path / "results" / "format_errors_t.md").read_text()
