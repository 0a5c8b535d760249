"""SingleSeek: the paper's single-agent baseline trains with the same learner, reward and rules."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from wideseek_env.env.config import EnvConfig
from wideseek_rl.config import PRESETS, EngineConfig, ModelConfig
from wideseek_rl.envs import SingleSeekEnvSpec
from wideseek_rl.train import train


@pytest.fixture(scope="module")
def small_world(tmp_path_factory) -> Path:
    from wideseek_env.worlds import build_small_world

    return build_small_world(tmp_path_factory.mktemp("world") / "small", tier="v2")  # QA sets too


def test_the_spec_makes_one_agent_with_search_and_access(small_world, tiny_tokenizer):
    spec = SingleSeekEnvSpec(world=str(small_world))
    env = spec.make("train", tiny_tokenizer)
    assert env.possible_agents == ["lead"]
    _, infos = env.reset(seed=0, options=spec.task_options("train")[0])
    assert infos["lead"]["role"] == "single" and infos["lead"]["max_turns"] == 50
    assert [t["function"]["name"] for t in env.tool_schemas("lead")] == ["search", "access"]
    with pytest.raises(ValueError, match="cannot delegate"):
        SingleSeekEnvSpec(config=EnvConfig())
    paper = PRESETS["paper-single"][1]
    assert isinstance(paper.env, SingleSeekEnvSpec) and paper.env.config.reward == "paper"
    assert paper.rollout == PRESETS["paper"][1].rollout and paper.loss == PRESETS["paper"][1].loss


def test_the_paper_preset_trains_the_single_agent(small_world, tmp_path, tiny_model_dir):
    """Two steps of `paper-single`, scaled down in batch, budgets and model (tiny, HF engine)."""
    from transformers import AutoModelForCausalLM

    base = PRESETS["paper-single"][1]
    env = replace(base.env, world=str(small_world),
                  config=replace(base.env.config, lead_max_turns=3, tools_in_prompt=True))
    config = replace(
        base, env=env, model=ModelConfig(path=str(tiny_model_dir)),
        rollout=replace(base.rollout, tasks_per_step=2, group_size=3, max_new_tokens=24,
                        max_context_tokens=4096),
        optim=replace(base.optim, lr=1e-3, micro_batch_tokens=8192, mixed_precision="no"),
        engine=EngineConfig(kind="hf"), steps=2, save_every=0, eval_every=0,
        output_dir=tmp_path, progress=False, tensorboard=False, torch_threads=1,
    )
    result = train(config)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    for r in rows:
        assert r["rollout/episodes"] == 6 and r["rollout/agents_per_episode"] <= 1
        assert sum(r[f"credit/episodes_{c}"] for c in ("ok", "lead_failed", "invalid_format")) == 6
        assert "env/max_response_tokens" in r and r["rollout/context_overflows"] == 0
    initial = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    trained = dict(result.model.named_parameters())
    assert any(not torch.equal(p, trained[n].detach()) for n, p in initial.named_parameters())
