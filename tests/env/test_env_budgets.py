"""Budgets, overflows, malformed actions and programmer errors of WideSeekEnv."""

from __future__ import annotations

import pytest

from wideseek_env.env.parallel import WideSeekEnv
from wideseek_env.env.protocol import FinalMessage
from wideseek_env.env.toy import Document, InMemoryBackend, toy_backend, toy_documents, toy_tasks

TABLE = (
    "```markdown\n| River | Length km | Mouth |\n| --- | --- | --- |\n"
    "| Duskmere | 630 | Northern Sea |\n| Emberlyn | 94 | Duskmere |\n```"
)


def delegate(*subtasks: str) -> dict:
    return {"name": "delegate", "arguments": {"subtasks": list(subtasks)}}


def search(*queries: str) -> dict:
    return {"name": "search", "arguments": {"queries": list(queries)}}


def make(**kwargs) -> WideSeekEnv:
    kwargs.setdefault("tasks", toy_tasks())
    kwargs.setdefault("backend", toy_backend())
    env = WideSeekEnv(**kwargs)
    env.reset(seed=0, options={"task_id": "toy-rivers-kestland"})
    return env


def test_subagent_out_of_turns_is_reported_and_its_last_call_not_run() -> None:
    env = make(subagent_max_turns=2)
    env.step({"lead": delegate("find rivers")})
    obs, *_ = env.step({"sub_0": search("Kestland")})
    assert "last turn" in obs["sub_0"][-1]["content"]
    obs, _, term, trunc, infos = env.step({"sub_0": search("Duskmere")})
    assert len(obs["sub_0"]) == 5  # system, user, call, result, call: the second call was not run
    assert trunc["sub_0"] and not term["sub_0"]
    assert infos["sub_0"]["end_reason"] == "turns" and infos["sub_0"]["status"] == "failed"
    assert infos["sub_0"]["tool_calls"] == {"search": 1, "access": 0}
    assert "failed (ran out of turns (2))" in obs["lead"][-1]["content"]
    assert infos["lead"]["needs_action"]


def test_context_overflow_fails_the_subagent_and_then_the_lead() -> None:
    huge = Document("https://toy.wiki/huge", "Huge page", "word " * 20_000)
    env = make(backend=InMemoryBackend([*toy_documents(), huge]), max_context_tokens=4_000)
    env.step({"lead": delegate("read the huge page", "write a long report")})
    obs, rew, term, trunc, infos = env.step({
        "sub_0": {"name": "access", "arguments": {"urls": [huge.url]}},
        "sub_1": "x" * 14_000,  # a 3,500-token report: fits sub_1's context, not the lead's
    })
    assert trunc["sub_0"] and infos["sub_0"]["end_reason"] == "context"
    assert infos["sub_0"]["context_tokens"] > 4_000
    assert "[Page cut: showing characters 0-25000 of 100000.]" in obs["sub_0"][-1]["content"]
    assert term["sub_1"]
    # the lead received both results, overflowed, and the episode ended by truncation
    assert "exceeded context window" in obs["lead"][-1]["content"]
    assert env.agents == [] and trunc["lead"] and not term["lead"]
    assert infos["lead"]["episode_end"] == "context"
    assert infos["lead"]["parse_ok"] is False and rew["lead"] == 0.0


def test_lead_out_of_turns_is_truncated_and_scored_on_its_latest_table() -> None:
    env = make(lead_max_turns=2)
    draft = "Draft so far:\n" + TABLE + '\n<tool_call>{"name": "delegate", "arguments": {"subtasks": ["check"]}}</tool_call>'
    env.step({"lead": draft})
    obs, *_ = env.step({"sub_0": "all correct"})
    assert "last turn" in obs["lead"][-1]["content"]
    obs, rew, term, trunc, infos = env.step({"lead": delegate("check again")})
    assert env.agents == [] and trunc == {"lead": True} and term == {"lead": False}
    assert infos["lead"]["episode_end"] == "turns"
    assert infos["lead"]["subagents_used"] == 1  # the last-turn delegate call was not run
    assert infos["lead"]["item_f1"] == 1.0 and rew["lead"] == 1.0


