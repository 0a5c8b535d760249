"""The env's rewards: WideSeek-R1's `paper` reward term by term (hand-computed), the `score`
reward, and both paid by WideSeekEnv at the end of real episodes on the toy world; plus the
context rules that feed them (a reply that fills the budget fails its agent)."""

from __future__ import annotations

import pytest

from wideseek_env.env.config import EnvConfig, approx_token_count
from wideseek_env.env.parallel import WideSeekEnv
from wideseek_env.env.rewards import (
    EpisodeFacts,
    PaperRewardWeights,
    paper_reward,
    score_reward,
)
from wideseek_env.env.toy import toy_backend, toy_tasks

TABLE = (
    "```markdown\n| River | Length km | Mouth |\n| --- | --- | --- |\n"
    "| Amberflow | 412 | Gulf of Tessar |\n| Brightwater | 288 | Lake Orun |\n"
    "| Coldrun | 157 | Amberflow |\n```"
)


def facts(**kw) -> EpisodeFacts:
    base = {"answer_score": 0.6, "format_ok": True, "lead_failed": False, "access_calls": 2,
            "max_response_tokens": 2500, "format_errors": 0}
    return EpisodeFacts(**{**base, **kw})


@pytest.mark.parametrize(("kw", "expected"), [
    ({}, 0.6 + 0.1 + 0.05),                              # short replies: no length term
    ({"access_calls": 0}, 0.6 + 0.1),                   # no access call: no access bonus
    ({"max_response_tokens": 3000}, 0.75),              # the penalty starts after 3,000 tokens
    ({"max_response_tokens": 3500}, 0.75 - 0.1 * 0.25),  # (3500 − 3000) / 2000 = 0.25
    ({"max_response_tokens": 4000}, 0.75 - 0.05),       # halfway: half the penalty
    ({"max_response_tokens": 5000}, 0.75 - 0.1),        # full penalty at 5,000 tokens
    ({"max_response_tokens": 90000}, 0.75 - 0.1),       # clipped at 1
    ({"answer_score": 0.0}, 0.1 + 0.05),                # a well-formatted wrong table earns format
    ({"format_ok": False}, 0.0),                        # no valid format: 0, whatever else
    ({"format_ok": False, "answer_score": 0.0, "access_calls": 5}, 0.0),
    ({"lead_failed": True}, 0.0),                       # a failed lead earns nothing
])
def test_paper_reward_by_hand(kw, expected):
    assert paper_reward(facts(**kw)).reward == pytest.approx(expected)


def test_paper_reward_terms_and_weights():
    t = paper_reward(facts(max_response_tokens=4000))
    assert (t.answer, t.format, t.access, t.length) == pytest.approx((0.6, 0.1, 0.05, -0.05))
    assert t.reward == pytest.approx(t.answer + t.format + t.access + t.length)
    custom = PaperRewardWeights(format_bonus=0.2, access_bonus=0.0, length_penalty=1.0,
                                length_limit_tokens=100, max_length_limit_tokens=200)
    assert paper_reward(facts(max_response_tokens=150), custom).reward == pytest.approx(0.6 + 0.2 - 0.5)
    zero = paper_reward(facts(format_ok=False))
    assert (zero.answer, zero.format, zero.access, zero.length) == (0.0, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="length_limit_tokens"):
        PaperRewardWeights(length_limit_tokens=5000, max_length_limit_tokens=5000)
    with pytest.raises(ValueError, match="format_bonus"):
        PaperRewardWeights(format_bonus=float("nan"))


def test_score_reward_with_and_without_the_format_penalty():
    assert score_reward(facts(format_errors=3)).reward == 0.6
    assert score_reward(facts(format_errors=3), 0.1).reward == pytest.approx(0.3)
    with pytest.raises(ValueError, match="format_error_penalty"):
        EnvConfig(reward="paper", format_error_penalty=0.1)
    with pytest.raises(ValueError, match="reward must be one of"):
        EnvConfig(reward="f1")


def call(name: str, key: str, items: list[str]) -> dict:
    return {"name": name, "arguments": {key: items}}


def play(config: EnvConfig, answer: str, *, access: bool = True) -> tuple[float, dict]:
    """Delegate one subtask; the subagent reads a page (or only searches) and reports; the lead
    answers with `answer`. Returns the lead's reward and final infos."""
    env = WideSeekEnv(tasks=toy_tasks(), backend=toy_backend(), config=config)
    env.reset(seed=0, options={"task_id": "toy-rivers-veloria"})
    env.step({"lead": call("delegate", "subtasks", ["rivers of Veloria"])})
    if access:
        env.step({"sub_0": call("access", "urls", ["https://toy.wiki/list/rivers-of-veloria"])})
    else:
        env.step({"sub_0": call("search", "queries", ["Veloria rivers"])})
    env.step({"sub_0": "Amberflow, Brightwater, Coldrun."})
    _, rewards, _, _, infos = env.step({"lead": answer})
    return rewards["lead"], infos["lead"]


