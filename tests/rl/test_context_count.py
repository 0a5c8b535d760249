"""One context count: the env, given the policy's `count_context`, counts every agent's context
exactly as the engine sees it; tool schemas appear once; an agent without room is ended by the
env (never asked for an empty turn). Real episodes of the tiny model on WideSeekEnv."""

from __future__ import annotations

import pytest

from wideseek_env.env.config import EnvConfig
from wideseek_env.env.parallel import WideSeekEnv
from wideseek_env.env.toy import toy_backend, toy_tasks
from wideseek_env.policies.base import AgentRequest
from wideseek_rl.engines.base import SamplingParams
from wideseek_rl.policy import LLMPolicy
from wideseek_rl.rollout import RolloutRunner


def play(env: WideSeekEnv, policy: LLMPolicy, seed: int) -> tuple[list, dict]:
    """One episode; returns (agent, env's context_tokens when asked to act) per turn, in order,
    and the final infos of every agent."""
    obs, infos = env.reset(seed=seed)
    asked, last = [], dict(infos)
    while env.agents:
        acting = [a for a in env.agents if infos[a]["needs_action"]]
        tools = (lambda a: ()) if env.tools_in_prompt else env.tool_schemas
        reqs = [AgentRequest(key=a, role=infos[a]["role"], messages=obs[a], tools=tools(a),
                             info={"agent_id": a}) for a in acting]
        asked += [(a, infos[a]["context_tokens"]) for a in acting]
        actions = policy.act(reqs)
        assert all(act.completion_tokens > 0 for act in actions), [(r.key, infos[r.key]["context_tokens"], a.prompt_tokens) for r, a in zip(reqs, actions)]  # never an empty turn
        obs, _, _, _, new = env.step({r.key: act.action for r, act in zip(reqs, actions)})
        infos.update(new)
        last.update(new)
    return asked, last


@pytest.mark.parametrize("tools_in_prompt", [True, False])
@pytest.mark.parametrize("tight", [False, True])
def test_the_env_counts_what_the_engine_sees(tiny_engine, tiny_tokenizer, tools_in_prompt, tight):
    def setup(budget):
        policy = LLMPolicy(tiny_engine, tiny_tokenizer, SamplingParams(max_new_tokens=48),
                           max_context_tokens=budget)
        config = EnvConfig(width=3, lead_max_turns=3, subagent_max_turns=3,
                           max_context_tokens=budget, tools_in_prompt=tools_in_prompt)
        return policy, WideSeekEnv(tasks=toy_tasks(), backend=toy_backend(), config=config,
                                   context_counter=policy.count_context)

    budget = 8192
    if tight:  # room for about one reply of the lead: its completions get cut by the budget
        _, infos = setup(budget)[1].reset(seed=0)
        budget = infos["lead"]["context_tokens"] + 30
    policy, env = setup(budget)
    ended = []
    for seed in range(3):
        policy.set_seed(seed)
        asked, last = play(env, policy, seed)
        turns = {a: list(policy.take_turns(a)) for a in last}
        for agent, counted in asked:  # the k-th time an agent acted is its k-th turn
            t = turns[agent].pop(0)
            assert counted == len(t.prompt_ids), (agent, counted, len(t.prompt_ids))
            assert len(t.prompt_ids) + t.n_generated <= budget
        assert not any(turns.values())
        ended += [(info["end_reason"], info["context_tokens"]) for info in last.values()]
    assert policy.overflows == 0
    if tight:  # an agent whose reply reached the budget was ended by the env, as "context"
        assert any(reason == "context" and tokens >= budget for reason, tokens in ended), ended


def test_tool_schemas_appear_once(tiny_engine, tiny_tokenizer):
    for tools_in_prompt in (True, False):
        policy = LLMPolicy(tiny_engine, tiny_tokenizer, SamplingParams(max_new_tokens=4))
        config = EnvConfig(width=2, lead_max_turns=2, subagent_max_turns=1,
                           tools_in_prompt=tools_in_prompt)
        runner = RolloutRunner(lambda c=config: WideSeekEnv(tasks=toy_tasks(),
                                                            backend=toy_backend(), config=c),
                               policy)
        (ep,) = runner.run([{"task_id": "toy-rivers-veloria"}], 1, seed=0)
        prompt = tiny_tokenizer.decode(ep.agents[0].turns[0].prompt_ids)
        description = WideSeekEnv(tasks=toy_tasks(), backend=toy_backend()).tool_schemas(
            "lead")[0]["function"]["description"]
        assert prompt.count(description) == 1, tools_in_prompt
