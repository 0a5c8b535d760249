"""WideSeekSingleAgentEnv: Gymnasium's checker, a golden episode, and truncation scoring."""

from __future__ import annotations

import gymnasium
import pytest
from gymnasium.utils.env_checker import check_env

import wideseek_env  # noqa: F401  (registers WideSeek/SingleAgent-v0)
from wideseek_env.env.single_agent import WideSeekSingleAgentEnv
from wideseek_env.env.toy import toy_backend, toy_tasks

TABLE = (
    "```markdown\n| River | Length km | Mouth |\n| --- | --- | --- |\n"
    "| Duskmere | 630 | Northern Sea |\n| Emberlyn | 94 | Duskmere |\n```"
)


@pytest.mark.parametrize("interface", ["wideseek", "paper"])
def test_gymnasium_make_and_check_env(interface: str) -> None:
    env = gymnasium.make("WideSeek/SingleAgent-v0", tasks=toy_tasks(), backend=toy_backend(),
                         interface=interface)
    assert isinstance(env.unwrapped, WideSeekSingleAgentEnv)
    check_env(env.unwrapped)


def test_golden_single_agent_episode() -> None:
    env = WideSeekSingleAgentEnv(tasks=toy_tasks(), backend=toy_backend())
    obs, info = env.reset(seed=0, options={"task_id": "toy-rivers-kestland"})
    assert info["role"] == "single" and info["max_turns"] == 50
    assert "research agent" in obs[0]["content"] and '"name": "search"' in obs[0]["content"]
    assert [t["function"]["name"] for t in env.tool_schemas()] == ["search", "access"]
    obs, rew, term, trunc, info = env.step(
        '<tool_call>{"name": "search", "arguments": {"queries": ["rivers of Kestland"]}}</tool_call>')
    assert "https://toy.wiki/list/rivers-of-kestland" in obs[-1]["content"]
    obs, rew, term, trunc, info = env.step({"name": "access", "arguments": {"urls": [
        "https://toy.wiki/river/duskmere", "https://toy.wiki/river/emberlyn"]}})
    assert "630 km long" in obs[-1]["content"] and (rew, term, trunc) == (0.0, False, False)
    obs, rew, term, trunc, info = env.step("<think>got it</think>" + TABLE)
    assert (rew, term, trunc) == (1.0, True, False)
    assert info["item_f1"] == 1.0 and info["episode_end"] == "answer"
    assert info["total_turns"] == info["critical_path_turns"] == 3
    assert info["tool_calls"] == {"search": 1, "access": 1}


def test_out_of_turns_truncates_and_scores_latest_table() -> None:
    env = WideSeekSingleAgentEnv(tasks=toy_tasks(), backend=toy_backend(), max_turns=2)
    env.reset(options={"task_id": "toy-rivers-kestland"})
    obs, *_ = env.step("Draft:\n" + TABLE + '\n<tool_call>{"name": "search", "arguments": '
                       '{"queries": ["check"]}}</tool_call>')
    assert "last turn" in obs[-1]["content"]
    obs, rew, term, trunc, info = env.step(
        '<tool_call>{"name": "search", "arguments": {"queries": ["more"]}}</tool_call>')
    assert (term, trunc) == (False, True)
    assert info["episode_end"] == "turns" and rew == info["item_f1"] == 1.0


def test_single_agent_rejects_multi_agent_budgets() -> None:
    with pytest.raises(TypeError, match="does not take"):
        WideSeekSingleAgentEnv(tasks=toy_tasks(), backend=toy_backend(), width=4)
    env = WideSeekSingleAgentEnv(tasks=toy_tasks(), backend=toy_backend())
    env.reset(seed=1)
    obs, *_, info = env.step(
        '<tool_call>{"name": "delegate", "arguments": {"subtasks": ["x"]}}</tool_call>')
    assert "unknown tool 'delegate'" in obs[-1]["content"] and info["format_errors"] == 1
