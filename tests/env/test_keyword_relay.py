"""KeywordRelay-v0: PettingZoo conformance over its variants, the episode flow and its rewards."""

from __future__ import annotations

import json
import warnings

import pytest
from pettingzoo.test import parallel_api_test, parallel_seed_test

from wideseek_env.env.keyword_relay import (
    KeywordRelayEnv,
    keyword_similarity,
    parse_delegate,
    reply_similarity,
)

VARIANTS = [
    {},
    {"lenient": False},
    {"width": 3, "max_context_chars": 150},
    {"keywords": ("blue",), "scoring": "reply"},
]


@pytest.mark.parametrize("kwargs", VARIANTS)
def test_pettingzoo_api_and_seed_tests(kwargs):
    with warnings.catch_warnings():
        # A lead that never delegates ends the episode before any helper exists.
        warnings.filterwarnings("ignore", "No agents present but not all possible_agents")
        parallel_api_test(KeywordRelayEnv(**kwargs), num_cycles=50)
    parallel_seed_test(lambda: KeywordRelayEnv(**kwargs))


def delegate(*tasks):
    return f'<tool_call>{json.dumps({"name": "delegate", "arguments": {"tasks": list(tasks)}})}</tool_call>'


def test_a_full_episode():
    env = KeywordRelayEnv(width=2)
    obs, infos = env.reset(options={"task_id": "relay-blue"})
    assert env.agents == ["lead"] and "'blue'" in obs["lead"][-1]["content"]
    assert infos["lead"] == {"role": "lead", "parent": None, "needs_action": True,
                             "status": "running", "end_reason": None, "turns": 0,
                             "format_errors": 0}
    assert env.tool_schemas("lead")[0]["function"]["name"] == "delegate"
    assert env.tool_schemas("sub_0") == []
    obs, rew, term, _, infos = env.step({"lead": delegate("say blue", "say blew", "extra")})
    assert env.agents == ["lead", "sub_0", "sub_1"]
    assert infos["lead"]["status"] == "blocked" and not infos["lead"]["needs_action"]
    assert obs["sub_1"][-1] == {"role": "user", "content": "say blew"}
    obs, rew, term, _, infos = env.step({"sub_0": "Blue!", "sub_1": "blew", "lead": "ignored"})
    assert env.agents == ["lead"] and term["sub_0"] and infos["sub_0"]["end_reason"] == "final"
    report = obs["lead"][-1]
    assert report["role"] == "tool" and "sub_0 (task: say blue): Blue!" in report["content"]
    obs, rew, term, _trunc, infos = env.step({"lead": "done"})
    assert env.agents == [] and all(term.values())
    expected = (1.0 + keyword_similarity("blue", "blew")) / 2
    assert rew == {"lead": pytest.approx(expected)}
    assert infos["lead"]["score"] == pytest.approx(expected) and infos["lead"]["hits"] == 1
    with pytest.raises(RuntimeError, match="after the episode ended"):
        env.step({"lead": "again"})


def test_lenient_and_strict_delegation():
    env = KeywordRelayEnv(width=2)
    env.reset(options={"task_id": "relay-plum"})
    obs, *_, infos = env.step({"lead": "please say plum"})
    assert infos["lead"]["format_errors"] == 1
    assert obs["sub_0"][-1]["content"] == obs["sub_1"][-1]["content"] == "please say plum"
    strict = KeywordRelayEnv(lenient=False)
    strict.reset(options={"task_id": "relay-plum"})
    for turn in range(3):
        obs, *_, infos = strict.step({"lead": "no call"})
        assert infos["lead"]["format_errors"] == turn + 1
    assert strict.agents == []  # the lead's budget is spent; scored on the final state: 0
    assert infos["lead"]["score"] == 0.0 and "Error: no valid delegate call" in obs["lead"][-2]["content"]


def test_bad_steps_raise_clear_errors():
    env = KeywordRelayEnv()
    with pytest.raises(RuntimeError, match="before reset"):
        env.step({"lead": "x"})
    env.reset(seed=0)
    with pytest.raises(ValueError, match="unknown agent id"):
        env.step({"boss": "x"})
    with pytest.raises(ValueError, match="not live"):
        env.step({"lead": "x", "sub_0": "y"})
    with pytest.raises(ValueError, match="no action"):
        env.step({})
    with pytest.raises(ValueError, match="unknown task_id"):
        env.reset(options={"task_id": "relay-purple"})
    with pytest.raises(ValueError, match="keywords"):
        KeywordRelayEnv(keywords=("Blue",))


def test_scorers_and_parser_by_hand():
    assert keyword_similarity("blue", "the sky is BLUE today") == 1.0
    assert keyword_similarity("blue", "glue") == pytest.approx(0.75)  # 2·3 / (4+4)
    assert keyword_similarity("blue", "123 !!") == 0.0
    assert reply_similarity("blue", " Blue ") == 1.0
    assert reply_similarity("blue", "blue sky") == pytest.approx(8 / 12)
    assert parse_delegate(delegate("a", "b")) == ["a", "b"]
    assert parse_delegate('<tool_call>{"name": "delegate", "arguments": {"tasks": []}}</tool_call>') is None
    assert parse_delegate("<tool_call>not json</tool_call>" + delegate("c")) == ["c"]
