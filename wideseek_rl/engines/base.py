"""The `GenerationEngine` protocol and its records.

An engine maps prompts (token ids) to completions (token ids plus the log-probability the
sampler assigned to each sampled token) and can load new weights. The log-probs are those of the
distribution the learner evaluates: `log_softmax(logits / temperature)` at the sampled token,
computed from the model's raw logits before any top-k/top-p truncation, so the importance ratio
of the first update is exactly 1 up to floating-point noise. With `temperature == 0` (greedy) the
log-probs are those of `log_softmax(logits)`.

A vLLM engine (CUDA or CPU build) and an OpenAI-server client implement the same protocol.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import torch

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class SamplingParams:
    """How to sample one batch of completions."""

    max_new_tokens: int = 256
    """Upper bound on generated tokens per completion (the engine may stop earlier)."""
    temperature: float = 1.0
    """Softmax temperature; 0 means greedy decoding."""
    top_p: float = 1.0
    """Nucleus sampling mass (1.0 disables it)."""
    top_k: int = 0
    """Keep only the k most likely tokens (0 disables it)."""
    seed: int | None = None
    """Seed of this call's sampler; None draws from the engine's own generator."""
    stop_token_ids: tuple[int, ...] = ()
    """Extra token ids that end a completion (the engine's end-of-turn ids always do)."""

    def __post_init__(self) -> None:
        if self.max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")


@dataclass(frozen=True)
class Completion:
    """One generated completion: its tokens, their sampling log-probs and why it stopped.

    `token_ids` include the stop token when `finish_reason == "stop"`."""

    token_ids: tuple[int, ...]
    logprobs: tuple[float, ...]
    finish_reason: FinishReason

    def __post_init__(self) -> None:
        if len(self.token_ids) != len(self.logprobs):
            raise ValueError(
                f"{len(self.token_ids)} token ids but {len(self.logprobs)} log-probs"
            )


WeightsSource = Mapping[str, torch.Tensor] | str | os.PathLike[str]


def prompt_budgets(
    prompts: Sequence[Sequence[int]], sampling: SamplingParams,
    max_new_tokens: Sequence[int] | None,
) -> list[int]:
    """Every prompt's cap on new tokens: its entry of `max_new_tokens` (each at most
    `sampling.max_new_tokens`), or `sampling.max_new_tokens` for all when None."""
    if max_new_tokens is None:
        return [sampling.max_new_tokens] * len(prompts)
    if len(max_new_tokens) != len(prompts):
        raise ValueError(f"{len(prompts)} prompts but {len(max_new_tokens)} token budgets")
    out = [int(b) for b in max_new_tokens]
    bad = [b for b in out if not 0 <= b <= sampling.max_new_tokens]
    if bad:
        raise ValueError(f"token budgets must be in [0, {sampling.max_new_tokens}], got {bad[:3]}")
    return out


@runtime_checkable
class GenerationEngine(Protocol):
    """Anything that generates completions for token-id prompts and can take new weights."""

    def generate(
        self, prompts: Sequence[Sequence[int]], sampling: SamplingParams,
        max_new_tokens: Sequence[int] | None = None,
    ) -> list[Completion]:
        """One completion per prompt, in order; `max_new_tokens` optionally caps each prompt's
        completion below `sampling.max_new_tokens` (one call serves prompts of any budget)."""
        ...

    def load_weights(self, weights: WeightsSource) -> None:
        """Replace the model weights with a state dict (parameter name -> tensor, as in the
        trained Hugging Face model) or a directory/file of safetensors."""
        ...

    def close(self) -> None:
        """Release the engine's resources (a no-op where there are none)."""
        ...
