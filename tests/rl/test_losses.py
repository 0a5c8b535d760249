"""policy_loss against an independent, loop-by-loop implementation of the paper's formula, plus
hand-computed cases for clipping, dual clipping, every aggregation and micro-batch invariance."""

from __future__ import annotations

import math

import pytest
import torch

from wideseek_rl.losses import AGGREGATIONS, k3_kl, policy_loss, row_weights, weighted_policy_loss


def reference_loss(logp, old, adv, mask, ep, ag, *, aggregation, cl=0.2, ch=0.28, dual=10.0,
                   max_tokens=None):
    """Plain-Python version written from the formula (no tensors, no vectorisation)."""
    B, T = len(logp), len(logp[0])

    def term(b, t):
        a = adv[b] if not isinstance(adv[b], list) else adv[b][t]
        r = math.exp(logp[b][t] - old[b][t])
        obj = min(r * a, min(max(r, 1 - cl), 1 + ch) * a)
        if dual is not None and a < 0:
            obj = max(obj, dual * a)
        return -obj

    if aggregation == "wideseek":
        episodes = sorted(set(ep))
        total = 0.0
        for e in episodes:
            agents = {}
            for b in range(B):
                if ep[b] == e:
                    agents.setdefault(ag[b], []).append(b)
            tokens = {a: sum(mask[b][t] for b in rows for t in range(T)) for a, rows in agents.items()}
            live = [a for a in agents if tokens[a] > 0]
            inner = 0.0
            for a in live:
                inner += sum(term(b, t) for b in agents[a] for t in range(T) if mask[b][t]) / tokens[a]
            if live:
                total += inner / len(live)
        return total / len(episodes)
    if aggregation == "token_mean":
        n = sum(map(sum, mask))
        return sum(term(b, t) for b in range(B) for t in range(T) if mask[b][t]) / n
    if aggregation == "seq_mean":
        rows = [b for b in range(B) if sum(mask[b])]
        return sum(sum(term(b, t) for t in range(T) if mask[b][t]) / sum(mask[b]) for b in rows) / len(rows)
    if aggregation == "dr_grpo":
        return sum(term(b, t) for b in range(B) for t in range(T) if mask[b][t]) / (B * (max_tokens or T))
    raise AssertionError(aggregation)


def random_batch(seed, B=7, T=6, per_token_adv=False):
    g = torch.Generator().manual_seed(seed)
    logp = -torch.rand(B, T, generator=g, dtype=torch.float64) * 3
    old = logp + (torch.rand(B, T, generator=g, dtype=torch.float64) - 0.5) * 1.6  # ratios ~0.45…2.2
    adv = torch.randn(B, T if per_token_adv else 1, generator=g, dtype=torch.float64)
    adv = adv if per_token_adv else adv[:, 0]
    mask = torch.rand(B, T, generator=g) < 0.7
    mask[0] = False  # a row without generated tokens
    ep = torch.tensor([0, 0, 0, 1, 1, 2, 2][:B])
    ag = torch.tensor([0, 1, 1, 0, 2, 0, 0][:B])
    return logp, old, adv, mask, ep, ag


@pytest.mark.parametrize("aggregation", sorted(AGGREGATIONS))
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("per_token_adv", [False, True])
def test_policy_loss_matches_independent_formula(aggregation, seed, per_token_adv):
    logp, old, adv, mask, ep, ag = random_batch(seed, per_token_adv=per_token_adv)
    loss, metrics = policy_loss(logp, old, adv, mask, ep, ag, aggregation=aggregation)
    expected = reference_loss(logp.tolist(), old.tolist(), adv.tolist(), mask.int().tolist(),
                              ep.tolist(), ag.tolist(), aggregation=aggregation)
    assert loss.item() == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert metrics["tokens"] == mask.sum().item()


def test_clipping_and_dual_clipping_by_hand():
    # One token each: (ratio, advantage) -> objective.
    ratios = torch.tensor([1.5, 0.5, 0.5, 20.0, 1.1])
    adv = torch.tensor([1.0, 1.0, -1.0, -1.0, -2.0])
    logp = torch.log(ratios)[:, None].double()
    old = torch.zeros_like(logp)
    mask = torch.ones_like(logp, dtype=torch.bool)
    ids = torch.arange(5)
    # A>0, ρ=1.5 -> clipped to 1.28; A>0, ρ=0.5 -> min(0.5, 0.8)=0.5;
    # A<0, ρ=0.5 -> min(-0.5, -0.8) = -0.8; A<0, ρ=20 -> min(-20, -1.28) = -20 -> dual clip -10;
    # A=-2, ρ=1.1 -> min(-2.2, -2.2) = -2.2.
    objectives = [1.28, 0.5, -0.8, -10.0, -2.2]
    loss, m = policy_loss(logp, old, adv.double(), mask, ids, torch.zeros(5, dtype=torch.long),
                          aggregation="token_mean")
    assert loss.item() == pytest.approx(-sum(objectives) / 5)
    assert m["clip_high_frac"] == pytest.approx(1 / 5)
    assert m["clip_low_frac"] == pytest.approx(1 / 5)
    assert m["dual_clip_frac"] == pytest.approx(1 / 5)
    loss_nodual, _ = policy_loss(logp, old, adv.double(), mask, ids, torch.zeros(5, dtype=torch.long),
                                 aggregation="token_mean", dual_clip=None)
    assert loss_nodual.item() == pytest.approx(-(1.28 + 0.5 - 0.8 - 20.0 - 2.2) / 5)


