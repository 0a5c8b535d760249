"""The learner on real rollouts of the tiny model: sequences, packing, micro-batching, log-probs."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from wideseek_env.env.keyword_relay import KeywordRelayEnv
from wideseek_rl.advantages import group_advantages
from wideseek_rl.engines.base import SamplingParams
from wideseek_rl.engines.hf import HFEngine
from wideseek_rl.learner import (
    Learner,
    LossSettings,
    PolicyModule,
    build_sequences,
    plan_micro_batches,
)
from wideseek_rl.policy import LLMPolicy
from wideseek_rl.rollout import RolloutRunner


@pytest.fixture(scope="module")
def rollout(tiny_model_dir, tiny_tokenizer):
    """Episodes of two tasks × 3 from the tiny model, with their advantages."""
    engine = HFEngine.from_pretrained(tiny_model_dir)
    policy = LLMPolicy(engine, tiny_tokenizer, SamplingParams(max_new_tokens=6))
    policy.set_seed(0)
    tasks = [{"task_id": "relay-blue"}, {"task_id": "relay-plum"}]
    episodes = RolloutRunner(lambda: KeywordRelayEnv(), policy).run(tasks, 3, seed=0)
    adv = group_advantages([e.score for e in episodes], [e.task_index for e in episodes])
    assert adv.groups_with_signal == 2
    return episodes, list(adv.values)


@pytest.fixture(scope="module")
def accelerator():
    from accelerate import Accelerator

    return Accelerator(cpu=True)


def perturbed(rows, scale=0.3):
    """Move old log-probs by a deterministic function of (episode, agent, position), so ratios
    are not 1 and clipping is exercised; the same token gets the same shift packed or not."""
    out = []
    for r in rows:
        pos = np.arange(len(r.input_ids))
        shift = scale * np.sin(pos * 0.7 + 3 * r.agent_id + 11 * r.episode_id)
        old = np.where(r.generated, r.old_logprobs + shift, 0.0).astype(np.float32)
        out.append(type(r)(r.input_ids, r.generated, old, r.advantage, r.episode_id, r.agent_id))
    return out


def sgd_delta(accelerator, model, rows, *, micro_batch_tokens, num_episodes, settings=None):
    """Parameter change of one Learner.update with SGD(lr=1): minus the gradient."""
    model = copy.deepcopy(model)
    module = PolicyModule(model, chunk_tokens=64)
    opt = torch.optim.SGD(module.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    module, opt, sched = accelerator.prepare(module, opt, sched)
    learner = Learner(accelerator, module, opt, sched, settings or LossSettings(),
                      micro_batch_tokens=micro_batch_tokens, max_grad_norm=None)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    metrics = learner.update(rows, num_episodes=num_episodes)
    delta = {k: (v.detach() - before[k]) for k, v in model.named_parameters()}
    return delta, metrics


def test_build_sequences_packs_an_agents_turns(rollout):
    episodes, adv = rollout
    packed = build_sequences(episodes, adv, pack=True)
    unpacked = build_sequences(episodes, adv, pack=False)
    assert len(packed) == 3 * len(episodes)  # lead (2 turns → 1 row) + 2 helpers
    assert len(unpacked) == 4 * len(episodes)
    assert sum(r.n_generated for r in packed) == sum(r.n_generated for r in unpacked) == \
        sum(e.n_generated for e in episodes)
    lead = packed[0]
    t1, t2 = episodes[0].agents[0].turns
    assert np.array_equal(lead.input_ids, np.concatenate([t2.prompt_ids, t2.completion_ids]))
    s1, s2 = len(t1.prompt_ids), len(t2.prompt_ids)
    assert lead.generated[s1 : s1 + len(t1.completion_ids)].all()
    assert lead.generated[s2:].all() and lead.n_generated == t1.n_generated + t2.n_generated
    assert np.array_equal(lead.old_logprobs[s2:], t2.logprobs)
    assert {r.advantage for r in packed if r.episode_id == 0} == {adv[0]}
    ids = build_sequences(episodes, adv, episode_ids=[10 + i for i in range(len(episodes))])
    assert {r.episode_id for r in ids} == set(range(10, 10 + len(episodes)))


def test_plan_micro_batches():
    assert plan_micro_batches([5, 9, 3, 9], token_budget=18) == [[1, 3], [0, 2]]
    assert plan_micro_batches([50, 4], token_budget=10) == [[0], [1]]
    assert plan_micro_batches([10, 4, 6, 5], token_budget=100) == [[0, 2, 3], [1]]
    assert plan_micro_batches([], token_budget=10) == []


def test_chunked_head_equals_full_logits(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    ids = torch.randint(0, 1000, (3, 17), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[2, 12:] = 0
    chunked = PolicyModule(model, temperature=0.8, chunk_tokens=7)
    full = PolicyModule(model, temperature=0.8, chunk_tokens=0)
    lp_c, ent_c = chunked(ids, mask)
    lp_f, ent_f = full(ids, mask)
    assert torch.allclose(lp_c, lp_f, atol=1e-5) and torch.allclose(ent_c, ent_f, atol=1e-5)
    (g_c,) = torch.autograd.grad(lp_c[mask[:, 1:].bool()].sum(), model.model.embed_tokens.weight)
    (g_f,) = torch.autograd.grad(lp_f[mask[:, 1:].bool()].sum(), model.model.embed_tokens.weight)
    assert torch.allclose(g_c, g_f, atol=1e-5)


def test_the_head_at_chosen_positions_equals_the_full_head_there(tiny_model_dir):
    """The learner runs the output head at the generated positions only: there the log-probs,
    entropies and gradients are the full head's, and every other position holds 0."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    ids = torch.randint(0, 1000, (3, 17), generator=torch.Generator().manual_seed(1))
    attn = torch.ones_like(ids)
    attn[1, 10:] = 0
    where = torch.zeros((3, 16), dtype=torch.bool)
    where[0, 3:9], where[1, 2:5], where[2, 15] = True, True, True
    policy = PolicyModule(model, chunk_tokens=4)
    lp_s, ent_s = policy(ids, attn, where)
    lp_f, ent_f = policy(ids, attn)
    assert torch.allclose(lp_s[where], lp_f[where], atol=1e-5)
    assert torch.allclose(ent_s[where], ent_f[where], atol=1e-5)
    assert not lp_s[~where].any() and not ent_s[~where].any()
    (g_s,) = torch.autograd.grad(lp_s.sum(), model.model.embed_tokens.weight)
    (g_f,) = torch.autograd.grad(lp_f[where].sum(), model.model.embed_tokens.weight)
    assert torch.allclose(g_s, g_f, atol=1e-5)
    none = torch.zeros_like(where)  # no position asked for: zeros, and a graph to backpropagate
    lp_n, _ = policy(ids, attn, none)
    assert not lp_n.any() and lp_n.requires_grad


