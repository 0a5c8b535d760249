"""The clipped policy-gradient loss of multi-agent GRPO and its aggregations (pure functions).

Which GRPO this is, and where it departs from the paper (WideSeek-R1, DESIGN.md §2.4):

- Per token: min(ρA, clip(ρ, 1 − clip_low, 1 + clip_high)·A) with ρ = exp(logp − logp_old),
  asymmetric clipping (0.2 / 0.28 as in the paper's reference setup) and dual clipping: for
  A < 0 the objective is bounded below by dual_clip·A (10), so a huge ratio on a bad token cannot
  blow up the update. The log-ratio is clamped to ±20 before `exp` so that a masked or absurd
  token cannot produce inf·0 = NaN; inside that range the formula is exact.
- Aggregation "wideseek" is the paper's dual-level reweighting:
  −(1/E) Σ_episodes (1/N_e) Σ_agents (1/T_{e,a}) Σ_tokens objective — every episode weighs the
  same, every agent inside an episode weighs the same whatever its length, and so a lead with a
  short plan is not drowned by ten chatty subagents. N_e counts the agents with at least one
  generated token; E counts the batch's episodes (`num_episodes`, default: distinct ids).
  The reference implementation reaches the same weights through its three loss scales: group
  (1/E), agent (1/N_e times a uniform weight per turn) and turn level, which turns that uniform
  turn weight into |o_t| / Σ_t |o_t| and so, per token, into 1/T_{e,a}; there is no extra factor.
  Agents whose turns are not trained (the paper's turn selection, `wideseek_rl.credit`) have no
  rows and are not counted in N_e.
- Other aggregations, each a small function in `AGGREGATIONS`: "token_mean" (every generated
  token of the batch weighs the same, DAPO), "seq_mean" (every row weighs the same — note that
  packing an agent's turns into one row makes "row" mean "agent trajectory"), "dr_grpo"
  (a constant normaliser: rows × `max_tokens`, Dr. GRPO).
- Every aggregation is a per-row weight computed from the *whole* batch before any
  micro-batching, so the gradient does not depend on the micro-batch size or on packing
  ("wideseek", "token_mean", "dr_grpo"); see `row_weights` and `weighted_policy_loss`.
- Optional KL to a frozen reference model with the k3 estimator exp(r) − r − 1,
  r = logp_ref − logp, weighted like the policy term; off by default, as in the paper.
- No entropy bonus, no length penalty.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch

Aggregation = Literal["wideseek", "token_mean", "seq_mean", "dr_grpo"]
MAX_LOG_RATIO = 20.0

# A weight function gets per-row generated-token counts and ids (all (B,)) and returns per-row
# weights (B,): the loss is Σ_rows weight · Σ_tokens −objective.
WeightFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, int, int], torch.Tensor]


def _inverse(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x > 0, 1.0 / x.clamp(min=1e-30), torch.zeros_like(x))


def wideseek_weights(counts, episode_ids, agent_ids, num_episodes: int, max_tokens: int):
    """1 / (E · N_e · T_{e,a}) for each row of agent a in episode e."""
    counts = counts.double()
    _, ep = torch.unique(episode_ids, return_inverse=True)
    _, pair = torch.unique(torch.stack([episode_ids, agent_ids]), dim=1, return_inverse=True)
    n_pairs = int(pair.max()) + 1 if len(pair) else 0
    t_ea = counts.new_zeros(n_pairs).index_add_(0, pair, counts)
    ep_of_pair = pair.new_zeros(n_pairs).scatter_(0, pair, ep)
    n_e = counts.new_zeros(int(ep.max()) + 1 if len(ep) else 0)
    n_e.index_add_(0, ep_of_pair, (t_ea > 0).double())
    return _inverse(t_ea[pair] * n_e[ep]) / max(num_episodes, 1)


def token_mean_weights(counts, episode_ids, agent_ids, num_episodes: int, max_tokens: int):
    """1 / (generated tokens in the batch)."""
    total = counts.double().sum()
    return torch.full_like(counts, 1.0, dtype=torch.float64) * _inverse(total)


def seq_mean_weights(counts, episode_ids, agent_ids, num_episodes: int, max_tokens: int):
    """1 / (rows with tokens · that row's tokens)."""
    counts = counts.double()
    rows = (counts > 0).sum().double()
    return _inverse(counts) * _inverse(rows)


def dr_grpo_weights(counts, episode_ids, agent_ids, num_episodes: int, max_tokens: int):
    """1 / (rows · max_tokens): a constant, length-independent normaliser."""
    return torch.full_like(counts, 1.0 / (max(len(counts), 1) * max_tokens), dtype=torch.float64)


AGGREGATIONS: dict[str, WeightFn] = {
    "wideseek": wideseek_weights,
    "token_mean": token_mean_weights,
    "seq_mean": seq_mean_weights,
    "dr_grpo": dr_grpo_weights,
}


def row_weights(
    token_counts: torch.Tensor,
    episode_ids: torch.Tensor,
    agent_ids: torch.Tensor,
    aggregation: Aggregation = "wideseek",
    *,
    num_episodes: int | None = None,
    max_tokens: int = 1,
) -> torch.Tensor:
    """Per-row loss weights (float64, (B,)) for a whole batch, from generated-token counts."""
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {aggregation!r}; choose from {sorted(AGGREGATIONS)}")
    if not (token_counts.shape == episode_ids.shape == agent_ids.shape) or token_counts.ndim != 1:
        raise ValueError(
            f"token_counts, episode_ids and agent_ids must all be (B,), got "
            f"{tuple(token_counts.shape)}, {tuple(episode_ids.shape)}, {tuple(agent_ids.shape)}"
        )
    if num_episodes is None:
        num_episodes = int(torch.unique(episode_ids).numel())
    fn = AGGREGATIONS[aggregation]
    return fn(token_counts, episode_ids.long(), agent_ids.long(), num_episodes, max_tokens)


def clipped_objective(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.28,
    dual_clip: float | None = 10.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Per-token clipped objective (to be maximised) and boolean masks of what was clipped.
    `advantages` broadcasts against `logprobs` ((B,) is expanded to (B, 1))."""
    if advantages.ndim == 1:
        advantages = advantages[:, None]
    advantages = advantages.to(logprobs.dtype)
    log_ratio = (logprobs - old_logprobs).clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO)
    ratio = torch.exp(log_ratio)
    unclipped = ratio * advantages
    clipped = ratio.clamp(1.0 - clip_low, 1.0 + clip_high) * advantages
    objective = torch.minimum(unclipped, clipped)
    flags = {
        "clip_low": (ratio < 1.0 - clip_low) & (advantages < 0),
        "clip_high": (ratio > 1.0 + clip_high) & (advantages > 0),
    }
    if dual_clip is not None:
        if dual_clip <= 1.0:
            raise ValueError(f"dual_clip must be > 1 (or None), got {dual_clip}")
        floor = dual_clip * advantages
        flags["dual_clip"] = (advantages < 0) & (objective < floor)
        objective = torch.where(advantages < 0, torch.maximum(objective, floor), objective)
    else:
        flags["dual_clip"] = torch.zeros_like(flags["clip_low"])
    flags["ratio"] = ratio.detach()
    return objective, flags


def k3_kl(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(π ‖ π_ref): exp(r) − r − 1 with r = logp_ref − logp."""
    r = (ref_logprobs - logprobs).clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO)
    return torch.exp(r) - r - 1.0


def weighted_policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    weights: torch.Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.28,
    dual_clip: float | None = 10.0,
    ref_logprobs: torch.Tensor | None = None,
    kl_coef: float = 0.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Σ_rows weight_row · Σ_tokens (−objective + kl_coef · k3) over masked tokens.

    Returns the loss and detached token *sums* (`tokens`, `clip_low`, `clip_high`, `dual_clip`,
    `ratio`, `ratio_max`, `kl_ref`) that a caller adds up over micro-batches and ranks."""
    mask = mask.bool()
    objective, flags = clipped_objective(
        logprobs, old_logprobs, advantages,
        clip_low=clip_low, clip_high=clip_high, dual_clip=dual_clip,
    )
    per_token = -objective
    kl = None
    if ref_logprobs is not None:
        kl = k3_kl(logprobs, ref_logprobs)
        if kl_coef:
            per_token = per_token + kl_coef * kl
    w = weights.to(per_token.dtype)[:, None]
    loss = torch.where(mask, per_token * w, torch.zeros_like(per_token)).sum()
    zero = torch.zeros((), dtype=torch.float64, device=logprobs.device)

    def masked_sum(x: torch.Tensor) -> torch.Tensor:
        return torch.where(mask, x.detach().double(), zero).sum()

    stats = {
        "tokens": mask.sum().double(),
        "clip_low": masked_sum(flags["clip_low"]),
        "clip_high": masked_sum(flags["clip_high"]),
        "dual_clip": masked_sum(flags["dual_clip"]),
        "ratio": masked_sum(flags["ratio"]),
        "ratio_max": torch.where(mask, flags["ratio"].double(), zero).max()
        if mask.any() else zero,
        "kl_ref": masked_sum(kl) if kl is not None else zero,
    }
    return loss, stats


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    episode_ids: torch.Tensor,
    agent_ids: torch.Tensor,
    *,
    aggregation: Aggregation = "wideseek",
    clip_low: float = 0.2,
    clip_high: float = 0.28,
    dual_clip: float | None = 10.0,
    ref_logprobs: torch.Tensor | None = None,
    kl_coef: float = 0.0,
    num_episodes: int | None = None,
    max_tokens: int | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The GRPO loss of one whole batch and its metrics (means over generated tokens).

    `logprobs`, `old_logprobs`, `mask`: (B, T); `advantages`: (B,) or (B, T); `episode_ids`,
    `agent_ids`: (B,) integers. `max_tokens` (for "dr_grpo") defaults to T."""
    if logprobs.shape != old_logprobs.shape or logprobs.shape != mask.shape:
        raise ValueError(
            f"logprobs, old_logprobs and mask must have one (B, T) shape, got "
            f"{tuple(logprobs.shape)}, {tuple(old_logprobs.shape)}, {tuple(mask.shape)}"
        )
    weights = row_weights(
        mask.bool().sum(dim=1), episode_ids, agent_ids, aggregation,
        num_episodes=num_episodes, max_tokens=max_tokens or mask.shape[1],
    )
    loss, sums = weighted_policy_loss(
        logprobs, old_logprobs, advantages, mask, weights,
        clip_low=clip_low, clip_high=clip_high, dual_clip=dual_clip,
        ref_logprobs=ref_logprobs, kl_coef=kl_coef,
    )
    return loss, summarize(sums)


def summarize(sums: dict[str, torch.Tensor]) -> dict[str, float]:
    """Token sums from `weighted_policy_loss` -> fractions and means per generated token."""
    n = max(float(sums["tokens"]), 1.0)
    return {
        "tokens": float(sums["tokens"]),
        "clip_low_frac": float(sums["clip_low"]) / n,
        "clip_high_frac": float(sums["clip_high"]) / n,
        "dual_clip_frac": float(sums["dual_clip"]) / n,
        "ratio_mean": float(sums["ratio"]) / n,
        "ratio_max": float(sums["ratio_max"]),
        "kl_ref": float(sums["kl_ref"]) / n,
    }