def test_dual_clipped_token_has_no_gradient_and_positive_token_does():
    logp = torch.tensor([[math.log(20.0), 0.0]], dtype=torch.float64, requires_grad=True)
    old = torch.zeros(1, 2, dtype=torch.float64)
    mask = torch.ones(1, 2, dtype=torch.bool)
    loss, _ = policy_loss(logp, old, torch.tensor([-1.0], dtype=torch.float64), mask,
                          torch.tensor([0]), torch.tensor([0]))
    loss.backward()
    assert logp.grad[0, 0].item() == 0.0  # dual-clipped
    assert logp.grad[0, 1].item() == pytest.approx(0.5)  # -(-1)·ρ / 2 tokens: pushes ρ down


def test_wideseek_weights_by_hand():
    counts = torch.tensor([3, 2, 5, 0, 4])
    ep = torch.tensor([0, 0, 0, 1, 1])
    ag = torch.tensor([0, 0, 1, 0, 1])
    # episode 0: agent 0 has 5 tokens over two rows, agent 1 has 5 -> N=2; episode 1: only
    # agent 1 has tokens -> N=1; E=2.
    w = row_weights(counts, ep, ag, "wideseek")
    assert w.tolist() == pytest.approx([1 / 20, 1 / 20, 1 / 20, 0.0, 1 / 8])
    # Episodes without any row still count in E when the caller says so.
    w4 = row_weights(counts, ep, ag, "wideseek", num_episodes=4)
    assert w4.tolist() == pytest.approx([1 / 40, 1 / 40, 1 / 40, 0.0, 1 / 16])
    assert row_weights(counts, ep, ag, "token_mean").tolist() == pytest.approx([1 / 14] * 5)
    assert row_weights(counts, ep, ag, "seq_mean").tolist() == pytest.approx(
        [1 / 12, 1 / 8, 1 / 20, 0.0, 1 / 16])
    assert row_weights(counts, ep, ag, "dr_grpo", max_tokens=10).tolist() == pytest.approx([1 / 50] * 5)
    with pytest.raises(ValueError, match="unknown aggregation"):
        row_weights(counts, ep, ag, "mean")  # type: ignore[arg-type]


@pytest.mark.parametrize("aggregation", ["wideseek", "token_mean", "seq_mean", "dr_grpo"])
def test_micro_batching_gives_the_same_gradient(aggregation):
    logp, old, adv, mask, ep, ag = random_batch(5, B=7, T=6)
    logp = logp.clone().requires_grad_(True)
    full, _ = policy_loss(logp, old, adv, mask, ep, ag, aggregation=aggregation)
    (full_grad,) = torch.autograd.grad(full, logp)
    weights = row_weights(mask.sum(1), ep, ag, aggregation, max_tokens=6)
    for micro in (1, 2, 3):
        grad = torch.zeros_like(logp)
        total = 0.0
        for s in range(0, 7, micro):
            part = slice(s, s + micro)
            lp = logp[part]
            loss, _ = weighted_policy_loss(lp, old[part], adv[part], mask[part], weights[part])
            (g,) = torch.autograd.grad(loss, lp)
            grad[part] += g
            total += loss.item()
        assert total == pytest.approx(full.item(), rel=1e-12)
        assert torch.allclose(grad, full_grad, rtol=1e-12, atol=1e-15)


def test_k3_kl_is_zero_at_equality_and_positive_elsewhere():
    lp = torch.tensor([-1.0, -2.0, -0.5])
    assert torch.all(k3_kl(lp, lp) == 0)
    ref = torch.tensor([-1.5, -1.0, -0.5])
    kl = k3_kl(lp, ref)
    r = ref - lp
    assert torch.allclose(kl, torch.exp(r) - r - 1)
    assert kl[0] > 0 and kl[1] > 0 and kl[2] == 0


def test_kl_term_is_added_with_the_same_weights():
    logp, old, adv, mask, ep, ag = random_batch(3)
    ref = logp - 0.3
    base, _ = policy_loss(logp, old, adv, mask, ep, ag)
    with_kl, m = policy_loss(logp, old, adv, mask, ep, ag, ref_logprobs=ref, kl_coef=0.5)
    zero_adv, _ = policy_loss(logp, logp, torch.zeros_like(adv), mask, ep, ag, ref_logprobs=ref,
                              kl_coef=0.5)
    k3 = math.exp(-0.3) + 0.3 - 1
    assert with_kl.item() - base.item() == pytest.approx(0.5 * k3, rel=1e-9)  # weights sum to 1
    assert zero_adv.item() == pytest.approx(0.5 * k3, rel=1e-9)
    assert m["kl_ref"] == pytest.approx(k3, rel=1e-9)


def test_shape_errors_are_clear():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        policy_loss(x, torch.zeros(2, 4), torch.zeros(2), torch.ones(2, 3), torch.arange(2),
                    torch.arange(2))
    with pytest.raises(ValueError, match="dual_clip"):
        policy_loss(x, x, torch.zeros(2), torch.ones(2, 3), torch.arange(2), torch.arange(2),
                    dual_clip=0.5)
