"""Group-relative advantages of multi-agent GRPO (pure functions).

Which GRPO this is, and where it departs from the paper (WideSeek-R1, DESIGN.md §2.4):

- One advantage per *episode*: A_i = (R_i − mean_group) / (std_group + ε), where a group is
  the G episodes of one task. The learner gives A_i to every token generated in episode i, by
  every agent (lead and subagents alike) — the paper's multi-agent advantage assignment; there
  is no per-agent or per-turn credit.
- `std` is the sample standard deviation (N − 1 in the denominator), as in the GRPO code most
  people run (verl, TRL); the paper's formula does not say which.
- `scale` picks the denominator: "group" (the paper), "batch" (the std of all scores in the
  batch, which keeps easy and hard tasks on one scale) or "none" (plain centring, Dr. GRPO).
- A group of one episode, or a group whose rewards are all equal, has advantage exactly 0 under
  every scale; `groups_with_signal` counts the groups that do carry a learning signal. Such groups
  stay in the batch (they still count in the loss's 1/E), as in the paper; nothing is resampled.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

AdvantageScale = Literal["group", "batch", "none"]


@dataclass(frozen=True)
class Advantages:
    """Per-episode advantages (same order as the scores) and how many groups carry signal."""

    values: tuple[float, ...]
    groups: int
    groups_with_signal: int


def _std(x: np.ndarray) -> float:
    return float(np.std(x, ddof=1)) if len(x) > 1 else 0.0


def group_advantages(
    scores: Sequence[float],
    group_ids: Sequence[Hashable],
    *,
    scale: AdvantageScale = "group",
    eps: float = 1e-6,
) -> Advantages:
    """Group-normalised advantages of `scores` (one per episode); episodes with the same
    `group_ids` entry form a group."""
    if len(scores) != len(group_ids):
        raise ValueError(f"{len(scores)} scores but {len(group_ids)} group ids")
    if scale not in ("group", "batch", "none"):
        raise ValueError(f"unknown advantage scale {scale!r}; use 'group', 'batch' or 'none'")
    r = np.asarray(scores, dtype=np.float64)
    if not np.all(np.isfinite(r)):
        raise ValueError(f"scores must be finite, got {r[~np.isfinite(r)][:3].tolist()}")
    members: dict[Hashable, list[int]] = {}
    for i, g in enumerate(group_ids):
        members.setdefault(g, []).append(i)
    batch_std = _std(r)
    out = np.zeros_like(r)
    with_signal = 0
    for idx in members.values():
        rg = r[idx]
        if len(idx) < 2 or np.ptp(rg) == 0.0:
            continue  # no signal: advantage stays exactly 0
        with_signal += 1
        centred = rg - rg.mean()
        if scale == "group":
            out[idx] = centred / (_std(rg) + eps)
        elif scale == "batch":
            out[idx] = centred / (batch_std + eps)
        else:
            out[idx] = centred
    return Advantages(tuple(float(a) for a in out), len(members), with_signal)
