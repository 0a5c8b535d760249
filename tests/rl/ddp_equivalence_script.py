"""Run by test_train.py with 1 and with 2 processes: one Learner.update with SGD (lr 1, so the
parameter change is minus the gradient) over the same global batch of training rows, rank r
taking every N-th row. Every rank saves its parameter change to `<out>/delta_rank<r>.pt`.

The rows come from a seeded rollout of the tiny model on KeywordRelay-v0 (the same in every
process), with perturbed π_old so that ratios differ from 1 and clipping is exercised."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    model_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    from accelerate import Accelerator
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from wideseek_env.env.keyword_relay import KeywordRelayEnv
    from wideseek_rl.advantages import group_advantages
    from wideseek_rl.engines.base import SamplingParams
    from wideseek_rl.engines.hf import HFEngine
    from wideseek_rl.learner import Learner, LossSettings, PolicyModule, build_sequences
    from wideseek_rl.policy import LLMPolicy
    from wideseek_rl.rollout import RolloutRunner

    torch.set_num_threads(1)
    acc = Accelerator(cpu=True)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    policy = LLMPolicy(HFEngine.from_pretrained(model_dir), tokenizer,
                       SamplingParams(max_new_tokens=6))
    policy.set_seed(7)
    tasks = [{"task_id": f"relay-{k}"} for k in ("blue", "plum", "lemon")]
    episodes = RolloutRunner(lambda: KeywordRelayEnv(width=2), policy).run(tasks, 3, seed=1)
    adv = group_advantages([e.score for e in episodes], [e.task_index for e in episodes])
    rows = []
    for r in build_sequences(episodes, list(adv.values)):
        shift = 0.3 * np.sin(np.arange(len(r.input_ids)) * 0.7 + 3 * r.agent_id + r.episode_id)
        old = np.where(r.generated, r.old_logprobs + shift, 0.0).astype(np.float32)
        rows.append(type(r)(r.input_ids, r.generated, old, r.advantage, r.episode_id, r.agent_id))
    mine = rows[acc.process_index :: acc.num_processes]

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    module = PolicyModule(model, chunk_tokens=64)
    opt = torch.optim.SGD(module.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    module, opt, sched = acc.prepare(module, opt, sched)
    before = {k: v.detach().clone() for k, v in acc.unwrap_model(module).model.named_parameters()}
    learner = Learner(acc, module, opt, sched, LossSettings(), micro_batch_tokens=256,
                      max_grad_norm=None)
    metrics = learner.update(mine, num_episodes=len(episodes))
    delta = {k: v.detach() - before[k]
             for k, v in acc.unwrap_model(module).model.named_parameters()}
    torch.save({"delta": delta, "rows": len(rows), "loss": metrics["loss/policy"],
                "world": acc.num_processes}, out / f"delta_rank{acc.process_index}.pt")


if __name__ == "__main__":
    main()