def test_right_padded_rows_score_as_each_row_alone(tiny_model_dir):
    """The learner's rows are right-padded, so `PolicyModule` drops the attention mask (fast
    causal kernels): every real token must still be scored as in its row alone, and a
    left-padded batch (which needs the mask) must be too."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    policy = PolicyModule(model, chunk_tokens=5)
    gen = torch.Generator().manual_seed(1)
    rows = [torch.randint(0, 1000, (n,), generator=gen) for n in (17, 9, 12)]
    alone = [policy(r[None], torch.ones(1, len(r), dtype=torch.long))[0][0] for r in rows]
    for side in ("right", "left"):
        ids = torch.zeros(3, 17, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, r in enumerate(rows):
            span = slice(0, len(r)) if side == "right" else slice(17 - len(r), 17)
            ids[i, span], mask[i, span] = r, 1
        lp, _ = policy(ids, mask)
        for i, r in enumerate(rows):
            got = lp[i, : len(r) - 1] if side == "right" else lp[i, 17 - len(r):]
            assert torch.allclose(got, alone[i], atol=1e-5), (side, i)


def test_engine_logprobs_line_up_with_the_learners(rollout, tiny_model_dir, accelerator):
    """First update with the engine's sampling log-probs as π_old: every ratio is 1 (an
    off-by-one between prompt and completion would make them anything but)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    rows = build_sequences(*rollout)
    _, m = sgd_delta(accelerator, model, rows, micro_batch_tokens=4096, num_episodes=6)
    assert m["loss/ratio_mean"] == pytest.approx(1.0, abs=1e-4)
    assert m["loss/ratio_max"] == pytest.approx(1.0, abs=1e-3)
    assert m["loss/clip_low_frac"] == m["loss/clip_high_frac"] == 0.0
    assert m["loss/tokens"] == sum(e.n_generated for e in rollout[0])
    assert 6.5 < m["loss/entropy"] < np.log(len(model.get_input_embeddings().weight)) + 1e-3


def test_packing_gives_the_same_loss_and_gradient(rollout, tiny_model_dir, accelerator):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    episodes, adv = rollout
    packed = perturbed(build_sequences(episodes, adv, pack=True))
    unpacked = perturbed(build_sequences(episodes, adv, pack=False))
    d_p, m_p = sgd_delta(accelerator, model, packed, micro_batch_tokens=4096, num_episodes=6)
    d_u, m_u = sgd_delta(accelerator, model, unpacked, micro_batch_tokens=4096, num_episodes=6)
    assert m_p["loss/clip_low_frac"] + m_p["loss/clip_high_frac"] > 0  # clipping is exercised
    assert m_p["loss/policy"] == pytest.approx(m_u["loss/policy"], rel=1e-4, abs=1e-7)
    assert m_p["loss/tokens"] == m_u["loss/tokens"]
    for name in d_p:
        assert torch.allclose(d_p[name], d_u[name], rtol=1e-3, atol=1e-7), name
    assert any(d.abs().max() > 0 for d in d_p.values())


