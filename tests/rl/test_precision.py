"""Mixed precision that trains: fp32 master weights with bf16 autocast move like fp32 at the
paper's lr (1e-6), where bf16 weights under AdamW barely move at all."""

from __future__ import annotations

import copy

import pytest
import torch

from wideseek_env.env.keyword_relay import KeywordRelayEnv
from wideseek_rl.advantages import group_advantages
from wideseek_rl.engines.base import SamplingParams
from wideseek_rl.engines.hf import HFEngine
from wideseek_rl.learner import Learner, LossSettings, PolicyModule, build_sequences
from wideseek_rl.policy import LLMPolicy
from wideseek_rl.rollout import RolloutRunner


@pytest.fixture(scope="module")
def rows(tiny_model_dir, tiny_tokenizer):
    engine = HFEngine.from_pretrained(tiny_model_dir)
    policy = LLMPolicy(engine, tiny_tokenizer, SamplingParams(max_new_tokens=8))
    policy.set_seed(3)
    episodes = RolloutRunner(lambda: KeywordRelayEnv(), policy).run(
        [{"task_id": "relay-blue"}, {"task_id": "relay-plum"}], 4, seed=0)
    adv = group_advantages([e.score for e in episodes], [e.task_index for e in episodes])
    return build_sequences(episodes, list(adv.values))


def adamw_step(model, rows, *, mixed_precision: str, weight_dtype: torch.dtype):
    """Parameter changes (as fp32) of one Learner.update with AdamW at lr 1e-6."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    # Accelerate keeps one process-wide state; each precision needs a fresh one.
    AcceleratorState._reset_state(reset_partial_state=True)
    acc = Accelerator(cpu=True, mixed_precision=mixed_precision)
    model = copy.deepcopy(model).to(weight_dtype)
    module = PolicyModule(model, chunk_tokens=256)
    opt = torch.optim.AdamW(module.parameters(), lr=1e-6, weight_decay=0.0, eps=1e-8)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    module, opt, sched = acc.prepare(module, opt, sched)
    before = {k: v.detach().float().clone() for k, v in model.named_parameters()}
    metrics = Learner(acc, module, opt, sched, LossSettings(), max_grad_norm=None).update(
        rows, num_episodes=8)
    after = {k: v.detach().float() for k, v in model.named_parameters()}
    AcceleratorState._reset_state(reset_partial_state=True)
    return {k: after[k] - before[k] for k in before}, metrics


def changed(delta) -> float:
    flat = torch.cat([d.flatten() for d in delta.values()])
    return float((flat != 0).double().mean())


def test_bf16_autocast_over_fp32_weights_trains_like_fp32(rows, tiny_model_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    fp32, m32 = adamw_step(model, rows, mixed_precision="no", weight_dtype=torch.float32)
    mixed, mbf = adamw_step(model, rows, mixed_precision="bf16", weight_dtype=torch.float32)
    pure, _ = adamw_step(model, rows, mixed_precision="no", weight_dtype=torch.bfloat16)
    assert m32["loss/tokens"] == mbf["loss/tokens"] > 0
    assert mbf["loss/ratio_mean"] == pytest.approx(1.0, abs=0.05)  # a bf16 forward vs fp32 π_old
    print(f"weights changed: fp32 {changed(fp32):.4f}, bf16 autocast over fp32 "
          f"{changed(mixed):.4f}, bf16 weights {changed(pure):.6f}")
    # AdamW's first step moves every weight with a gradient by about lr: fp32 master weights
    # keep that step whatever the forward's precision ...
    assert changed(fp32) > 0.9
    assert changed(mixed) == pytest.approx(changed(fp32), abs=0.01)
    flat32 = torch.cat([d.flatten() for d in fp32.values()])
    flatmx = torch.cat([d.flatten() for d in mixed.values()])
    both = (flat32 != 0) & (flatmx != 0)
    agree = float((torch.sign(flat32[both]) == torch.sign(flatmx[both])).double().mean())
    print(f"sign agreement {agree:.4f}, max |difference| {float((flatmx - flat32).abs().max()):.3g}")
    assert agree > 0.98  # same direction where the gradients are not lost in bf16 rounding
    assert float((flatmx - flat32).abs().max()) <= 2.5e-6  # each step is at most ~lr either way
    # ... while in bf16 weights a 1e-6 step is below the rounding of most weights.
    assert changed(pure) < 0.05 * changed(fp32)
