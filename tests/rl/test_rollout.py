"""Rollouts: groups of episodes on ParallelEnvs, batched acting, records, seeds, failed agents."""

from __future__ import annotations

import numpy as np
import pytest
from pettingzoo import ParallelEnv

from wideseek_env.env.keyword_relay import KeywordRelayEnv
from wideseek_rl.engines.base import SamplingParams
from wideseek_rl.policy import LLMPolicy
from wideseek_rl.rollout import RolloutRunner, agent_failure, episode_seed


class CountingPolicy(LLMPolicy):
    """The real LLM policy, counting how many requests each `act` call batches."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.batch_sizes: list[int] = []

    def act(self, requests):
        self.batch_sizes.append(len(requests))
        return super().act(requests)


def make_policy(engine, tokenizer, **kwargs):
    return CountingPolicy(engine, tokenizer, SamplingParams(max_new_tokens=6), **kwargs)


TASKS = [{"task_id": "relay-blue"}, {"task_id": "relay-apple"}]


def test_groups_of_episodes_with_batched_acting(tiny_engine, tiny_tokenizer):
    policy = make_policy(tiny_engine, tiny_tokenizer)
    runner = RolloutRunner(lambda: KeywordRelayEnv(width=2), policy)
    policy.set_seed(0)
    episodes = runner.run(TASKS, group_size=3, seed=5, step=2)
    assert [(e.task_id, e.group) for e in episodes] == [
        ("relay-blue", 0), ("relay-blue", 1), ("relay-blue", 2),
        ("relay-apple", 0), ("relay-apple", 1), ("relay-apple", 2)]
    assert len({e.seed for e in episodes}) == 6
    assert episodes[4].seed == episode_seed(5, 2, 1, 1)
    # Three env steps per episode (lead, both helpers, lead); every live agent of all six
    # episodes acts in one call.
    assert policy.batch_sizes == [6, 12, 6]
    for e in episodes:
        assert [(a.agent_id, a.role, len(a.turns)) for a in e.agents] == [
            ("lead", "lead", 2), ("sub_0", "subagent", 1), ("sub_1", "subagent", 1)]
        assert e.score == pytest.approx(e.final_info["score"])
        assert 0.0 <= e.score <= 1.0 and e.env_steps == 3
        assert e.n_generated == sum(len(t.completion_ids) for a in e.agents for t in a.turns)
    assert runner.policy._contexts == {}  # every agent's turns were handed over


def test_rollouts_replay_under_a_seed(tiny_engine, tiny_tokenizer):
    def tokens(policy_seed):
        policy = make_policy(tiny_engine, tiny_tokenizer)
        policy.set_seed(policy_seed)
        eps = RolloutRunner(lambda: KeywordRelayEnv(), policy).run(TASKS, 2, seed=1)
        return [t.completion_ids.tolist() for e in eps for a in e.agents for t in a.turns]

    assert tokens(11) == tokens(11)
    assert tokens(11) != tokens(12)


def test_reused_env_pool_and_task_indices(tiny_engine, tiny_tokenizer):
    made = []

    def make():
        made.append(KeywordRelayEnv())
        return made[-1]

    runner = RolloutRunner(make, make_policy(tiny_engine, tiny_tokenizer))
    runner.run(TASKS, 2, seed=0)
    runner.run(TASKS[:1], 3, seed=0)
    assert len(made) == 4  # the pool grows to the largest batch and is reused
    eps = runner.run(TASKS, 1, seed=0, task_indices=[7, 9])
    assert [e.task_index for e in eps] == [7, 9] and eps[1].seed == episode_seed(0, 0, 9, 0)
    with pytest.raises(ValueError, match="task indices"):
        runner.run(TASKS, 1, seed=0, task_indices=[1])


def test_context_overflowed_agents_are_failed_and_selected_by_the_rule(tiny_tokenizer,
                                                                      replay_engine):
    # The lead delegates "go"; both helpers answer 30 × " apple" (180 characters), more than
    # the 170-character budget, so the env fails them for overflowing their context.
    im_end = tiny_tokenizer.convert_tokens_to_ids("<|im_end|>")
    go = [*tiny_tokenizer.encode("go", add_special_tokens=False), im_end]
    long = [*tiny_tokenizer.encode(" apple" * 30, add_special_tokens=False), im_end]
    episodes = {}
    for rule in ("all", "paper"):
        engine = replay_engine([[go], [long, long], [go]], stop_ids=[im_end])
        policy = LLMPolicy(engine, tiny_tokenizer, SamplingParams(max_new_tokens=64))
        runner = RolloutRunner(lambda: KeywordRelayEnv(max_context_chars=170), policy,
                               turn_selection=rule)
        (episodes[rule],) = runner.run(TASKS[:1], 1, seed=0)
    every = episodes["all"]
    subs = [a for a in every.agents if a.role == "subagent"]
    assert len(subs) == 2 and all(a.failure == "context" and len(a.turns) == 1 for a in subs)
    lead = every.agents[0]  # the helpers' report overflows the lead too, on its final turn
    assert lead.agent_id == "lead" and lead.failure == "context" and len(lead.turns) == 2
    assert every.score == 0.0 and every.credit.case == "all"  # failed helpers score nothing
    # The paper's rule: the lead failed (no parse_ok in this env: format counts as valid), so
    # only its own turns are trained, at reward 0; the failed helpers are dropped.
    paper = episodes["paper"]
    assert [a.agent_id for a in paper.agents] == ["lead"] and len(paper.agents[0].turns) == 2
    assert paper.credit.case == "lead_failed" and paper.credit.failed_agents == 3
    assert paper.credit.trained_turns == 2 and paper.credit.dropped_turns == 2


def test_agent_failure_reads_both_conventions():
    assert agent_failure({"status": "failed", "end_reason": "context"}) == "context"
    assert agent_failure({"status": "done", "end_reason": "final"}) is None
    assert agent_failure({"failed": "exceeded context window"}) == "exceeded context window"
    assert agent_failure({}) is None


class EchoPairEnv(ParallelEnv):
    """A minimal env with none of our conventions' optional parts: no `needs_action`, no `role`,
    no `tool_schemas`. Two agents answer one question each turn for two turns; the reward of
    each is the length of its last answer, capped at 10."""

    metadata = {"name": "echo_pair_v0"}  # noqa: RUF012

    def __init__(self):
        self.possible_agents = ["a", "b"]
        self.agents = []

    def reset(self, seed=None, options=None):
        self.agents = ["a", "b"]
        self.t = 0
        self.convo = {a: [{"role": "user", "content": f"{a}: tell me a colour"}] for a in self.agents}
        return {a: list(self.convo[a]) for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions):
        self.t += 1
        done = self.t == 2
        for a in self.agents:
            self.convo[a] += [{"role": "assistant", "content": actions[a]}]
            if not done:
                self.convo[a] += [{"role": "user", "content": "another"}]
        rewards = {a: float(min(len(actions[a]), 10)) if done else 0.0 for a in self.agents}
        obs = {a: list(self.convo[a]) for a in self.agents}
        terms = dict.fromkeys(self.agents, done)
        infos = {a: {} for a in self.agents}
        agents = list(self.agents)
        self.agents = [] if done else agents
        return obs, rewards, terms, dict.fromkeys(agents, False), infos


def test_an_env_without_our_optional_conventions(tiny_engine, tiny_tokenizer):
    runner = RolloutRunner(EchoPairEnv, make_policy(tiny_engine, tiny_tokenizer), reward_agent=None)
    episodes = runner.run([{"task_id": "echo"}], 2, seed=0)
    for e in episodes:
        assert [(a.agent_id, a.role, len(a.turns)) for a in e.agents] == [
            ("a", "agent", 2), ("b", "agent", 2)]
        assert 0.0 <= e.score <= 20.0
        first, second = e.agents[0].turns
        assert np.array_equal(second.prompt_ids[: len(first.prompt_ids)], first.prompt_ids)
