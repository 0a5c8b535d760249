"""Checks of a training configuration, run before anything heavy starts.

`validate(config)` looks at values only (no files, no imports of torch's heavy parts) and raises
`ConfigError` naming the field as it is written on the command line (`optim.lr`, …).
`check_model(config)` makes sure the model can be found (a local directory with a config, a GGUF
file inside it, or a Hugging Face id whose config resolves) without loading any weights.
`check_placement(...)` refuses distributed setups the trainer cannot serve, at start, with the
reason: FSDP and DeepSpeed (the engine needs full weights on every rank, which FSDP and ZeRO-3
shard; ZeRO-1/2 were never run with this learner), vLLM sleep mode without CUDA, a
tensor-parallel size that does not divide the ranks.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from wideseek_rl.config import ConfigError, TrainConfig


def _require(ok: bool, name: str, message: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"{name} {message}, got {value!r}")


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def validate(config: TrainConfig) -> None:
    """Raise `ConfigError` for the first value that cannot work."""
    c, ro, opt, loss, eng = config, config.rollout, config.optim, config.loss, config.engine
    for name in ("steps", "log_every", "keep_checkpoints", "eval_tasks"):
        _require(getattr(c, name) >= 1, name.replace("_", "-"), "must be >= 1", getattr(c, name))
    for name in ("save_every", "eval_every"):
        _require(getattr(c, name) >= 0, name.replace("_", "-"), "must be >= 0 (0: never)",
                 getattr(c, name))
    _require(c.torch_threads is None or c.torch_threads >= 1, "torch-threads", "must be >= 1",
             c.torch_threads)
    _require(_finite(c.dist_timeout_s) and c.dist_timeout_s > 0, "dist-timeout-s",
             "must be a positive number of seconds", c.dist_timeout_s)
    _require(_finite(c.eval_temperature) and c.eval_temperature >= 0, "eval-temperature",
             "must be >= 0", c.eval_temperature)

    for name in ("tasks_per_step", "group_size", "max_new_tokens"):
        _require(getattr(ro, name) >= 1, f"rollout.{name.replace('_', '-')}", "must be >= 1",
                 getattr(ro, name))
    _require(ro.max_context_tokens >= 2, "rollout.max-context-tokens", "must be >= 2",
             ro.max_context_tokens)
    _require(_finite(ro.temperature) and ro.temperature > 0, "rollout.temperature",
             "must be > 0 (training samples; use eval-temperature 0 for greedy evaluation)",
             ro.temperature)
    _require(_finite(ro.top_p) and 0 < ro.top_p <= 1, "rollout.top-p", "must be in (0, 1]",
             ro.top_p)
    _require(ro.format_error_advantage is None or (_finite(ro.format_error_advantage)
             and ro.format_error_advantage > 0), "rollout.format-error-advantage",
             "must be a positive number (the penalty c: format-error turns get advantage -c)",
             ro.format_error_advantage)
    _require(ro.turn_selection != "paper" or ro.reward_agent is not None,
             "rollout.reward-agent", "must name the lead when turn-selection is 'paper'",
             ro.reward_agent)

    _require(_finite(opt.lr) and opt.lr > 0, "optim.lr", "must be a positive number", opt.lr)
    _require(_finite(opt.weight_decay) and opt.weight_decay >= 0, "optim.weight-decay",
             "must be >= 0", opt.weight_decay)
    for name in ("beta1", "beta2"):
        v = getattr(opt, name)
        _require(_finite(v) and 0 <= v < 1, f"optim.{name}", "must be in [0, 1)", v)
    _require(_finite(opt.adam_eps) and opt.adam_eps > 0, "optim.adam-eps", "must be > 0",
             opt.adam_eps)
    _require(_finite(opt.max_grad_norm) and opt.max_grad_norm >= 0, "optim.max-grad-norm",
             "must be >= 0 (0: no clipping)", opt.max_grad_norm)
    _require(opt.warmup_steps >= 0, "optim.warmup-steps", "must be >= 0", opt.warmup_steps)
    _require(opt.micro_batch_tokens >= 1, "optim.micro-batch-tokens", "must be >= 1",
             opt.micro_batch_tokens)
    _require(opt.logprob_chunk_tokens >= 0, "optim.logprob-chunk-tokens", "must be >= 0",
             opt.logprob_chunk_tokens)

    _require(_finite(loss.clip_low) and 0 <= loss.clip_low < 1, "loss.clip-low",
             "must be in [0, 1)", loss.clip_low)
    _require(_finite(loss.clip_high) and loss.clip_high >= 0, "loss.clip-high", "must be >= 0",
             loss.clip_high)
    _require(loss.dual_clip is None or (_finite(loss.dual_clip) and loss.dual_clip > 1),
             "loss.dual-clip", "must be > 1 or None", loss.dual_clip)
    _require(_finite(loss.kl_coef) and loss.kl_coef >= 0, "loss.kl-coef", "must be >= 0",
             loss.kl_coef)
    _require(_finite(loss.advantage_eps) and loss.advantage_eps > 0, "loss.advantage-eps",
             "must be > 0", loss.advantage_eps)
    _require(loss.max_ratio_mean is None or (_finite(loss.max_ratio_mean)
                                            and loss.max_ratio_mean > 1),
             "loss.max-ratio-mean", "must be > 1 or None", loss.max_ratio_mean)

    _require(eng.hf_batch_size >= 1, "engine.hf-batch-size", "must be >= 1", eng.hf_batch_size)
    _require(_finite(eng.gpu_memory_utilization) and 0 < eng.gpu_memory_utilization <= 1,
             "engine.gpu-memory-utilization", "must be in (0, 1]", eng.gpu_memory_utilization)
    _require(eng.tensor_parallel_size >= 1, "engine.tensor-parallel-size", "must be >= 1",
             eng.tensor_parallel_size)
    _require(eng.kind != "server" or bool(eng.base_urls), "engine.base-urls",
             "must list the servers when engine.kind is 'server'", eng.base_urls)
    _require(eng.kind == "vllm" or not (eng.vllm_sleep or eng.tensor_parallel_size > 1
                                         or eng.vllm_kwargs),
             "engine.kind", "must be 'vllm' for the vllm-* and tensor-parallel options", eng.kind)
    _require(eng.kind == "hf" or not c.model.gguf_file, "model.gguf-file",
             "runs on the 'hf' engine only (convert the model to safetensors for vLLM)",
             c.model.gguf_file)
    vllm_kwargs(eng.vllm_kwargs)  # raises on a malformed entry
    if c.stage == "sft":
        sft = c.sft
        _require(bool(sft.traces), "sft.traces", "must name at least one run folder or "
                 "episodes.jsonl file with --stage sft", sft.traces)
        _require(_finite(sft.min_score), "sft.min-score", "must be a number", sft.min_score)
        _require(sft.rows_per_step >= 1, "sft.rows-per-step", "must be >= 1", sft.rows_per_step)
        _require(sft.max_format_errors is None or sft.max_format_errors >= 0,
                 "sft.max-format-errors", "must be >= 0 or None", sft.max_format_errors)
        _require(sft.max_episodes is None or sft.max_episodes >= 1, "sft.max-episodes",
                 "must be >= 1 or None", sft.max_episodes)
        _require(sft.epochs is None or (_finite(sft.epochs) and sft.epochs > 0), "sft.epochs",
                 "must be > 0 or None", sft.epochs)
        _require(sft.max_replies is None or sft.max_replies >= 1, "sft.max-replies",
                 "must be >= 1 or None", sft.max_replies)
        _require(sft.last_replies is None or sft.last_replies >= 1, "sft.last-replies",
                 "must be >= 1 or None", sft.last_replies)
        _require(sft.last_replies is None or sft.train_on == "assistant", "sft.last-replies",
                 "needs --sft.train-on assistant", sft.train_on)
        _require(sft.last_reply_weight > 0, "sft.last-reply-weight", "must be > 0",
                 sft.last_reply_weight)
        _require(sft.last_reply_weight == 1.0 or sft.train_on == "assistant",
                 "sft.last-reply-weight", "needs --sft.train-on assistant", sft.train_on)
        _require(set(sft.roles) <= {"lead", "subagent"}, "sft.roles",
                 "must name lead and/or subagent", sft.roles)
        _require(_finite(sft.rename_entities) and 0 <= sft.rename_entities <= 1,
                 "sft.rename-entities", "must be in [0, 1]", sft.rename_entities)
    check_task_files(c.env)


def check_task_files(env: Any) -> None:
    """Read an env spec's task files now (`env.train-tasks`, `env.eval-tasks`): a bad record is
    one line naming its file, line and field before any model is loaded."""
    from wideseek_env.tasks import TaskFormatError
    from wideseek_rl.envs import WideSeekEnvSpec, _spec_tasks

    if not isinstance(env, WideSeekEnvSpec):
        return
    for split, path in (("train", env.train_tasks), ("eval", env.eval_tasks)):
        if path is not None:
            try:
                _spec_tasks(env, split)
            except TaskFormatError as err:
                raise ConfigError(f"env.{split}-tasks: {err}") from None


def vllm_kwargs(items: tuple[str, ...]) -> dict[str, Any]:
    """`("max_num_seqs=64", "enable_chunked_prefill=false")` → keyword arguments of `vllm.LLM`
    (values read as JSON when they parse, else kept as strings)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.isidentifier():
            raise ConfigError(f"engine.vllm-kwargs entries are KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def check_model(config: TrainConfig) -> None:
    """Raise `ConfigError` when `model.path` (and `model.gguf_file`) cannot be found; reads
    at most a config file, never weights."""
    m = config.model
    if m.path == "tiny":
        return
    path = Path(m.path).expanduser()
    if m.chat_template and not Path(m.chat_template).is_file():
        raise ConfigError(f"model.chat-template: no such file: {m.chat_template}")
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"model.path: {path} is not a directory")
        if m.gguf_file:
            if not (path / m.gguf_file).is_file():
                raise ConfigError(f"model.gguf-file: no file {m.gguf_file} in {path}")
        elif not (path / "config.json").is_file():
            raise ConfigError(f"model.path: {path} holds no config.json (not a Hugging Face "
                              "model directory)")
        return
    if m.path.startswith((".", "/", "~")) or m.path.count("/") != 1:
        raise ConfigError(f"model.path: no such directory: {m.path}")
    try:  # a Hugging Face id: resolve its config (from the cache, or the Hub when online)
        from transformers import AutoConfig

        AutoConfig.from_pretrained(m.path, **({"gguf_file": m.gguf_file} if m.gguf_file else {}))
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"model.path: cannot load {m.path!r} (not a local directory, and not "
                          f"a Hugging Face id that resolves here): {first}") from None


def check_placement(config: TrainConfig, *, distributed_type: str, zero_stage: int | None,
                    num_processes: int, cuda: bool) -> None:
    """Raise `ConfigError` for a distributed setup the trainer cannot serve."""
    if distributed_type == "FSDP":
        raise ConfigError("FSDP is not supported: the generation engine needs the full weights "
                          "on every rank after each update and FSDP shards them; use DDP "
                          "(accelerate launch --multi_gpu) with gradient checkpointing")
    if distributed_type == "DEEPSPEED":
        raise ConfigError(f"DeepSpeed (ZeRO-{zero_stage}) is not supported: ZeRO-3 shards the "
                          "weights the engine needs whole, and the learner's gradient "
                          "accumulation was never run under DeepSpeed's engine; use DDP")
    eng = config.engine
    if eng.vllm_sleep and not cuda:
        raise ConfigError("engine.vllm-sleep needs CUDA (vLLM's sleep mode frees GPU memory)")
    if num_processes % eng.tensor_parallel_size:
        raise ConfigError(f"engine.tensor-parallel-size ({eng.tensor_parallel_size}) must divide "
                          f"the number of processes ({num_processes})")
