"""MistakesPolicy: deliberate tool-call mistakes the env reads as format errors, never on an
agent's last turn, the same under a seed, and recovered from by the scripted policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wideseek_env.cli import main
from wideseek_env.policies.mistakes import KINDS, MistakesPolicy
from wideseek_env.policies.scripted import ScriptedPolicy
from wideseek_env.runner import EvalSpec, evaluate
from wideseek_env.trace import read_traces
from wideseek_env.worlds import World, build_small_world

SPEC = EvalSpec(width=2, lead_max_turns=3, subagent_max_turns=4, max_context_tokens=4096)
ERROR = {"json": "Error: The tool call is not valid JSON",
         "argument": "unexpected argument",
         "two_calls": "Error: Found 2 tool calls",
         "too_many": "too many subtasks"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World.load(build_small_world(tmp_path_factory.mktemp("world") / "small"))


def play(world: World, policy, out: Path, n: int = 6) -> list[dict]:
    evaluate(SPEC, world.tasks("train")[:n], world.backend(), policy, out, progress=False)
    return read_traces(out / "episodes.jsonl")


def replies_and_answers(agent: dict) -> list[tuple[str, dict | None]]:
    """Each reply of an agent with the message that answered it (None: none did)."""
    m = agent["messages"]
    return [(x["content"], m[i + 1] if i + 1 < len(m) else None)
            for i, x in enumerate(m) if x["role"] == "assistant"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_is_a_format_error_of_its_own_and_never_on_the_last_turn(world, tmp_path,
                                                                            kind):
    records = play(world, MistakesPolicy(ScriptedPolicy(entities_per_subtask=1), 1.0,
                                         kinds=(kind,)), tmp_path / kind)
    errors = 0
    for record in records:
        for agent in record["agents"]:
            pairs = replies_and_answers(agent)
            for k, (reply, answer) in enumerate(pairs):
                last = k + 1 == agent["max_turns"]
                applies = kind != "too_many" or agent["role"] == "lead"
                if answer is not None and answer["role"] == "tool":
                    # rate 1: every call the kind applies to is a mistake, except on the last turn
                    assert (answer["name"] == "error") == applies, (kind, reply, answer)
                if answer is not None and answer["name"] == "error":
                    assert ERROR[kind] in answer["content"], answer["content"]
                    assert not last
                    errors += 1
            assert agent["format_errors"] == sum(
                a is not None and a["name"] == "error" for _, a in pairs)
    assert errors >= 6


def test_mistakes_are_seeded_recovered_from_and_off_at_rate_zero(world, tmp_path):
    inner = ScriptedPolicy(entities_per_subtask=1)
    clean = play(world, inner, tmp_path / "clean")
    zero = play(world, MistakesPolicy(inner, 0.0, seed=3), tmp_path / "zero")
    assert [r["agents"] for r in zero] == [r["agents"] for r in clean]
    a = play(world, MistakesPolicy(inner, 0.3, seed=3), tmp_path / "a")
    b = play(world, MistakesPolicy(inner, 0.3, seed=3), tmp_path / "b")
    c = play(world, MistakesPolicy(inner, 0.3, seed=4), tmp_path / "c")
    assert [r["agents"] for r in a] == [r["agents"] for r in b]
    assert [r["agents"] for r in a] != [r["agents"] for r in c]
    errors = recovered = 0
    for record in a:
        for agent in record["agents"]:
            pairs = replies_and_answers(agent)
            for k, (_reply, answer) in enumerate(pairs):
                if answer is not None and answer["name"] == "error":
                    errors += 1
                    following = pairs[k + 1][1] if k + 1 < len(pairs) else None
                    recovered += following is None or following["name"] != "error"
    assert errors >= 5 and recovered >= 0.6 * errors
    f1 = [r["metrics"]["item_f1"] for r in a]
    assert sum(f1) / len(f1) >= 0.5 * sum(r["metrics"]["item_f1"] for r in clean) / len(clean)


def test_the_cli_records_the_mistakes_and_refuses_a_rate_outside_0_1(world, tmp_path, capsys):
    args = ["eval", "--world", str(world.path), "--split", "train", "--limit", "2", "--width", "2",
            "--lead-turns", "3", "--subagent-turns", "4", "--entities-per-subtask", "1",
            "--no-progress"]
    assert main([*args, "--mistakes", "1.5", "--out", str(tmp_path / "bad")]) == 2
    assert "--mistakes" in capsys.readouterr().err
    assert main([*args, "--mistakes", "0.5", "--policy-seed", "2",
                 "--out", str(tmp_path / "run")]) == 0
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert {"mistakes": 0.5, "mistakes_seed": 2}.items() <= info["policy"].items()


class AlwaysSearch:
    """An inner policy that calls `search` on every turn, the last one included."""

    def act(self, requests):
        from wideseek_env.policies.base import AgentAction
        return [AgentAction(r.key, {"name": "search", "arguments": {"queries": ["x"]}})
                for r in requests]


def test_a_call_on_the_last_turn_is_left_as_it_is():
    from wideseek_env.policies.base import AgentRequest

    policy = MistakesPolicy(AlwaysSearch(), 1.0)
    requests = [AgentRequest(key=(0, f"sub_{t}"), role="subagent", messages=(), tools=(),
                             info={"turns": t, "max_turns": 4}) for t in range(4)]
    actions = [a.action for a in policy.act(requests)]
    assert all(isinstance(a, str) for a in actions[:3])  # mistakes, written as text
    assert actions[3] == {"name": "search", "arguments": {"queries": ["x"]}}
