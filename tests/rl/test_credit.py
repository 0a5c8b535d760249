"""The paper's trainable-turn selection, one test per rule, on scripted episodes (records built
by hand), then through a real rollout on WideSeekEnv."""

from __future__ import annotations

import numpy as np
import pytest

from wideseek_rl.credit import assign_credit, failure_of
from wideseek_rl.learner import build_sequences
from wideseek_rl.records import AgentTrace, Episode, Turn


def turn(agent: str, n: int, finish: str = "stop", start: int = 0) -> Turn:
    ids = np.arange(start, start + 10 + n, dtype=np.int32)
    return Turn(agent, "lead" if agent == "lead" else "subagent", ids[:10], ids[10:],
                np.full(n, -1.0, np.float32), finish)


def episode(agents: list[AgentTrace], *, parse_ok: bool = True, score: float = 0.8) -> Episode:
    return Episode("t", 0, 0, 1, score, tuple(agents), final_info={"parse_ok": parse_ok})


def trace(agent: str, turns: int, failure: str | None = None, cut: bool = False) -> AgentTrace:
    ts = [turn(agent, 3, start=20 * k) for k in range(turns)]
    if cut:
        ts[-1] = turn(agent, 3, "length", start=20 * (turns - 1))
    return AgentTrace(agent, "lead" if agent == "lead" else "subagent", tuple(ts), failure)


def kept(ep: Episode) -> dict[str, int]:
    return {a.agent_id: len(a.turns) for a in ep.agents}


def test_valid_format_trains_every_agent_that_did_not_fail():
    ep = episode([trace("lead", 2), trace("sub_0", 3), trace("sub_1", 2, failure="turns"),
                  trace("sub_2", 2, failure="context"), trace("sub_3", 2, cut=True)])
    out = assign_credit(ep, "paper")
    assert kept(out) == {"lead": 2, "sub_0": 3}  # failed and cut subagents dropped whole
    assert out.score == 0.8 and out.credit.case == "ok" and out.credit.env_score == 0.8
    assert (out.credit.failed_agents, out.credit.trained_turns, out.credit.dropped_turns) == (3, 5, 6)
    # Dropped agents have no rows, so N_e (agents with tokens) counts the lead and sub_0 only.
    rows = build_sequences([out], [1.0])
    assert sorted({r.agent_id for r in rows}) == [0, 1] and len(rows) == 5  # one row per turn here


@pytest.mark.parametrize("lead", [trace("lead", 3, failure="turns"),
                                  trace("lead", 3, failure="context"),
                                  trace("lead", 3, cut=True)])
def test_a_failed_lead_trains_only_its_own_turns_at_reward_zero(lead):
    ep = episode([lead, trace("sub_0", 2), trace("sub_1", 1, failure="turns")])
    out = assign_credit(ep, "paper")
    assert kept(out) == {"lead": 3}
    assert out.score == 0.0 and out.credit.case == "lead_failed" and out.credit.env_score == 0.8
    assert out.credit.dropped_turns == 3


def test_invalid_format_trains_the_last_turn_and_the_failed_turns():
    ep = episode([trace("lead", 3), trace("sub_0", 2), trace("sub_1", 2, failure="turns"),
                  trace("sub_2", 1, cut=True)], parse_ok=False, score=0.3)
    out = assign_credit(ep, "paper")
    assert kept(out) == {"lead": 1, "sub_1": 2, "sub_2": 1}
    assert out.agents[0].turns[0] is ep.agents[0].turns[-1]  # the lead's final turn
    assert out.score == 0.0 and out.credit.case == "invalid_format"
    # A lead that failed and left no valid table: only the failed turns (its own included).
    ep = episode([trace("lead", 3, failure="turns"), trace("sub_0", 2)], parse_ok=False)
    out = assign_credit(ep, "paper")
    assert kept(out) == {"lead": 3} and out.score == 0.0