@pytest.mark.parametrize("aggregation", ["wideseek", "seq_mean"])
def test_micro_batch_size_does_not_change_the_update(rollout, tiny_model_dir, accelerator,
                                                     aggregation):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    rows = perturbed(build_sequences(*rollout))
    settings = LossSettings(aggregation=aggregation)
    whole, m1 = sgd_delta(accelerator, model, rows, micro_batch_tokens=10**6, num_episodes=6,
                          settings=settings)
    tiny, m2 = sgd_delta(accelerator, model, rows, micro_batch_tokens=1, num_episodes=6,
                         settings=settings)
    assert m1["loss/micro_batches"] == 2  # lead rows, then the (less than half as long) helpers
    assert m2["loss/micro_batches"] == len(rows)
    assert m1["loss/policy"] == pytest.approx(m2["loss/policy"], rel=1e-5)
    for name in whole:
        # Summation order differs between micro-batchings: fp32 noise scales with the tensor.
        scale = float(whole[name].abs().max())
        assert torch.allclose(whole[name], tiny[name], rtol=1e-4, atol=1e-4 * scale), name


def test_recomputed_old_logprobs_and_kl_to_a_reference(rollout, tiny_model_dir, accelerator):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    rows = perturbed(build_sequences(*rollout), scale=2.0)
    _, m = sgd_delta(accelerator, model, rows, micro_batch_tokens=4096, num_episodes=6,
                     settings=LossSettings(recompute_old_logprobs=True))
    assert m["loss/ratio_mean"] == pytest.approx(1.0, abs=1e-6)  # π_old is the current policy
    module = PolicyModule(copy.deepcopy(model).requires_grad_(False), chunk_tokens=64)
    learner_model = PolicyModule(copy.deepcopy(model), chunk_tokens=64)
    opt = torch.optim.SGD(learner_model.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    learner = Learner(accelerator, learner_model, opt, sched, LossSettings(kl_coef=0.1),
                      ref_policy=module, max_grad_norm=None)
    first = learner.update(rows, num_episodes=6)
    second = learner.update(rows, num_episodes=6)
    assert first["loss/kl_ref"] == pytest.approx(0.0, abs=1e-9)  # same weights as the reference
    assert second["loss/kl_ref"] > 0.0
    with pytest.raises(ValueError, match="reference"):
        Learner(accelerator, learner_model, opt, sched, LossSettings(kl_coef=0.1))


def test_importance_ratio_guard_skips_a_micro_batch(rollout, tiny_model_dir, accelerator):
    """Helpers' rows where every 4th token was sampled by a far-off policy (π_old 4 nats below
    π: ratio e⁴ ≈ 55, mean ratio > 5) form their own micro-batch; the guard (threshold 5) drops
    it on its own: the update equals one where those rows carry no advantage (no gradient),
    and it is counted. Unguarded, the other tokens of those rows move the weights."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    episodes, adv = rollout
    rows = build_sequences(episodes, adv)

    def far_off(r):
        shift = np.where(np.arange(len(r.input_ids)) % 4 == 0, 4.0, 0.0)
        old = np.where(r.generated, r.old_logprobs - shift, 0.0).astype(np.float32)
        return type(r)(r.input_ids, r.generated, old, r.advantage, r.episode_id, r.agent_id)

    off = [far_off(r) if r.agent_id > 0 else r for r in rows]
    silent = [type(r)(r.input_ids, r.generated, r.old_logprobs, 0.0, r.episode_id, r.agent_id)
              if r.agent_id > 0 else r for r in rows]
    helper_tokens = sum(r.n_generated for r in rows if r.agent_id > 0)
    guarded, m = sgd_delta(accelerator, model, off, micro_batch_tokens=4096, num_episodes=6,
                           settings=LossSettings(max_ratio_mean=5.0))
    reference, m0 = sgd_delta(accelerator, model, silent, micro_batch_tokens=4096, num_episodes=6,
                              settings=LossSettings(max_ratio_mean=5.0))
    unguarded, m1 = sgd_delta(accelerator, model, off, micro_batch_tokens=4096, num_episodes=6,
                              settings=LossSettings(max_ratio_mean=None))
    assert m["loss/micro_batches"] == 2 and m["loss/skipped_micro_batches"] == 1
    assert m["loss/skipped_tokens"] == helper_tokens
    assert m0["loss/skipped_micro_batches"] == m1["loss/skipped_micro_batches"] == 0
    assert m["loss/ratio_mean"] > 5  # the metrics still show what was skipped
    for name in guarded:
        scale = float(reference[name].abs().max())
        assert torch.allclose(guarded[name], reference[name], rtol=1e-4, atol=1e-4 * scale), name
    assert any(not torch.allclose(unguarded[n], reference[n]) for n in guarded)