def test_malformed_actions_become_counted_error_messages() -> None:
    env = make(width=2, max_subagents=3, lead_max_turns=12)
    cases = [
        ('<tool_call>{"name": "delegate", "arguments": {</tool_call>', "not valid JSON"),
        (search("Kestland"), "unknown tool 'search'; your tools are: delegate"),
        (delegate("a", "b", "c"), "too many subtasks (3); at most 2"),
        (delegate(), "is empty"),
        ({"name": "delegate", "arguments": {"subtasks": "a"}}, "must be a list of strings"),
        ({"name": "delegate", "arguments": {"subtasks": ["a", 7]}}, "subtasks[1] must be a non-empty string"),
        ({"nme": "delegate"}, '"name"'),
    ]
    for i, (action, fragment) in enumerate(cases, 1):
        obs, *_, infos = env.step({"lead": action})
        assert obs["lead"][-1]["role"] == "tool"
        assert obs["lead"][-1]["content"].startswith("Error: ")
        assert fragment in obs["lead"][-1]["content"], action
        assert infos["lead"]["format_errors"] == i and infos["lead"]["turns"] == i
    assert infos["lead"]["tool_calls"] == {"delegate": 0}
    assert obs["lead"][-2]["content"].startswith("{")  # a malformed structured action is logged
    env.step({"lead": delegate("a", "b")})
    env.step({"sub_0": "r", "sub_1": "r"})
    obs, *_ = env.step({"lead": delegate("c", "d")})
    assert "only 1 subagent(s) are left" in obs["lead"][-1]["content"]
    env.step({"lead": delegate("c")})
    assert env.agents == ["lead", "sub_2"]


def test_programmer_errors_raise_and_leave_no_trace() -> None:
    env = WideSeekEnv(tasks=toy_tasks(), backend=toy_backend(), max_subagents=4)
    with pytest.raises(RuntimeError, match="before reset"):
        env.step({"lead": "x"})
    env.reset(seed=0)
    with pytest.raises(ValueError, match="unknown agent 'boss'"):
        env.step({"boss": "x"})
    with pytest.raises(ValueError, match="has not been started"):
        env.step({"sub_3": "x"})
    with pytest.raises(TypeError, match="got int"):
        env.step({"lead": 42})
    with pytest.raises(ValueError, match="no action"):
        env.step({})
    env.step({"lead": delegate("a", "b")})
    with pytest.raises(ValueError, match="no action"):
        env.step({"lead": "blocked, so this is ignored"})
    with pytest.raises(TypeError, match="got bytes"):
        env.step({"sub_0": "fine", "sub_1": b"bytes"})
    obs, *_, infos = env.step({"sub_0": "report", "sub_1": None})  # sub_1 waits
    assert env.agents == ["lead", "sub_1"] and len(obs["sub_1"]) == 2
    assert infos["sub_0"]["turns"] == 1  # the step that raised did not count
    with pytest.raises(ValueError, match="already finished"):
        env.step({"sub_0": "again"})
    *_, infos = env.step({"sub_1": FinalMessage("report 2")})
    assert infos["sub_1"]["turns"] == 1 and infos["lead"]["needs_action"]
    with pytest.raises(ValueError, match="unknown agent or role"):
        env.tool_schemas("boss")


def test_reward_metric_and_format_penalty() -> None:
    half = "```markdown\n| River | Length km | Mouth |\n| --- | --- | --- |\n| Duskmere | 630 | Northern Sea |\n```"
    for kwargs, expected in [
        ({}, None),
        ({"reward_metric": "row_f1"}, "row_f1"),
        ({"format_error_penalty": 0.25}, "penalised"),
    ]:
        env = make(**kwargs)
        env.step({"lead": "<tool_call>oops</tool_call>"})
        *_, infos = env.step({"lead": half})
        info = infos["lead"]
        if expected is None:
            assert info["reward"] == info["item_f1"]
        elif expected == "row_f1":
            assert info["reward"] == info["row_f1"]
        else:
            assert info["reward"] == pytest.approx(info["item_f1"] - 0.25)
        assert 0.0 < info["item_f1"] < 1.0


def test_config_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="width must be a positive int"):
        WideSeekEnv(tasks=toy_tasks(), backend=toy_backend(), width=0)
    with pytest.raises(ValueError, match="subagents cannot delegate"):
        WideSeekEnv(tasks=toy_tasks(), backend=toy_backend(), subagent_tools=("delegate",))
    with pytest.raises(TypeError, match="unexpected keyword"):
        WideSeekEnv(tasks=toy_tasks(), backend=toy_backend(), widht=3)
    with pytest.raises(ValueError, match="no tasks"):
        WideSeekEnv(tasks=[], backend=toy_backend())
    with pytest.raises(KeyError, match="nope"):
        make().reset(options={"task_id": "nope"})
