"""A Hugging Face generation engine: batched sampling with exact log-probs.

The decode loop is our own rather than `model.generate`, for three reasons: the log-prob of
each sampled token is taken from the raw logits (`log_softmax(logits / T)`), not from the
processed scores `generate` reports after top-k/top-p; sampling draws from an explicit
`torch.Generator`, so a call with a seed is reproducible whatever else runs in the process; and
the loop stays the same across transformers versions.

Prompts are left-padded and sorted by length into batches of at most `max_batch_size` prompts
and `max_batch_tokens` padded prompt tokens; rows that finished keep decoding a pad token (their
outputs are ignored) until every row of the batch is done.

The engine can share the trained module (pass the unwrapped model): generation then always sees
the current weights and `load_weights` with that module's own tensors is a no-op.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from wideseek_rl.engines.base import Completion, SamplingParams, WeightsSource, prompt_budgets


def _as_id_list(value: int | Sequence[int] | None) -> list[int]:
    if value is None:
        return []
    if isinstance(value, int):
        return [value]
    return [int(v) for v in value]


def filter_logits(scaled: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Set logits outside the top-k / nucleus to -inf (rows independent). `scaled` is
    (B, V) already divided by the temperature."""
    out = scaled
    if top_k and top_k < scaled.shape[-1]:
        kth = torch.topk(out, top_k, dim=-1).values[..., -1:]
        out = out.masked_fill(out < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(out, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        # Drop a token when the mass before it already reaches top_p (the top token always stays).
        drop_sorted = (torch.cumsum(probs, dim=-1) - probs) >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        out = out.masked_fill(drop, float("-inf"))
    return out


class HFEngine:
    """`GenerationEngine` over a Hugging Face causal LM (any device, any dtype)."""

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        stop_token_ids: Sequence[int],
        pad_token_id: int,
        max_batch_size: int = 64,
        max_batch_tokens: int = 65536,
        seed: int = 0,
    ):
        if not stop_token_ids:
            raise ValueError("an engine needs at least one stop token id (end of turn)")
        self.model = model
        self.stop_token_ids = tuple(int(t) for t in stop_token_ids)
        self.pad_token_id = int(pad_token_id)
        self.max_batch_size = max_batch_size
        self.max_batch_tokens = max_batch_tokens
        self._generator = torch.Generator(device="cpu").manual_seed(seed)
        self._keeps_logits: bool | None = None
        self.generate_calls = 0
        """Batches run so far (the prompts of one `generate` call may need several)."""

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike[str],
        *,
        dtype: torch.dtype | str = "auto",
        device: str | torch.device = "cpu",
        gguf_file: str | None = None,
        **kwargs,
    ) -> HFEngine:
        """Load a model directory (or a GGUF file inside it) and read its stop and pad ids from
        the generation config and tokenizer."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        extra = {"gguf_file": gguf_file} if gguf_file else {}
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **extra).to(device)
        tokenizer = AutoTokenizer.from_pretrained(path, **extra)
        stops = stop_ids_for(model, tokenizer)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
        return cls(model, stop_token_ids=stops, pad_token_id=pad, **kwargs)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def generate(
        self, prompts: Sequence[Sequence[int]], sampling: SamplingParams,
        max_new_tokens: Sequence[int] | None = None,
    ) -> list[Completion]:
        """One completion per prompt, in order; a row stops at a stop token or at its own
        token budget (`max_new_tokens[i]`, default `sampling.max_new_tokens`)."""
        if not prompts:
            return []
        budgets = prompt_budgets(prompts, sampling, max_new_tokens)
        for i, p in enumerate(prompts):
            if len(p) == 0:
                raise ValueError(f"prompt {i} is empty")
        generator = self._generator
        if sampling.seed is not None:
            generator = torch.Generator(device="cpu").manual_seed(sampling.seed)
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        results: list[Completion | None] = [None] * len(prompts)
        batch: list[int] = []
        for i in order:
            longest = len(prompts[i])  # sorted, so the newest prompt is the longest
            if batch and (
                len(batch) >= self.max_batch_size
                or (len(batch) + 1) * longest > self.max_batch_tokens
            ):
                self._run_batch(prompts, batch, budgets, sampling, generator, results)
                batch = []
            batch.append(i)
        self._run_batch(prompts, batch, budgets, sampling, generator, results)
        return [r for r in results if r is not None]

    @torch.no_grad()
    def _run_batch(
        self,
        prompts: Sequence[Sequence[int]],
        batch: list[int],
        budgets: Sequence[int],
        sampling: SamplingParams,
        generator: torch.Generator,
        results: list[Completion | None],
    ) -> None:
        for i in batch:
            if budgets[i] == 0:
                results[i] = Completion((), (), "length")
        batch = [i for i in batch if budgets[i] > 0]
        if not batch:
            return
        self.generate_calls += 1
        device = self.device
        limits = torch.tensor([budgets[i] for i in batch], device=device)
        longest_budget = int(limits.max())
        width = max(len(prompts[i]) for i in batch)
        ids = torch.full((len(batch), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, i in enumerate(batch):
            p = torch.as_tensor(list(prompts[i]), dtype=torch.long)
            ids[row, width - len(p) :] = p
            mask[row, width - len(p) :] = 1
        ids, mask = ids.to(device), mask.to(device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        stops = torch.tensor(
            sorted({*self.stop_token_ids, *sampling.stop_token_ids}), device=device
        )
        was_training = self.model.training
        self.model.eval()
        try:
            out = self.model(
                input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                **self._last_logits_only(),
            )
            past = out.past_key_values
            next_pos = positions[:, -1:] + 1
            done = torch.zeros(len(batch), dtype=torch.bool, device=device)
            tokens: list[torch.Tensor] = []
            logps: list[torch.Tensor] = []
            logits = out.logits[:, -1, :]
            for step in range(longest_budget):
                tok, logp = self._sample(logits, sampling, generator)
                tok = torch.where(done, torch.full_like(tok, self.pad_token_id), tok)
                tokens.append(tok)
                logps.append(logp)
                done = done | torch.isin(tok, stops) | (limits <= step + 1)
                if bool(done.all()):
                    break
                mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=-1)
                out = self.model(
                    input_ids=tok[:, None],
                    attention_mask=mask,
                    position_ids=next_pos,
                    past_key_values=past,
                    use_cache=True,
                )
                past, next_pos, logits = out.past_key_values, next_pos + 1, out.logits[:, -1, :]
        finally:
            self.model.train(was_training)
        tok_mat = torch.stack(tokens, dim=1).cpu().tolist()
        logp_mat = torch.stack(logps, dim=1).cpu().tolist()
        stop_set = set(stops.cpu().tolist())
        for row, i in enumerate(batch):
            row_ids, row_lp = tok_mat[row][: budgets[i]], logp_mat[row][: budgets[i]]
            end = next((k + 1 for k, t in enumerate(row_ids) if t in stop_set), None)
            if end is None:
                results[i] = Completion(tuple(row_ids), tuple(row_lp), "length")
            else:
                results[i] = Completion(tuple(row_ids[:end]), tuple(row_lp[:end]), "stop")

    def _last_logits_only(self) -> dict[str, int]:
        """`logits_to_keep=1` when the model takes it: the prefill then computes the LM head for
        the last position only, not a (batch, prompt length, vocabulary) tensor."""
        if self._keeps_logits is None:
            params = inspect.signature(self.model.forward).parameters
            self._keeps_logits = "logits_to_keep" in params
        return {"logits_to_keep": 1} if self._keeps_logits else {}

    def _sample(
        self, logits: torch.Tensor, sampling: SamplingParams, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits = logits.float()
        if sampling.temperature == 0:
            tok = logits.argmax(dim=-1)
            logp = torch.log_softmax(logits, dim=-1).gather(-1, tok[:, None])[:, 0]
            return tok, logp
        scaled = logits / sampling.temperature
        logp_all = torch.log_softmax(scaled, dim=-1)
        filtered = filter_logits(scaled, sampling.top_k, sampling.top_p)
        probs = torch.softmax(filtered, dim=-1)
        tok = torch.multinomial(probs.cpu(), 1, generator=generator)[:, 0].to(logits.device)
        return tok, logp_all.gather(-1, tok[:, None])[:, 0]

    def load_weights(self, weights: WeightsSource) -> None:
        """Copy new weights into the model (a no-op for the model's own tensors)."""
        state = _read_weights(weights) if not isinstance(weights, Mapping) else weights
        own = self.model.state_dict()
        if all(k in own and own[k].data_ptr() == v.data_ptr() for k, v in state.items()):
            return  # the engine shares the trained module: nothing to copy
        missing, unexpected = self.model.load_state_dict(dict(state), strict=False)
        tied = _tied_names(self.model)
        missing = [k for k in missing if k not in tied]
        if missing or unexpected:
            raise ValueError(f"weights do not match the model: missing {missing[:5]}, "
                             f"unexpected {list(unexpected)[:5]}")

    def close(self) -> None:
        self.model = None  # type: ignore[assignment]


def stop_ids_for(model: torch.nn.Module, tokenizer) -> list[int]:
    """End-of-turn ids: the generation config's eos ids, then the tokenizer's eos id."""
    gen = getattr(model, "generation_config", None)
    ids = _as_id_list(getattr(gen, "eos_token_id", None))
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(int(tokenizer.eos_token_id))
    if not ids:
        raise ValueError("the model has no eos token id in its generation config or tokenizer")
    return ids


def _read_weights(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    p = Path(path)
    files = sorted(p.glob("*.safetensors")) if p.is_dir() else [p]
    if not files:
        raise FileNotFoundError(f"no .safetensors files in {p}")
    state: dict[str, torch.Tensor] = {}
    for f in files:
        state.update(load_file(str(f)))
    return state


def _tied_names(model: torch.nn.Module) -> set[str]:
    """Names of parameters that share storage with another parameter (tied embeddings)."""
    seen: dict[int, str] = {}
    tied: set[str] = set()
    for name, tensor in model.state_dict(keep_vars=True).items():
        key = tensor.data_ptr()
        if key in seen:
            tied.update({name, seen[key]})
        seen[key] = name
    return tied
