"""The learner: episodes → training sequences → one Accelerate optimiser step.

- `build_sequences` turns every agent's turns into token sequences. With `pack=True` an agent's
  consecutive turns whose prompts extend each other (always, with `LLMPolicy`) become one
  sequence: the last turn's prompt + completion, with every turn's completion tokens marked as
  generated. A causal LM gives each token the same log-prob packed or not, so the loss is the
  same and the forward pass is far cheaper.
- `PolicyModule` wraps the Hugging Face model so that `accelerator.prepare` (DDP, FSDP, …)
  sees a forward that returns per-token log-probs and entropies; the LM head runs over chunks of
  positions under activation checkpointing, so the (tokens × vocabulary) logits of a long
  sequence are never all alive at once.
- `Learner.update` computes the loss weights over the whole (global) batch first, then runs
  micro-batches of at most `micro_batch_tokens` padded tokens with gradient accumulation,
  synchronising gradients across ranks only on the last one. DDP averages gradients over ranks,
  so each rank's loss is multiplied by the world size: the result is the gradient of the
  global loss whatever the micro-batch size, packing or number of ranks. Every rank runs the
  same number of micro-batches (a rank with fewer rows runs empty ones), so per-micro-batch
  collectives line up.
- The importance-ratio guard (`LossSettings.max_ratio_mean`, the reference's
  `early_stop_imp_ratio`): a micro-batch whose mean ratio π/π_old over its generated tokens
  (summed over ranks) exceeds the threshold contributes no gradient, on every rank; such
  micro-batches are counted in `loss/skipped_micro_batches`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.checkpoint import checkpoint

from wideseek_rl.losses import Aggregation, row_weights, weighted_policy_loss
from wideseek_rl.records import Episode, Turn


@dataclass(frozen=True, eq=False)
class TrainSequence:
    """One training row: token ids, which of them were generated, their sampling log-probs,
    the episode's advantage and the row's (episode, agent) identity."""

    input_ids: np.ndarray
    generated: np.ndarray
    old_logprobs: np.ndarray
    advantage: float
    episode_id: int
    agent_id: int

    @property
    def n_generated(self) -> int:
        return int(self.generated.sum())


def _continues(prev: Turn, nxt: Turn) -> bool:
    n = len(prev.prompt_ids) + len(prev.completion_ids)
    return len(nxt.prompt_ids) >= n and bool(
        np.array_equal(nxt.prompt_ids[: len(prev.prompt_ids)], prev.prompt_ids)
        and np.array_equal(nxt.prompt_ids[len(prev.prompt_ids) : n], prev.completion_ids)
    )


def _sequence(turns: Sequence[Turn], advantage: float, episode_id: int, agent_id: int,
              errors_as_context: bool = False):
    last = turns[-1]
    ids = np.concatenate([last.prompt_ids, last.completion_ids]).astype(np.int64)
    generated = np.zeros(len(ids), dtype=bool)
    old = np.zeros(len(ids), dtype=np.float32)
    for t in turns:
        if errors_as_context and t.format_error:
            continue  # in the row as context, not trained
        start = len(t.prompt_ids)
        generated[start : start + t.n_generated] = True
        old[start : start + t.n_generated] = t.logprobs
    return TrainSequence(ids, generated, old, float(advantage), episode_id, agent_id)


def build_sequences(
    episodes: Sequence[Episode],
    advantages: Sequence[float],
    *,
    pack: bool = True,
    episode_ids: Sequence[int] | None = None,
    format_error_advantage: float | None = None,
    format_errors_as_context: bool = False,
) -> list[TrainSequence]:
    """Training rows for `episodes`. `episode_ids` (default 0, 1, …) identify the episodes in
    the whole batch; agent ids are the agent's position in its episode. Turns without generated
    tokens are skipped. With `format_error_advantage` = c, a turn marked `format_error` is
    trained with advantage −c instead of its episode's (in a row of its own advantage: packing
    stops at a change of advantage). With `format_errors_as_context`, a marked turn stays in its
    row as context and none of its tokens is trained (SFT: `sft.skip_error_replies`); a row
    left with nothing to train is dropped."""
    if format_errors_as_context and format_error_advantage is not None:
        raise ValueError("a format error is trained at an advantage or kept as context, not both")
    if len(episodes) != len(advantages):
        raise ValueError(f"{len(episodes)} episodes but {len(advantages)} advantages")
    ids = list(range(len(episodes))) if episode_ids is None else list(episode_ids)
    if len(ids) != len(episodes):
        raise ValueError(f"{len(episodes)} episodes but {len(ids)} episode ids")
    rows: list[TrainSequence] = []
    for e, episode, adv in zip(ids, episodes, advantages):
        for a, trace in enumerate(episode.agents):
            turns = [t for t in trace.turns if t.n_generated > 0]
            chunk: list[Turn] = []
            chunk_adv = adv
            for turn in turns:
                turn_adv = (-format_error_advantage if format_error_advantage is not None
                            and turn.format_error else adv)
                if chunk and not (pack and turn_adv == chunk_adv and _continues(chunk[-1], turn)):
                    rows.append(_sequence(chunk, chunk_adv, e, a, format_errors_as_context))
                    chunk = []
                chunk.append(turn)
                chunk_adv = turn_adv
            if chunk:
                rows.append(_sequence(chunk, chunk_adv, e, a, format_errors_as_context))
    return [r for r in rows if r.n_generated] if format_errors_as_context else rows


def plan_micro_batches(lengths: Sequence[int], token_budget: int) -> list[list[int]]:
    """Group row indices (longest first) so that rows × longest row ≤ `token_budget`; a row
    longer than the budget gets a micro-batch of its own, and a row shorter than half the
    micro-batch's longest starts a new one (so padding never doubles the work)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    for i in order:
        if batches and (len(batches[-1]) + 1) * lengths[batches[-1][0]] <= token_budget \
                and 2 * lengths[i] >= lengths[batches[-1][0]]:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