def test_the_all_rule_keeps_everything_and_failures_are_read_from_turns():
    ep = episode([trace("lead", 2), trace("sub_0", 1, failure="context"), trace("sub_1", 1, cut=True)])
    out = assign_credit(ep, "all")
    assert kept(out) == {"lead": 2, "sub_0": 1, "sub_1": 1} and out.score == 0.8
    assert out.credit.case == "all" and out.credit.failed_agents == 2
    assert [failure_of(a) for a in ep.agents] == [None, "context", "length"]
    with pytest.raises(ValueError, match="turn selection"):
        assign_credit(ep, "some")


def test_an_env_without_parse_ok_has_no_format_to_get_wrong():
    ep = Episode("t", 0, 0, 1, 0.5, (trace("lead", 1), trace("sub_0", 1)), final_info={})
    assert assign_credit(ep, "paper").credit.case == "ok"


def test_paper_selection_on_a_real_rollout_drops_a_subagent_out_of_turns(tiny_tokenizer,
                                                                           replay_engine):
    """WideSeekEnv: the lead delegates two subtasks; sub_0 reports, sub_1 keeps searching until
    its two turns run out; the lead answers with the gold table. The paper's rule trains the
    lead and sub_0 and drops sub_1; the score is the paper reward of a correct answer."""
    from wideseek_env.env.config import EnvConfig
    from wideseek_env.env.parallel import WideSeekEnv
    from wideseek_env.env.toy import toy_backend, toy_tasks
    from wideseek_rl.engines.base import SamplingParams
    from wideseek_rl.policy import LLMPolicy
    from wideseek_rl.rollout import RolloutRunner

    im_end = tiny_tokenizer.convert_tokens_to_ids("<|im_end|>")

    def ids(text: str) -> list[int]:
        return [*tiny_tokenizer.encode(text, add_special_tokens=False), im_end]

    delegate = ids('<tool_call>{"name": "delegate", "arguments": {"subtasks": ["a", "b"]}}'
                   '</tool_call>')
    search = ids('<tool_call>{"name": "search", "arguments": {"queries": ["Amberflow"]}}'
                 '</tool_call>')
    table = ids("| River | Length km | Mouth |\n| --- | --- | --- |\n"
                "| Amberflow | 412 | Gulf of Tessar |\n| Brightwater | 288 | Lake Orun |\n"
                "| Coldrun | 157 | Amberflow |")
    engine = replay_engine([[delegate], [ids("done"), search], [search], [table]],
                           stop_ids=[im_end])
    policy = LLMPolicy(engine, tiny_tokenizer, SamplingParams(max_new_tokens=200),
                       max_context_tokens=4096)
    config = EnvConfig(width=2, subagent_max_turns=2, reward="paper")
    runner = RolloutRunner(lambda: WideSeekEnv(tasks=toy_tasks(), backend=toy_backend(),
                                               config=config), policy, turn_selection="paper")
    (ep,) = runner.run([{"task_id": "toy-rivers-veloria"}], 1, seed=0)
    assert ep.final_info["item_f1"] == 1.0 and ep.final_info["access_calls"] == 0
    assert ep.score == pytest.approx(1.0 + 0.1)  # no access call: no access bonus
    assert kept(ep) == {"lead": 2, "sub_0": 1}
    assert ep.credit.case == "ok" and ep.credit.failed_agents == 1 and ep.credit.dropped_turns == 2


