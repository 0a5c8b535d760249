"""Step metrics: per-episode summaries gathered over ranks, their averages, and memory.

Episode summaries are small dicts (a few numbers each), so gathering them with
`gather_object` costs nothing next to a rollout and keeps every metric global: `score/…` and
`rollout/…` describe the whole step's batch, whatever the number of ranks.
"""

from __future__ import annotations

import resource
from collections.abc import Sequence
from typing import Any

import numpy as np
import psutil
import torch

from wideseek_rl.records import Episode

#: Bookkeeping keys of an env's final infos that are not worth averaging.
NOT_METRICS = frozenset({"needs_action", "max_turns", "max_context_tokens", "delegation"})


def rss_gib() -> float:
    """Resident memory of this process now, in GiB."""
    return psutil.Process().memory_info().rss / 2**30


def device_memory_gib() -> float:
    """Memory in use now: on a GPU the whole device's (every allocator, vLLM's included), on a
    CPU this process's resident memory; in GiB."""
    if torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info()
        return (total - free) / 2**30
    return rss_gib()


def memory_metrics(rss_peak_gib: float) -> dict[str, float]:
    """`memory/rss_peak_gib` (the largest of the step's samples), `memory/max_rss_gib` (the
    process's peak so far) and, on a GPU, `memory/cuda_peak_gib` (reset for the next step)."""
    out = {
        "memory/rss_peak_gib": rss_peak_gib,
        "memory/max_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }
    if torch.cuda.is_available():
        out["memory/cuda_peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
        torch.cuda.reset_peak_memory_stats()
    return out


def episode_stats(episodes: Sequence[Episode]) -> list[dict[str, Any]]:
    """Small per-episode summaries that are gathered across ranks."""
    stats = []
    for ep in episodes:
        env_fields = {k: float(v) for k, v in ep.final_info.items()
                      if isinstance(v, (int, float)) and k not in NOT_METRICS}
        stats.append({
            "task": ep.task_index, "group": ep.group, "score": ep.score,
            "turns": ep.n_turns, "tokens": ep.n_generated, "agents": len(ep.agents),
            "env_steps": ep.env_steps,
            "failed": sum(a.failure is not None for a in ep.agents),
            "cut": sum(t.finish_reason == "length" for a in ep.agents for t in a.turns),
            "env": env_fields,
            "credit": {} if ep.credit is None else {
                "case": ep.credit.case, "env_score": ep.credit.env_score,
                "failed_agents": ep.credit.failed_agents,
                "trained_turns": ep.credit.trained_turns,
                "dropped_turns": ep.credit.dropped_turns},
        })
    return stats


def credit_metrics(stats: list[dict[str, Any]]) -> dict[str, float]:
    """`credit/…`: what the turn selection did over the batch (episodes per case, failed
    agents, trained and dropped turns, and the env's reward before the rule)."""
    credits = [s["credit"] for s in stats if s.get("credit")]
    if not credits:
        return {}
    out = {f"credit/episodes_{case}": float(sum(c["case"] == case for c in credits))
           for case in ("ok", "lead_failed", "invalid_format")}
    for key in ("failed_agents", "trained_turns", "dropped_turns"):
        out[f"credit/{key}"] = float(sum(c[key] for c in credits))
    out["credit/env_score_mean"] = float(np.mean([c["env_score"] for c in credits]))
    return out


def gather_all(accelerator: Any, items: list[Any]) -> list[Any]:
    """The concatenation of every rank's `items` (rank order), on every rank."""
    if accelerator.num_processes == 1:
        return items
    from accelerate.utils import gather_object

    return [x for part in gather_object([items]) for x in part]


def rollout_metrics(stats: list[dict[str, Any]], groups: int, with_signal: int) -> dict[str, float]:
    """`score/…`, `rollout/…` and `env/…` metrics of a batch of episode summaries."""
    scores = np.array([s["score"] for s in stats], dtype=np.float64)
    n = max(len(stats), 1)
    out = {
        "score/mean": float(scores.mean()) if len(scores) else 0.0,
        "score/std": float(scores.std()) if len(scores) else 0.0,
        "score/max": float(scores.max()) if len(scores) else 0.0,
        "score/min": float(scores.min()) if len(scores) else 0.0,
        "rollout/episodes": float(len(stats)),
        "rollout/groups": float(groups),
        "rollout/groups_with_signal": float(with_signal),
        "rollout/generated_tokens": float(sum(s["tokens"] for s in stats)),
        "rollout/tokens_per_episode": sum(s["tokens"] for s in stats) / n,
        "rollout/turns_per_episode": sum(s["turns"] for s in stats) / n,
        "rollout/env_steps_max": float(max((s.get("env_steps", 0) for s in stats), default=0)),
        "rollout/agents_per_episode": sum(s["agents"] for s in stats) / n,
        "rollout/failed_agents": float(sum(s["failed"] for s in stats)),
        "rollout/cut_completions": float(sum(s["cut"] for s in stats)),
    }
    keys = sorted({k for s in stats for k in s["env"]})
    for k in keys:
        vals = [s["env"][k] for s in stats if k in s["env"]]
        out[f"env/{k}"] = float(np.mean(vals))
    return out