class PolicyModule(torch.nn.Module):
    """A causal LM whose forward returns log-probs (and entropies) of the next tokens.

    `forward(input_ids, attention_mask)` → `(logprobs, entropy)`, both (B, L − 1): position t
    scores token t + 1 under `softmax(logits / temperature)`. `chunk_tokens = 0` falls back to
    the model's own forward (needed for models that post-process logits, e.g. soft-capping)."""

    def __init__(self, model: torch.nn.Module, *, temperature: float = 1.0, chunk_tokens: int = 4096):
        super().__init__()
        self.model = model
        self.temperature = temperature if temperature > 0 else 1.0
        self.chunk_tokens = chunk_tokens

    def _head(self, hidden: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model.get_output_embeddings()(hidden).float() / self.temperature
        return _score(logits, targets)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                positions: torch.Tensor | None = None):
        """``positions`` (bool, (B, L − 1)), when given, are the only positions the caller reads:
        the output head runs there alone and every other position holds 0 (the learner passes
        its generated-token mask; prompts are most of an agent's tokens)."""
        targets = input_ids[:, 1:]
        if bool((attention_mask[:, 1:] <= attention_mask[:, :-1]).all()):
            # Right-padded rows (the learner's): causal attention alone keeps every real token
            # from seeing the padding after it, and attention without a mask runs the fast
            # causal kernels (about 20 % less CPU time for the whole forward and backward).
            attention_mask = None
        if self.chunk_tokens <= 0:
            logits = self.model(
                input_ids=input_ids, attention_mask=attention_mask, use_cache=False
            ).logits
            return _score(logits[:, :-1].float() / self.temperature, targets)
        base = getattr(self.model, self.model.base_model_prefix)
        out = base(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        hidden = out.last_hidden_state[:, :-1]
        b, n, d = hidden.shape
        flat_h, flat_t = hidden.reshape(b * n, d), targets.reshape(b * n)
        if positions is not None:
            where = positions.reshape(b * n).nonzero()[:, 0]
            lp, ent = self._chunked_head(flat_h[where], flat_t[where])
            logprobs = torch.zeros(b * n, dtype=lp.dtype, device=lp.device).index_put((where,), lp)
            entropy = torch.zeros(b * n, dtype=ent.dtype, device=ent.device).index_put((where,), ent)
            return logprobs.reshape(b, n), entropy.reshape(b, n)
        lp, ent = self._chunked_head(flat_h, flat_t)
        return lp.reshape(b, n), ent.reshape(b, n)

    def _chunked_head(self, flat_h: torch.Tensor, flat_t: torch.Tensor):
        """The head over (N, d) hidden states in chunks of `chunk_tokens`, each recomputed in the
        backward pass instead of keeping its (chunk, vocab) logits."""
        lps, ents = [], []
        for s in range(0, flat_h.shape[0], self.chunk_tokens):
            h, t = flat_h[s : s + self.chunk_tokens], flat_t[s : s + self.chunk_tokens]
            if torch.is_grad_enabled():
                lp, ent = checkpoint(self._head, h, t, use_reentrant=False)
            else:
                lp, ent = self._head(h, t)
            lps.append(lp)
            ents.append(ent)
        if not lps:  # no position asked for
            empty = flat_h.new_zeros(0, dtype=torch.float32)
            return empty + flat_h.sum() * 0.0, empty
        return torch.cat(lps), torch.cat(ents)


def _accumulate(total: dict[str, torch.Tensor], part: dict[str, torch.Tensor]) -> None:
    for key, value in part.items():
        if key not in total:
            total[key] = value
        elif key == "ratio_max":
            total[key] = torch.maximum(total[key], value)
        else:
            total[key] = total[key] + value


def _score(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    logz = torch.logsumexp(logits, dim=-1)
    logprobs = logits.gather(-1, targets[..., None])[..., 0] - logz
    with torch.no_grad():
        entropy = logz - (torch.softmax(logits, dim=-1) * logits).sum(-1)
    return logprobs, entropy


@dataclass(frozen=True)
class LossSettings:
    """What `Learner.update` needs from the loss configuration."""

    aggregation: Aggregation = "wideseek"
    clip_low: float = 0.2
    clip_high: float = 0.28
    dual_clip: float | None = 10.0
    kl_coef: float = 0.0
    max_tokens: int = 1
    """Constant normaliser of the "dr_grpo" aggregation (the generation budget)."""
    recompute_old_logprobs: bool = False
    """Use the trainer's log-probs before the update instead of the engine's sampling ones."""
    max_ratio_mean: float | None = None
    """Skip a micro-batch whose mean importance ratio exceeds this (None: never)."""


class Learner:
    """Owns the prepared policy, optimiser and scheduler; `update` is one optimiser step."""

    def __init__(
        self,
        accelerator: Any,
        policy: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        settings: LossSettings,
        *,
        micro_batch_tokens: int = 8192,
        max_grad_norm: float | None = 1.0,
        pad_token_id: int = 0,
        ref_policy: torch.nn.Module | None = None,
    ):
        self.accelerator = accelerator
        self.policy = policy
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.settings = settings
        self.micro_batch_tokens = micro_batch_tokens
        self.max_grad_norm = max_grad_norm
        self.pad_token_id = pad_token_id
        self.ref_policy = ref_policy
        if settings.kl_coef and ref_policy is None:
            raise ValueError("kl_coef > 0 needs a reference policy")

    def _collate(self, rows: Sequence[TrainSequence]) -> dict[str, torch.Tensor]:
        device = self.accelerator.device
        width = max(len(r.input_ids) for r in rows)
        ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        attn = torch.zeros((len(rows), width), dtype=torch.long)
        gen = torch.zeros((len(rows), width), dtype=torch.bool)
        old = torch.zeros((len(rows), width), dtype=torch.float32)
        for i, r in enumerate(rows):
            n = len(r.input_ids)
            ids[i, :n] = torch.from_numpy(r.input_ids)
            attn[i, :n] = 1
            gen[i, :n] = torch.from_numpy(r.generated)
            old[i, :n] = torch.from_numpy(r.old_logprobs)
        adv = torch.tensor([r.advantage for r in rows], dtype=torch.float32)
        batch = {"input_ids": ids, "attention_mask": attn, "mask": gen[:, 1:],
                 "old_logprobs": old[:, 1:], "advantages": adv}
        return {k: v.to(device) for k, v in batch.items()}

    def _global_plan(self, rows: Sequence[TrainSequence],
                     num_episodes: int) -> tuple[torch.Tensor, list[list[int]]]:
        """This rank's row weights (computed over every rank's rows) and its micro-batch plan,
        padded with empty micro-batches to the longest plan of any rank."""
        from accelerate.utils import gather_object

        local = [(r.n_generated, r.episode_id, r.agent_id, len(r.input_ids)) for r in rows]
        per_rank = gather_object([local]) if self.accelerator.num_processes > 1 else [local]
        everything = [x for part in per_rank for x in part]
        offset = sum(len(p) for p in per_rank[: self.accelerator.process_index])
        plans = [plan_micro_batches([x[3] for x in part], self.micro_batch_tokens)
                 for part in per_rank]
        plan = plans[self.accelerator.process_index]
        plan += [[] for _ in range(max(len(p) for p in plans) - len(plan))]
        if not everything:
            return torch.zeros(0, dtype=torch.float64), plan
        counts, eps, agents = (torch.tensor(c) for c in list(zip(*everything))[:3])
        w = row_weights(counts, eps, agents, self.settings.aggregation,
                        num_episodes=num_episodes, max_tokens=self.settings.max_tokens)
        return w[offset : offset + len(rows)], plan

    def update(self, rows: Sequence[TrainSequence], num_episodes: int) -> dict[str, float]:
        """One optimiser step on this rank's `rows`; `num_episodes` is the global batch's E.
        Returns metrics reduced over ranks."""
        acc, s = self.accelerator, self.settings
        weights, plan = self._global_plan(rows, num_episodes)
        self.policy.train()
        if s.recompute_old_logprobs:
            rows = self._recompute_old(rows, plan)
        sums: dict[str, torch.Tensor] = {}
        entropy_sum = torch.zeros((), dtype=torch.float64, device=acc.device)
        loss_sum = torch.zeros((), dtype=torch.float64, device=acc.device)
        skipped = torch.zeros(2, dtype=torch.float64, device=acc.device)  # micro-batches, tokens
        self.optimizer.zero_grad(set_to_none=True)
        if not plan:
            self._empty_backward()
        for k, idx in enumerate(plan):
            sync = k == len(plan) - 1
            ctx = contextlib.nullcontext() if sync else acc.no_sync(self.policy)
            if not idx:  # this rank has no rows left: join the micro-batch with a zero loss
                with ctx:
                    self._guard({}, skipped)
                    self._empty_backward()
                continue
            batch = self._collate([rows[i] for i in idx])
            with ctx:
                with acc.autocast():
                    logprobs, entropy = self.policy(batch["input_ids"], batch["attention_mask"],
                                                    batch["mask"])
                    loss, part = self.micro_batch_loss(batch, logprobs, weights[idx].to(acc.device))
                if self._guard(part, skipped):
                    loss = loss * 0.0
                acc.backward(loss * acc.num_processes)
            _accumulate(sums, part)
            entropy_sum += torch.where(batch["mask"], entropy.double(), 0.0).sum()
            loss_sum += loss.detach().double()
        grad_norm = None
        if self.max_grad_norm is not None and self.max_grad_norm > 0:
            grad_norm = acc.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        out = self._metrics(sums, entropy_sum, loss_sum, grad_norm, lr, len(plan))
        out["loss/skipped_micro_batches"], out["loss/skipped_tokens"] = skipped.tolist()
        out["loss/step_skipped"] = 0.0
        return out

    def skip_update(self) -> dict[str, float]:
        """A step without an optimiser step (`loss.skip_steps_without_signal`): the weights and
        the optimiser's moments stay as they are; the learning-rate schedule moves on."""
        lr = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step()
        return {"loss/step_skipped": 1.0, "loss/grad_norm": 0.0, "loss/tokens": 0.0,
                "loss/lr": float(lr), "loss/micro_batches": 0.0}

    def micro_batch_loss(self, batch: dict[str, torch.Tensor], logprobs: torch.Tensor,
                         weights: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss of one micro-batch (its rows weighted by `weights`) and its token sums: the
        clipped GRPO objective (a subclass may train another objective on the same rows)."""
        s = self.settings
        ref = None
        if self.ref_policy is not None:
            with torch.no_grad():
                ref, _ = self.ref_policy(batch["input_ids"], batch["attention_mask"], batch["mask"])
        return weighted_policy_loss(
            logprobs.float(), batch["old_logprobs"], batch["advantages"], batch["mask"], weights,
            clip_low=s.clip_low, clip_high=s.clip_high, dual_clip=s.dual_clip,
            ref_logprobs=ref, kl_coef=s.kl_coef,
        )

    def _guard(self, part: dict[str, torch.Tensor], skipped: torch.Tensor) -> bool:
        """True when the micro-batch's mean ratio (over its tokens on every rank) exceeds
        `max_ratio_mean`; every rank calls it for every micro-batch (a collective)."""
        limit = self.settings.max_ratio_mean
        if limit is None:
            return False
        acc = self.accelerator
        vec = torch.stack([torch.as_tensor(part.get(k, 0.0), dtype=torch.float64,
                                           device=acc.device) for k in ("ratio", "tokens")])
        if acc.num_processes > 1:
            vec = acc.reduce(vec, reduction="sum")
        ratio_sum, tokens = vec.tolist()
        if tokens > 0 and ratio_sum / tokens > limit:
            skipped += torch.tensor([1.0, tokens], dtype=torch.float64, device=skipped.device)
            return True
        return False

    def _recompute_old(self, rows, plan) -> list[TrainSequence]:
        rows = list(rows)
        with torch.no_grad():
            for idx in plan:
                if not idx:
                    continue
                batch = self._collate([rows[i] for i in idx])
                with self.accelerator.autocast():
                    lp, _ = self.policy(batch["input_ids"], batch["attention_mask"], batch["mask"])
                lp = lp.float().cpu().numpy()
                for j, i in enumerate(idx):
                    r = rows[i]
                    old = np.zeros_like(r.old_logprobs)
                    old[1:] = np.where(r.generated[1:], lp[j, : len(r.input_ids) - 1], 0.0)
                    rows[i] = TrainSequence(r.input_ids, r.generated, old, r.advantage,
                                            r.episode_id, r.agent_id)
        return rows

    def _empty_backward(self) -> None:
        """A rank without rows still joins the gradient all-reduce (with zero gradients)."""
        dev = self.accelerator.device
        ids = torch.full((1, 2), self.pad_token_id, dtype=torch.long, device=dev)
        logprobs, _ = self.policy(ids, torch.ones_like(ids))
        self.accelerator.backward(logprobs.sum() * 0.0)

    def _metrics(self, sums, entropy_sum, loss_sum, grad_norm, lr, n_micro) -> dict[str, float]:
        acc = self.accelerator
        keys = ["tokens", "clip_low", "clip_high", "dual_clip", "ratio", "kl_ref"]
        dev = acc.device
        vec = torch.stack([torch.as_tensor(sums.get(k, 0.0), dtype=torch.float64, device=dev)
                           for k in keys] + [entropy_sum, loss_sum])
        rmax = torch.as_tensor(sums.get("ratio_max", 0.0), dtype=torch.float64, device=dev)
        if acc.num_processes > 1:
            vec = acc.reduce(vec, reduction="sum")
            rmax = acc.gather(rmax[None]).max()
        total = dict(zip([*keys, "entropy", "loss"], vec.tolist()))
        n = max(total["tokens"], 1.0)
        out = {
            "loss/policy": total["loss"],
            "loss/tokens": total["tokens"],
            "loss/clip_low_frac": total["clip_low"] / n,
            "loss/clip_high_frac": total["clip_high"] / n,
            "loss/dual_clip_frac": total["dual_clip"] / n,
            "loss/ratio_mean": total["ratio"] / n,
            "loss/ratio_max": float(rmax),
            "loss/entropy": total["entropy"] / n,
            "loss/lr": float(lr),
            "loss/micro_batches": float(n_micro),
        }
        if self.ref_policy is not None:
            out["loss/kl_ref"] = total["kl_ref"] / n
        if grad_norm is not None:
            g = float(grad_norm)
            out["loss/grad_norm"] = g if math.isfinite(g) else float("nan")
        return out
