"""Smoke tests: the LLM policy, the rollout and the learner's sequences on WideSeekEnv itself."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from wideseek_env.env.config import EnvConfig
from wideseek_env.env.parallel import WideSeekEnv
from wideseek_env.env.toy import toy_backend, toy_tasks
from wideseek_env.policies.base import AgentRequest
from wideseek_rl.engines.base import SamplingParams
from wideseek_rl.envs import WideSeekEnvSpec
from wideseek_rl.learner import build_sequences
from wideseek_rl.policy import LLMPolicy
from wideseek_rl.rollout import RolloutRunner

CONFIG = EnvConfig(width=2, lead_max_turns=3, subagent_max_turns=2, max_context_tokens=4096)


def make_env(tokenizer):
    return lambda: WideSeekEnv(
        tasks=toy_tasks(), backend=toy_backend(), config=CONFIG,
        token_counter=lambda text: len(tokenizer.encode(text, add_special_tokens=False)))


def test_one_group_with_the_tiny_model(tiny_engine, tiny_tokenizer):
    policy = LLMPolicy(tiny_engine, tiny_tokenizer, SamplingParams(max_new_tokens=16),
                       max_context_tokens=4096)
    policy.set_seed(0)
    episodes = RolloutRunner(make_env(tiny_tokenizer), policy).run(
        [{"task_id": "toy-rivers-veloria"}], group_size=3, seed=0)
    assert len(episodes) == 3
    for e in episodes:
        assert e.task_id == "toy-rivers-veloria"
        assert e.agents[0].agent_id == "lead" and e.agents[0].turns
        assert 0.0 <= e.score <= 1.0 and "item_f1" in e.final_info
    rows = build_sequences(episodes, [0.5, -0.5, 0.0])
    assert sum(r.n_generated for r in rows) == sum(e.n_generated for e in episodes)


def test_a_scripted_delegation_runs_through_env_policy_and_sequences(tiny_tokenizer, replay_engine):
    """Exact completions drive a full lead → two subagents → answer episode."""
    im_end = tiny_tokenizer.convert_tokens_to_ids("<|im_end|>")

    def say(text):
        return [*tiny_tokenizer.encode(text, add_special_tokens=False), im_end]

    call = {"name": "delegate", "arguments": {"subtasks": ["Rivers of Veloria A-B", "Rivers of Veloria C"]}}
    table = ("```markdown\n| River | Length km | Mouth |\n|---|---|---|\n"
             "| Amberflow | 412 | Gulf of Tessar |\n| Brightwater | 288 | Lake Orun |\n"
             "| Coldrun | 157 | Amberflow |\n```")
    engine = replay_engine([
        [say(f"<tool_call>{json.dumps(call)}</tool_call>")],
        [say("Amberflow 412 km, Brightwater 288 km."), say("Coldrun 157 km into Amberflow.")],
        [say(table)],
    ], stop_ids=[im_end])
    policy = LLMPolicy(engine, tiny_tokenizer, SamplingParams(max_new_tokens=256))
    (episode,) = RolloutRunner(make_env(tiny_tokenizer), policy).run(
        [{"task_id": "toy-rivers-veloria"}], group_size=1, seed=0)
    assert [(a.agent_id, a.role, len(a.turns)) for a in episode.agents] == [
        ("lead", "lead", 2), ("sub_0", "subagent", 1), ("sub_1", "subagent", 1)]
    assert episode.score == pytest.approx(1.0)
    assert episode.final_info["item_f1"] == pytest.approx(1.0)
    # The lead saw the env's tool schemas and its second prompt extends the first verbatim.
    first, second = episode.agents[0].turns
    assert '"name": "delegate"' in tiny_tokenizer.decode(first.prompt_ids)
    n = len(first.prompt_ids) + len(first.completion_ids)
    assert np.array_equal(second.prompt_ids[:n], np.concatenate([first.prompt_ids,
                                                                 first.completion_ids]))
    assert "Coldrun 157 km" in tiny_tokenizer.decode(second.prompt_ids[n:])
    # Subagents saw their subtask and the search/access tools.
    sub = tiny_tokenizer.decode(episode.agents[2].turns[0].prompt_ids)
    assert "Rivers of Veloria C" in sub and '"name": "search"' in sub
    rows = build_sequences([episode], [1.0])
    assert [r.agent_id for r in rows] == [0, 1, 2]


def test_wideseek_env_spec_over_a_small_world(tmp_path, tiny_tokenizer):
    from wideseek_env.worlds import build_small_world

    world = build_small_world(tmp_path / "world")
    spec = WideSeekEnvSpec(world=str(world), config=CONFIG)
    train, test = spec.task_options("train"), spec.task_options("eval")
    assert train and test and not {t["task_id"] for t in train} & {t["task_id"] for t in test}
    env = spec.make("eval", tiny_tokenizer)
    obs, infos = env.reset(seed=0, options=test[0])
    assert infos["lead"]["needs_action"] and obs["lead"][-1]["role"] == "user"
    assert env.config == CONFIG


def test_the_learner_runs_on_both_world_tiers(tiny_engine, tiny_tokenizer, tmp_path):
    """The trainer's env spec over a small world of each tier: one rollout group and its
    sequences (the learner does not care which generator made the world)."""
    from wideseek_env.worlds import build_small_world

    for tier in ("easy", "v2"):
        world = build_small_world(tmp_path / tier, tier=tier)
        spec = WideSeekEnvSpec(world=str(world), config=CONFIG)
        options = spec.task_options("eval")
        assert options, tier
        policy = LLMPolicy(tiny_engine, tiny_tokenizer, SamplingParams(max_new_tokens=8),
                           max_context_tokens=4096)
        policy.set_seed(0)
        episodes = RolloutRunner(lambda s=spec: s.make("eval", tiny_tokenizer), policy).run(
            options[:1], group_size=2, seed=0)
        assert len(episodes) == 2 and all(0.0 <= e.score <= 1.0 for e in episodes)
        rows = build_sequences(episodes, [0.5, -0.5])
        assert sum(r.n_generated for r in rows) == sum(e.n_generated for e in episodes)


def test_a_paper_interface_episode_through_env_policy_and_credit(tiny_tokenizer, replay_engine):
    """The learner's policy under the paper's interface: its tool schemas in the prompt, the
    paper's call format parsed from generated tokens, the ```markdown answer, the paper's reward
    and turn selection."""
    from wideseek_env.env import prompts_paper as P
    from wideseek_rl.credit import assign_credit

    im_end = tiny_tokenizer.convert_tokens_to_ids("<|im_end|>")

    def say(text):
        return [*tiny_tokenizer.encode(text, add_special_tokens=False), im_end]

    call = {"name": "create_sub_agents", "arguments": {"sub_agents": [
        {"prompt": "Rivers of Veloria A-B"}, {"prompt": "Rivers of Veloria C"}]}}
    table = ("```markdown\n| River | Length km | Mouth |\n|---|---|---|\n"
             "| Amberflow | 412 | Gulf of Tessar |\n| Brightwater | 288 | Lake Orun |\n"
             "| Coldrun | 157 | Amberflow |\n```")
    engine = replay_engine([
        [say(f"<think>split it</think><tool_call>{json.dumps(call)}</tool_call>")],
        [say("Amberflow 412 km, Brightwater 288 km."), say("Coldrun 157 km into Amberflow.")],
        [say(table)],
    ], stop_ids=[im_end])
    config = EnvConfig(width=2, lead_max_turns=3, subagent_max_turns=2, max_context_tokens=4096,
                       interface="paper", reward="paper", tools_in_prompt=False)
    policy = LLMPolicy(engine, tiny_tokenizer, SamplingParams(max_new_tokens=256))

    def env():
        return WideSeekEnv(tasks=toy_tasks(), backend=toy_backend(), config=config,
                           context_counter=policy.count_context)

    (episode,) = RolloutRunner(env, policy).run([{"task_id": "toy-rivers-veloria"}],
                                                group_size=1, seed=0)
    assert [(a.agent_id, len(a.turns)) for a in episode.agents] == [
        ("lead", 2), ("sub_0", 1), ("sub_1", 1)]
    assert episode.final_info["item_f1"] == pytest.approx(1.0)
    assert episode.score == pytest.approx(1.0 + 0.1)  # r_ans + format; no access call
    first, second = episode.agents[0].turns
    prompt = tiny_tokenizer.decode(first.prompt_ids)
    assert '"name": "create_sub_agents"' in prompt and "# Task\nYour task:" in prompt
    assert P.FIRST_TURN.format(turns=3).strip() in prompt
    assert "# Subtask 2:\nRivers of Veloria C\n# Result:\nColdrun 157 km" in tiny_tokenizer.decode(
        second.prompt_ids)
    sub = tiny_tokenizer.decode(episode.agents[2].turns[0].prompt_ids)
    assert "Your subtask:\nRivers of Veloria C" in sub and '"info_to_extract"' in sub
    credited = assign_credit(episode, "paper")
    assert credited.credit.case == "ok" and credited.score == episode.score


def test_a_qa_episode_through_env_and_policy(tiny_tokenizer, replay_engine):
    from wideseek_env.qa import qa_task

    im_end = tiny_tokenizer.convert_tokens_to_ids("<|im_end|>")
    task = qa_task("toy-qa", "How long is the Amberflow river?", ["412 km"])
    engine = replay_engine([[[*tiny_tokenizer.encode("It is \\boxed{412 km}.",
                                                      add_special_tokens=False), im_end]]],
                           stop_ids=[im_end])
    policy = LLMPolicy(engine, tiny_tokenizer, SamplingParams(max_new_tokens=64))
    (episode,) = RolloutRunner(lambda: WideSeekEnv(tasks=[task], backend=toy_backend(),
                                                   config=CONFIG), policy).run(
        [{"task_id": "toy-qa"}], group_size=1, seed=0)
    assert episode.score == 1.0 and episode.final_info["kind"] == "qa"
    assert episode.final_info["parse_ok"] is True


def test_a_hybrid_spec_mixes_tasks_by_the_configured_share(tmp_path, tiny_tokenizer):
    from wideseek_env.qa import QATask
    from wideseek_env.worlds import build_small_world

    world = build_small_world(tmp_path / "world", tier="v2")
    spec = WideSeekEnvSpec(world=str(world), config=CONFIG, task_set="hybrid", depth_share=0.25)
    env = spec.make("train", tiny_tokenizer)
    by_id = {t.instance_id: t for t in env.tasks}
    train = spec.task_options("train")
    n_qa = sum(isinstance(by_id[o["task_id"]], QATask) for o in train)
    assert n_qa == round(0.25 * len(train)) and n_qa > 5
    obs, _ = env.reset(seed=0, options=next(o for o in train
                                                if isinstance(by_id[o["task_id"]], QATask)))
    assert "\\boxed{}" in obs["lead"][0]["content"]
    evals = spec.task_options("eval")  # evaluation takes every task of both kinds
    assert len(evals) == len(spec.make("eval", tiny_tokenizer).tasks)
    with pytest.raises(ValueError, match="task-set hybrid"):
        WideSeekEnvSpec(world=str(world), depth_share=0.5)


def test_train_widths_play_each_training_task_at_its_own_width(tmp_path, tiny_tokenizer,
                                                               replay_engine):
    """`env.train_widths`: the training tasks are shared out evenly and for good between the
    widths; an episode plays by its width's rules (prompt, schema, delegate limit) and reports
    it; evaluation keeps `config.width`."""
    from wideseek_env.env.width_mix import WidthMixEnv
    from wideseek_env.worlds import build_small_world

    world = build_small_world(tmp_path / "world")
    spec = WideSeekEnvSpec(world=str(world), config=CONFIG, train_widths=(1, 3))
    train = spec.task_options("train")
    widths = [t["width"] for t in train]
    assert sorted(set(widths)) == [1, 3] and abs(widths.count(1) - widths.count(3)) <= 1
    assert spec.task_options("train") == train  # the same width every time a task is drawn
    assert all("width" not in t for t in spec.task_options("eval"))
    assert widths != [t["width"] for t in replace(spec, seed=1).task_options("train")]
    assert not isinstance(spec.make("eval", tiny_tokenizer), WidthMixEnv)

    im_end = tiny_tokenizer.convert_tokens_to_ids("<|im_end|>")
    two = [*tiny_tokenizer.encode('<tool_call>{"name": "delegate", "arguments": {"subtasks": '
                                  '["a", "b"]}}</tool_call>', add_special_tokens=False), im_end]
    seen = {}
    for width in (1, 3):
        options = next(t for t in train if t["width"] == width)
        engine = replay_engine([[two]], stop_ids=[im_end])
        policy = LLMPolicy(engine, tiny_tokenizer, SamplingParams(max_new_tokens=64),
                           max_context_tokens=4096)
        env = spec.make("train", tiny_tokenizer)
        assert isinstance(env, WidthMixEnv)
        obs, infos = env.reset(seed=0, options=options)
        assert infos["lead"]["width"] == width
        assert f"up to {width} subagents" in obs["lead"][0]["content"]
        (act,) = policy.act([AgentRequest(("e", "lead"), "lead", obs["lead"], ())])
        obs, _, _, _, infos = env.step({"lead": act.action})
        seen[width] = (infos["lead"]["format_errors"], sorted(env.agents))
    # Two subtasks: refused at width 1 (a format error, no subagent), run at width 3.
    assert seen == {1: (1, ["lead"]), 3: (0, ["lead", "sub_0", "sub_1"])}

    env = spec.make("train", tiny_tokenizer)
    with pytest.raises(ValueError, match=r'options\["width"\] must name one of the widths \[1, 3\]'):
        env.reset(seed=0, options={"task_id": train[0]["task_id"]})
    with pytest.raises(ValueError, match=r'options\["width"\]=2 is not one of the widths'):
        env.reset(seed=0, options={**train[0], "width": 2})
    for bad in ((0,), (2, 2)):
        with pytest.raises(ValueError, match=r"env\.train-widths must be distinct integers >= 1"):
            WideSeekEnvSpec(world=str(world), config=CONFIG, train_widths=bad)


def test_a_rollout_over_mixed_widths_keeps_each_group_at_one_width(tiny_engine, tiny_tokenizer,
                                                                    tmp_path):
    from wideseek_env.worlds import build_small_world

    world = build_small_world(tmp_path / "world")
    spec = WideSeekEnvSpec(world=str(world), config=CONFIG, train_widths=(1, 2))
    train = spec.task_options("train")
    tasks = [next(t for t in train if t["width"] == w) for w in (1, 2)]
    policy = LLMPolicy(tiny_engine, tiny_tokenizer, SamplingParams(max_new_tokens=8),
                       max_context_tokens=4096)
    policy.set_seed(0)
    episodes = RolloutRunner(lambda: spec.make("train", tiny_tokenizer), policy).run(
        tasks, group_size=3, seed=0)
    assert [e.final_info["width"] for e in episodes] == [1, 1, 1, 2, 2, 2]
