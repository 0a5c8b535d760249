"""Loss and advantage cases that mutation testing found unguarded (benchmarks/mutation.py, group
"losses"): which tokens each clip marks (not only how many), the boundaries of the clip ranges,
the paper's default clip values, a row of exactly one generated token, the log-ratio clamp, shape
checks and read-only advantage records. Values are worked out by hand; ratios are exact in
float64 (exp(log r) == r for the r used here)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from wideseek_rl.advantages import group_advantages
from wideseek_rl.losses import MAX_LOG_RATIO, clipped_objective, policy_loss, row_weights


def objective_of(ratios: list[float], advantages: list[float], **kwargs):
    logp = torch.tensor([[math.log(r)] for r in ratios], dtype=torch.float64)
    return clipped_objective(logp, torch.zeros_like(logp),
                             torch.tensor(advantages, dtype=torch.float64), **kwargs)


def test_each_clip_marks_exactly_its_tokens() -> None:
    # ratio, advantage: clip_high marks only ρ > 1.28 with A > 0; clip_low only ρ < 0.8 with A < 0
    ratios = [1.5, 1.5, 0.5, 0.5, 1.28, 0.8, 0.5, 2.0]
    advs = [1.0, -1.0, -1.0, 1.0, 1.0, -1.0, 0.0, 0.0]
    _, flags = objective_of(ratios, advs)
    assert flags["clip_high"][:, 0].tolist() == [True, False, False, False, False, False, False,
                                                 False]
    assert flags["clip_low"][:, 0].tolist() == [False, False, True, False, False, False, False,
                                                False]


def test_the_paper_defaults_of_the_clipped_objective() -> None:
    # defaults 0.2 / 0.28 / dual 10: ρ=1.5, A=1 -> 1.28; ρ=0.5, A=-1 -> -0.8; ρ=20, A=-1 -> -10
    objective, flags = objective_of([1.5, 0.5, 20.0, 1.25, 0.85], [1.0, -1.0, -1.0, 1.0, -1.0])
    assert objective[:, 0].tolist() == pytest.approx([1.28, -0.8, -10.0, 1.25, -0.85])
    assert flags["dual_clip"][:, 0].tolist() == [False, False, True, False, False]


def test_dual_clip_marks_only_tokens_it_changes() -> None:
    # A=-1, ρ=4, dual 4: min(-4, -1.28) = -4 equals the floor -4: nothing changed, not marked
    objective, flags = objective_of([4.0, 8.0], [-1.0, -1.0], dual_clip=4.0)
    assert objective[:, 0].tolist() == [-4.0, -4.0]
    assert flags["dual_clip"][:, 0].tolist() == [False, True]
    with pytest.raises(ValueError, match="dual_clip must be > 1"):
        objective_of([1.0], [1.0], dual_clip=1.0)


def test_a_row_of_one_generated_token_has_weight_one_over_its_episode() -> None:
    counts = torch.tensor([1, 1, 2])
    ep = torch.tensor([0, 1, 1])
    ag = torch.tensor([0, 0, 1])
    # E = 2; episode 0: one agent with 1 token -> 1/2; episode 1: N = 2 agents of 1 and 2 tokens
    assert row_weights(counts, ep, ag, "wideseek").tolist() == pytest.approx([1 / 2, 1 / 4, 1 / 8])
    assert row_weights(counts, ep, ag, "seq_mean").tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 6])
    assert row_weights(torch.tensor([1]), torch.tensor([0]), torch.tensor([0]),
                       "token_mean").tolist() == [1.0]


def test_dr_grpo_default_normaliser_and_shape_checks() -> None:
    counts, ids = torch.tensor([3, 1]), torch.tensor([0, 1])
    assert row_weights(counts, ids, ids, "dr_grpo").tolist() == [0.5, 0.5]  # rows x 1 token
    with pytest.raises(ValueError, match=r"must all be \(B,\)"):
        row_weights(counts, ids, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"must all be \(B,\)"):
        row_weights(counts[None], ids[None], ids[None])  # same shapes, but not (B,)


def test_the_log_ratio_is_clamped_at_twenty() -> None:
    logp = torch.tensor([[30.0, -30.0, 1000.0]], dtype=torch.float64)
    old = torch.zeros_like(logp)
    mask = torch.tensor([[True, True, False]])
    _, flags = clipped_objective(logp, old, torch.tensor([1.0], dtype=torch.float64))
    assert flags["ratio"][0].tolist() == pytest.approx(
        [math.exp(MAX_LOG_RATIO), math.exp(-MAX_LOG_RATIO), math.exp(MAX_LOG_RATIO)])
    assert MAX_LOG_RATIO == 20.0
    loss, metrics = policy_loss(logp, old, torch.tensor([-1.0], dtype=torch.float64), mask,
                                torch.tensor([0]), torch.tensor([0]))
    assert math.isfinite(loss.item()) and metrics["ratio_max"] == pytest.approx(math.exp(20.0))


def test_advantage_records_are_read_only() -> None:
    adv = group_advantages([1.0, 0.0], ["t", "t"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        adv.groups = 3  # type: ignore[misc]


def test_metrics_are_means_per_generated_token() -> None:
    logp = torch.tensor([[math.log(1.5), math.log(0.5), 0.0]], dtype=torch.float64)
    mask = torch.tensor([[True, True, False]])
    _, metrics = policy_loss(logp, torch.zeros_like(logp), torch.tensor([1.0], dtype=torch.float64),
                             mask, torch.tensor([0]), torch.tensor([0]))
    assert metrics["tokens"] == 2
    assert metrics["ratio_mean"] == pytest.approx(1.0)  # (1.5 + 0.5) / 2; the masked 1.0 not counted
    assert metrics["ratio_max"] == pytest.approx(1.5)
    assert metrics["clip_high_frac"] == pytest.approx(0.5)
