"""Learner curve and speed: multi-agent GRPO on the toy keyword game with the tiny model, on CPU.

Trains the `toy` preset of `wideseek-train` (tiny Qwen3 model built locally, KeywordRelay-v0
with four helpers that must say "blue", 2 tasks × G = 8 episodes per step) for `--steps`
steps, once per seed, and reports the mean episode score per step, the time per step split
into rollout and update, generated and trained tokens per second, and peak resident memory.
CPU time (`time.process_time`) is given beside wall time, which also counts whatever else runs
on the machine. Results go to `benchmarks/results/learner_curve.{json,md,png}`.

    python benchmarks/learner_curve.py
    python benchmarks/learner_curve.py --steps 40 --seeds 0 1 2
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path

import tyro

from wideseek_rl.config import PRESETS
from wideseek_rl.train import train

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Args:
    steps: int = 30
    """Training steps per seed."""
    seeds: tuple[int, ...] = (0, 1)
    """One run per seed."""
    threads: int = 1
    """Torch intra-op threads."""
    out: Path = field(default_factory=lambda: RESULTS / "learner_curve")
    """Output path stem (`.json`, `.md` and `.png` are written)."""


def run_seed(args: Args, seed: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="learner-curve-") as tmp:
        config = replace(PRESETS["toy"][1], steps=args.steps, seed=seed, save_every=0,
                         output_dir=Path(tmp), progress=False, tensorboard=False,
                         torch_threads=args.threads, log_every=10)
        t0, c0 = time.perf_counter(), time.process_time()
        train(config)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        rows = [json.loads(line) for line in (Path(tmp) / "metrics.jsonl").read_text().splitlines()]
    total = lambda key: sum(r[key] for r in rows)  # noqa: E731
    return {
        "seed": seed,
        "wall_s": wall,
        "cpu_s": cpu,
        "score": [r["score/mean"] for r in rows],
        "entropy": [r["loss/entropy"] for r in rows],
        "rollout_s_per_step": total("time/rollout_s") / len(rows),
        "update_s_per_step": total("time/update_s") / len(rows),
        "generated_tokens_per_s": total("rollout/generated_tokens") / total("time/rollout_s"),
        "trained_tokens_per_s": total("loss/tokens") / total("time/update_s"),
        "max_rss_gib": max(r["memory/max_rss_gib"] for r in rows),
    }


def main(args: Args) -> None:
    runs = [run_seed(args, s) for s in args.seeds]
    import torch
    import transformers

    meta = {
        "command": " ".join([sys.executable, *sys.argv]),
        "machine": platform.platform(), "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(), "torch": torch.__version__,
        "transformers": transformers.__version__, "accelerate": metadata.version("accelerate"),
        "preset": "toy", "steps": args.steps, "threads": args.threads,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"meta": meta, "runs": runs}, indent=2))

    def first_last(scores: list[float]) -> str:
        k = min(5, len(scores))
        return f"{sum(scores[:k]) / k:.2f} → {sum(scores[-k:]) / k:.2f}"

    lines = [
        "# Learner curve: toy keyword game, tiny model, CPU", "",
        f"`{meta['command']}`  ", f"{meta['machine']}, {meta['processor']}, Python {meta['python']}, "
        f"torch {meta['torch']}, transformers {meta['transformers']}, accelerate "
        f"{meta['accelerate']}, {args.threads} torch thread(s).", "",
        "| seed | score (first 5 → last 5 steps) | rollout s/step | update s/step | "
        "generated tok/s | trained tok/s | wall s | CPU s | peak RSS GiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(
            f"| {r['seed']} | {first_last(r['score'])} | {r['rollout_s_per_step']:.2f} | "
            f"{r['update_s_per_step']:.2f} | {r['generated_tokens_per_s']:.0f} | "
            f"{r['trained_tokens_per_s']:.0f} | {r['wall_s']:.0f} | {r['cpu_s']:.0f} | "
            f"{r['max_rss_gib']:.2f} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for r in runs:
        ax.plot(range(1, len(r["score"]) + 1), r["score"], label=f"seed {r['seed']}")
    ax.set_xlabel("training step")
    ax.set_ylabel("mean episode score")
    ax.set_title("Multi-agent GRPO, tiny model, KeywordRelay-v0")
    ax.set_ylim(0, 1.05)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out.with_suffix(".png"), dpi=120)
    print("\n".join(lines))


if __name__ == "__main__":
    main(tyro.cli(Args))
