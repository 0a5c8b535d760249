"""Evaluate a (trained) Hugging Face chat model in WideSeekEnv: `python -m wideseek_rl.evaluate`.

The model plays every agent through `LLMPolicy` (the rollout's policy: same prompts, same exact
context count shared with the env), and the episodes run through the env side's evaluation loop
(`wideseek_env.runner.evaluate`), so the output folder of each width is what `wideseek eval`
writes — `run.json`, `episodes.jsonl` (every agent's messages and each score's explanation;
usable by `wideseek view`, `wideseek trace show` and as SFT traces) and `summary.json` — and
re-running resumes. `episode_table` and `mean_ci` turn the records into the numbers the nano
recipe reports: item F1 with a 95 % confidence interval, the share of turns with a format
error, subagents used and critical-path turns.

    python -m wideseek_rl.evaluate --model runs/nano-grpo/final --world worlds/nano \\
        --split test --widths 1 4 8 --limit 200 --out runs/eval-grpo
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from wideseek_env.trace import read_traces


def mean_ci(values: Sequence[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95 % normal confidence interval (1.96 standard errors)."""
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    mean = sum(values) / n
    if n == 1:
        return mean, float("nan")
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, 1.96 * math.sqrt(var / n)


def episode_table(records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """What the recipe reports of a set of table-task trace records: the env's own summary
    (`wideseek_env.runner.evaluate.summarize`: row F1, mean costs per episode) plus item F1 with
    its 95 % CI, the share of turns that were format errors and the share of episodes that ended
    with an answer."""
    from wideseek_env.runner.evaluate import summarize

    summary = summarize(records)
    cost, n = summary["cost_per_episode"], max(len(records), 1)
    f1, ci = mean_ci([float(r["metrics"]["item_f1"]) for r in records])
    return {
        "episodes": float(len(records)), "item_f1": f1, "item_f1_ci95": ci,
        "row_f1": summary["scores"]["row_f1"] if summary["scores"] else float("nan"),
        "format_error_rate": cost["format_errors"] / max(cost["total_turns"], 1e-12)
        if records else float("nan"),
        "subagents_used": cost["subagents_used"],
        "critical_path_turns": cost["critical_path_turns"],
        "total_turns": cost["total_turns"],
        "answered": summary["episode_ends"].get("answer", 0) / n,
        "generated_tokens": cost["generated_tokens"],
    }


class PromptToolsPolicy:
    """Wraps a policy for an env that lists the tools in its system prompts (`wideseek eval`'s
    default): the chat template gets none, so they appear once and the prompt is what the env's
    context counter counts."""

    def __init__(self, policy: Any):
        self.policy = policy

    def act(self, requests: Sequence[Any]) -> list[Any]:
        return self.policy.act([dataclasses.replace(r, tools=()) for r in requests])


@dataclass(frozen=True)
class EvalCommand:
    """Evaluate a model directory in WideSeekEnv at one or more widths."""

    model: str
    """A Hugging Face model directory (a trained run's `final/`, the nano model, …)."""
    out: Path
    """Output folder; each width goes to `out/w{width}`."""
    world: str = "default"
    """A built world folder, or 'default' / 'default-easy'."""
    split: str = "test"
    """Task split."""
    widths: tuple[int, ...] = (1, 4, 8)
    """Widths (subagents per delegate call) to evaluate."""
    limit: int | None = None
    """Use N tasks spread evenly over the split (None: all)."""
    repeats: int = 1
    """Episodes per task."""
    lead_turns: int = 10
    """Turns of the lead."""
    subagent_turns: int = 20
    """Turns of each subagent."""
    max_context_tokens: int = 4096
    """Context budget of every agent (engine and env alike)."""
    max_new_tokens: int = 512
    """Tokens per turn at most."""
    temperature: float = 0.0
    """Sampling temperature (0: greedy)."""
    episodes_at_once: int = 32
    """Episodes running together (their agents form one generation batch)."""
    engine: Literal["hf", "vllm"] = "hf"
    """Generation engine: Hugging Face `generate`, or vLLM in this process (fp32, eager; on a
    CPU it batches many agents' turns far faster than `generate`)."""
    kv_cache_gib: float = 2.0
    """vLLM on a CPU: memory for the KV cache (`VLLM_CPU_KVCACHE_SPACE`, unless already set)."""
    seed: int = 0
    """Seed of the episodes and of sampling."""
    torch_threads: int | None = None
    """Intra-op threads of torch (None: its default)."""
    progress: bool = True
    """Show a progress bar."""


def evaluate_model(cmd: EvalCommand) -> dict[int, dict[str, Any]]:
    """Run `cmd` and return, per width, the env's summary plus `episode_table` under `table`."""
    import torch
    from transformers import AutoTokenizer

    from wideseek_env.runner.cli import spread
    from wideseek_env.runner.evaluate import EvalSpec, evaluate
    from wideseek_env.worlds import World, resolve_world
    from wideseek_rl.engines.base import SamplingParams
    from wideseek_rl.engines.hf import HFEngine
    from wideseek_rl.policy import LLMPolicy

    if cmd.torch_threads:
        torch.set_num_threads(cmd.torch_threads)
    world_path = resolve_world(cmd.world, progress=cmd.progress)
    world = World.load(world_path)
    tasks = spread(world.tasks(cmd.split), cmd.limit)
    tokenizer = AutoTokenizer.from_pretrained(cmd.model)
    if cmd.engine == "vllm":
        import os

        from wideseek_rl.engines.vllm import VLLMEngine

        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", f"{cmd.kv_cache_gib:g}")
        engine: Any = VLLMEngine(cmd.model, dtype="float32", max_model_len=cmd.max_context_tokens,
                                 seed=cmd.seed, enforce_eager=True)
    else:
        engine = HFEngine.from_pretrained(cmd.model, dtype=torch.float32, seed=cmd.seed)
        engine.model.eval()
    policy = LLMPolicy(engine, tokenizer,
                       SamplingParams(max_new_tokens=cmd.max_new_tokens,
                                      temperature=cmd.temperature, seed=cmd.seed),
                       max_context_tokens=cmd.max_context_tokens)
    info = {"name": cmd.engine, "model": str(cmd.model), "temperature": cmd.temperature,
            "max_new_tokens": cmd.max_new_tokens}
    world_info = {"name": world.name, "path": str(world_path), "split": cmd.split,
                  "tasks": len(tasks), "source": world.card.get("source")}
    out: dict[int, dict[str, Any]] = {}
    for width in cmd.widths:
        spec = EvalSpec(width=width, lead_max_turns=cmd.lead_turns,
                        subagent_max_turns=cmd.subagent_turns,
                        max_context_tokens=cmd.max_context_tokens, repeats=cmd.repeats,
                        seed=cmd.seed)
        policy.set_seed(cmd.seed + width)
        with torch.no_grad():
            summary = evaluate(spec, tasks, world.backend(), PromptToolsPolicy(policy),
                               cmd.out / f"w{width}",
                               policy_info=info, world_info=world_info,
                               episodes_at_once=cmd.episodes_at_once, progress=cmd.progress,
                               env_kwargs={"context_counter": policy.count_context})
        policy.reset()
        records = read_traces(cmd.out / f"w{width}" / "episodes.jsonl")
        summary["table"] = episode_table(records)
        out[width] = summary
    engine.close()
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point (`python -m wideseek_rl.evaluate --help`)."""
    import tyro

    cmd = tyro.cli(EvalCommand, args=list(argv) if argv is not None else None,
                   description=__doc__.split("\n\n")[0])
    try:
        results = evaluate_model(cmd)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for width, summary in results.items():
        t = summary["table"]
        print(f"width {width}: item F1 {t['item_f1']:.4f} ± {t['item_f1_ci95']:.4f} "
              f"({int(t['episodes'])} episodes), format errors {t['format_error_rate']:.3f} of "
              f"turns, subagents {t['subagents_used']:.2f}, critical path "
              f"{t['critical_path_turns']:.2f} turns, answered {t['answered']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
