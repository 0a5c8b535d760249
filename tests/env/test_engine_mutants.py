"""Episode-engine cases that mutation testing found unguarded (benchmarks/mutation.py, group
"engine"): format errors on an agent's last turn and the penalty they cost, tool-error counts,
``ToolCall``/``FinalMessage`` objects as actions, and non-ASCII structured actions."""

from __future__ import annotations

import pytest

from wideseek_env.env.parallel import WideSeekEnv
from wideseek_env.env.protocol import FinalMessage, ToolCall
from wideseek_env.env.single_agent import WideSeekSingleAgentEnv
from wideseek_env.env.toy import toy_backend, toy_tasks

TABLE = ("| River | Length km | Mouth |\n| --- | --- | --- |\n"
         "| Duskmere | 630 | Northern Sea |\n| Emberlyn | 94 | Duskmere |")
BAD_CALL = "<tool_call>{not json</tool_call>"


def make(**kwargs) -> WideSeekEnv:
    env = WideSeekEnv(tasks=toy_tasks(), backend=toy_backend(), **kwargs)
    env.reset(seed=0, options={"task_id": "toy-rivers-kestland"})
    return env


def test_a_format_error_on_the_last_turn_is_counted_and_penalised() -> None:
    env = make(lead_max_turns=3, format_error_penalty=0.25)
    env.step({"lead": BAD_CALL})
    env.step({"lead": BAD_CALL})
    *_, infos = env.step({"lead": TABLE + "\n" + BAD_CALL})  # the last turn: no call is run
    lead = infos["lead"]
    assert lead["end_reason"] == "turns" and lead["episode_end"] == "turns"
    assert lead["format_errors"] == 3 and lead["total_format_errors"] == 3
    assert lead["item_f1"] > 0.5  # scored on the table of its last message
    assert lead["reward"] == pytest.approx(lead["item_f1"] - 0.25 * 3)


def test_the_penalty_counts_every_agents_format_errors() -> None:
    env = make(width=2, format_error_penalty=0.1)
    env.step({"lead": {"name": "delegate", "arguments": {"subtasks": ["a", "b"]}}})
    env.step({"sub_0": BAD_CALL, "sub_1": BAD_CALL})
    env.step({"sub_0": "report a", "sub_1": "report b"})
    *_, infos = env.step({"lead": "```markdown\n" + TABLE + "\n```"})
    assert infos["lead"]["total_format_errors"] == 2
    assert infos["lead"]["reward"] == pytest.approx(infos["lead"]["item_f1"] - 0.2)


def test_tool_errors_count_each_failed_page() -> None:
    env = make()
    env.step({"lead": {"name": "delegate", "arguments": {"subtasks": ["read"]}}})
    *_, infos = env.step({"sub_0": {"name": "access", "arguments": {"urls": [
        "https://nowhere/1", "https://nowhere/2", "https://toy.wiki/river/duskmere"]}}})
    assert infos["sub_0"]["tool_errors"] == 2 and infos["sub_0"]["format_errors"] == 0
    *_, infos = env.step({"sub_0": {"name": "access", "arguments": {"urls": [
        "https://nowhere/3"]}}})
    assert infos["sub_0"]["tool_errors"] == 3


def test_tool_call_and_final_message_objects_are_actions() -> None:
    env = make()
    obs, *_ = env.step({"lead": ToolCall("delegate", {"subtasks": ["find the rivers"]})})
    assert env.agents == ["lead", "sub_0"]
    assert obs["lead"][-1]["content"].startswith("<tool_call>")
    obs, *_ = env.step({"sub_0": FinalMessage("Duskmere and Emberlyn.")})
    assert obs["sub_0"][-1]["content"] == "Duskmere and Emberlyn."
    assert "Duskmere and Emberlyn." in obs["lead"][-1]["content"]
    single = WideSeekSingleAgentEnv(tasks=toy_tasks(), backend=toy_backend())
    single.reset(seed=0)
    obs, *_ = single.step(ToolCall("search", {"queries": ["Kestland"]}))
    assert obs[-1]["role"] == "tool" and obs[-1]["name"] == "search"


def test_structured_actions_keep_non_ascii_text() -> None:
    env = make()
    env.step({"lead": {"name": "delegate", "arguments": {"subtasks": ["Flüsse in Kestland"]}}})
    obs, *_ = env.step({"sub_0": {"name": "search", "arguments": {"queries": ["Zürich 東京"]}}})
    call = obs["sub_0"][-2]["content"]
    assert "Zürich 東京" in call and "\\u" not in call
    assert obs["sub_0"][1]["content"] == "Flüsse in Kestland"