def test_format_error_turns_are_marked_by_the_rollout_and_kept_when_asked(tiny_tokenizer,
                                                                          replay_engine):
    """WideSeekEnv: the lead first writes a call that is not JSON, then delegates two subtasks;
    sub_0 reports, sub_1 writes a broken call and then searches until its turns run out; the
    lead answers. The rollout marks exactly the two broken turns; the paper's rule drops sub_1,
    and `keep_format_errors` brings back its broken turn (and only that one)."""
    from wideseek_env.env.config import EnvConfig
    from wideseek_env.env.parallel import WideSeekEnv
    from wideseek_env.env.toy import toy_backend, toy_tasks
    from wideseek_rl.engines.base import SamplingParams
    from wideseek_rl.policy import LLMPolicy
    from wideseek_rl.rollout import RolloutRunner

    im_end = tiny_tokenizer.convert_tokens_to_ids("<|im_end|>")

    def ids(text: str) -> list[int]:
        return [*tiny_tokenizer.encode(text, add_special_tokens=False), im_end]

    broken = ids('<tool_call>{"name": "delegate", "arguments": {"subtasks": ["a"</tool_call>')
    delegate = ids('<tool_call>{"name": "delegate", "arguments": {"subtasks": ["a", "b"]}}'
                   '</tool_call>')
    bad_args = ids('<tool_call>{"name": "access", "arguments": {"queries": ["x"]}}</tool_call>')
    search = ids('<tool_call>{"name": "search", "arguments": {"queries": ["Amberflow"]}}'
                 '</tool_call>')
    table = ids("| River | Length km | Mouth |\n| --- | --- | --- |\n"
                "| Amberflow | 412 | Gulf of Tessar |\n| Brightwater | 288 | Lake Orun |\n"
                "| Coldrun | 157 | Amberflow |")
    config = EnvConfig(width=2, lead_max_turns=4, subagent_max_turns=2, reward="paper")
    episodes = {}
    for keep in (False, True):
        engine = replay_engine([[broken], [delegate], [ids("done"), bad_args], [search], [table]],
                               stop_ids=[im_end])
        policy = LLMPolicy(engine, tiny_tokenizer, SamplingParams(max_new_tokens=200),
                           max_context_tokens=4096)
        runner = RolloutRunner(lambda: WideSeekEnv(tasks=toy_tasks(), backend=toy_backend(),
                                                   config=config), policy,
                               turn_selection="paper", keep_format_errors=keep)
        (episodes[keep],) = runner.run([{"task_id": "toy-rivers-veloria"}], 1, seed=0)
    plain, kept_errors = episodes[False], episodes[True]
    assert kept(plain) == {"lead": 3, "sub_0": 1} and plain.credit.case == "ok"
    assert [t.format_error for t in plain.agents[0].turns] == [True, False, False]
    assert kept(kept_errors) == {"lead": 3, "sub_0": 1, "sub_1": 1}
    (sub_1,) = [a for a in kept_errors.agents if a.agent_id == "sub_1"]
    assert sub_1.turns[0].format_error and "access" in tiny_tokenizer.decode(
        sub_1.turns[0].completion_ids)
    assert kept_errors.credit.trained_turns == 5 and kept_errors.credit.dropped_turns == 1
    assert kept_errors.score == plain.score


def test_format_error_turns_get_their_own_advantage_in_rows_of_their_own():
    """Three turns of one lead, each prompt extending the last; the middle one is an error."""
    def lead_turn(start: int, n: int, error: bool = False) -> Turn:
        return Turn("lead", "lead", np.arange(start, dtype=np.int32),
                    np.arange(start, start + n, dtype=np.int32), np.full(n, -1.0, np.float32),
                    "stop", format_error=error)

    ok, bad, last = lead_turn(10, 3), lead_turn(13, 4, error=True), lead_turn(17, 3)
    ep = episode([AgentTrace("lead", "lead", (ok, bad, last))])
    # Off: one packed row with the episode's advantage, the error turn included.
    (row,) = build_sequences([ep], [0.7])
    assert row.advantage == 0.7 and row.n_generated == 10
    # On: the error turn is a row of its own at -c, and the others keep 0.7.
    rows = build_sequences([ep], [0.7], format_error_advantage=0.5)
    assert [(r.advantage, r.n_generated) for r in rows] == [(0.7, 3), (-0.5, 4), (0.7, 3)]
    assert sum(r.n_generated for r in rows) == row.n_generated
    generated = [int(np.flatnonzero(r.generated)[0]) for r in rows]
    assert generated == [10, 13, 17]  # each row trains exactly its own turn's tokens