def test_the_env_pays_the_paper_reward_with_its_terms():
    paper = EnvConfig(width=2, reward="paper")
    reward, info = play(paper, TABLE)
    assert info["item_f1"] == 1.0 and info["access_calls"] == 1
    assert info["max_response_tokens"] == approx_token_count(TABLE)  # the longest reply
    assert reward == pytest.approx(1.0 + 0.1 + 0.05) == info["reward"]
    assert (info["reward_answer"], info["reward_format"], info["reward_access"],
            info["reward_length"]) == pytest.approx((1.0, 0.1, 0.05, 0.0))
    reward, info = play(paper, TABLE, access=False)
    assert reward == pytest.approx(1.1) and info["reward_access"] == 0.0
    # A table without the required columns is no valid format: 0.
    reward, info = play(paper, "```markdown\n| River |\n| --- |\n| Amberflow |\n```")
    assert info["parse_ok"] is False and reward == 0.0
    # The length term, from the env's own token counts (a 1,000-token bar over a 700 limit).
    short = EnvConfig(width=2, reward="paper", paper_reward=PaperRewardWeights(
        length_limit_tokens=500, max_length_limit_tokens=700))
    long_answer = TABLE + "\n" + "x" * 4000
    reward, info = play(short, long_answer)
    assert info["max_response_tokens"] == approx_token_count(long_answer) > 700
    assert info["reward_length"] == pytest.approx(-0.1) and reward == pytest.approx(1.05)
    # The default reward is the score alone.
    reward, info = play(EnvConfig(width=2), TABLE)
    assert reward == 1.0 and "reward_format" not in info


def test_a_lead_out_of_turns_earns_nothing_under_the_paper_reward():
    env = WideSeekEnv(tasks=toy_tasks(), backend=toy_backend(),
                      config=EnvConfig(width=2, lead_max_turns=2, reward="paper"))
    env.reset(seed=0, options={"task_id": "toy-rivers-veloria"})
    env.step({"lead": TABLE + '\n<tool_call>{"name": "delegate", "arguments": '
                              '{"subtasks": ["check"]}}</tool_call>'})
    env.step({"sub_0": "all correct"})
    _, rewards, _, trunc, infos = env.step({"lead": call("delegate", "subtasks", ["again"])})
    assert trunc["lead"] and infos["lead"]["episode_end"] == "turns"
    assert infos["lead"]["item_f1"] == 1.0  # scored on its latest table, as before ...
    assert rewards["lead"] == 0.0  # ... but the paper pays a failed lead nothing


def test_a_reply_that_fills_the_context_fails_its_agent():
    env = WideSeekEnv(tasks=toy_tasks(), backend=toy_backend(),
                      config=EnvConfig(width=2, max_context_tokens=1000))
    _, infos = env.reset(seed=0, options={"task_id": "toy-rivers-veloria"})
    env.step({"lead": call("delegate", "subtasks", ["rivers"])})
    # 4,000 characters are 1,000 tokens: with the prompt, more than the budget can hold. A
    # real engine would have been cut at the budget; the env treats the reply as cut.
    _, _, term, trunc, infos = env.step({"sub_0": "x" * 4000})
    assert trunc["sub_0"] and not term["sub_0"]
    assert infos["sub_0"]["end_reason"] == "context" and infos["sub_0"]["status"] == "failed"


def test_a_context_counter_replaces_the_estimate_and_can_fail_a_subagent_at_start():
    """With `context_counter` the env asks it for every agent's whole context (here: the text
    estimate plus 400 tokens per tool schema passed to the template). A subagent whose first
    prompt leaves no room for a reply fails at once instead of being asked to act."""
    seen_tools = set()

    def counter(messages, tools):
        seen_tools.add(tuple(t["function"]["name"] for t in tools))
        return sum(approx_token_count(m["content"]) for m in messages) + 400 * len(tools)

    env = WideSeekEnv(tasks=toy_tasks(), backend=toy_backend(), context_counter=counter,
                      config=EnvConfig(width=2, max_context_tokens=1000, tools_in_prompt=False))
    obs, infos = env.reset(seed=0, options={"task_id": "toy-rivers-veloria"})
    assert infos["lead"]["context_tokens"] == counter(obs["lead"], env.tool_schemas("lead"))
    obs, _, _, trunc, infos = env.step({"lead": call("delegate", "subtasks", ["y" * 600, "ok"])})
    assert seen_tools == {("delegate",), ("search", "access")}
    assert infos["sub_0"]["context_tokens"] == counter(obs["sub_0"], env.tool_schemas("sub_0"))
    assert infos["sub_0"]["context_tokens"] >= 1000
    assert infos["sub_0"]["end_reason"] == "context" and trunc["sub_0"]
    assert infos["sub_1"]["status"] == "running" and env.agents == ["lead", "sub_1"]
