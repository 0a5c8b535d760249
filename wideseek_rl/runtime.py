"""The objects of one training run, built from a validated `TrainConfig` (`build_run`).

Order matters and is chosen so that mistakes surface before anything heavy: the accelerator
(with the configured process-group timeout) and the placement checks come first, then the
model, the optimiser, the generation engine and the policies, and the envs last.

Placement of the in-process vLLM engine: every rank makes its own engine through vLLM's
"external launcher" (the job's processes are the engine's workers), so the engine of rank r
runs on rank r's device. With `engine.tensor_parallel_size = k`, k consecutive ranks form one
engine and one *rollout worker*: they get the same tasks and seeds, so they submit identical
prompts (as vLLM's external launcher requires) and record identical episodes; each keeps every
k-th training row of them for the update, and only the first reports the episodes' statistics.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch

from wideseek_rl.checks import check_placement, vllm_kwargs
from wideseek_rl.config import TrainConfig
from wideseek_rl.engines.base import SamplingParams
from wideseek_rl.engines.hf import HFEngine, stop_ids_for
from wideseek_rl.envs import make_env
from wideseek_rl.learner import Learner, LossSettings, PolicyModule
from wideseek_rl.policy import LLMPolicy
from wideseek_rl.rollout import RolloutRunner
from wideseek_rl.stats import device_memory_gib
from wideseek_rl.trackers import JsonlTracker, StdoutTracker

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class LRSchedule:
    """Linear warm-up, then constant, linear or cosine decay to 0 at `total_steps`
    (a callable object, so LambdaLR checkpoints it)."""

    def __init__(self, kind: str, warmup_steps: int, total_steps: int):
        self.kind, self.warmup_steps, self.total_steps = kind, warmup_steps, total_steps

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / (self.warmup_steps + 1)
        if self.kind == "constant":
            return 1.0
        span = max(self.total_steps - self.warmup_steps, 1)
        frac = min((step - self.warmup_steps) / span, 1.0)
        return 1.0 - frac if self.kind == "linear" else 0.5 * (1.0 + math.cos(math.pi * frac))


@dataclass(frozen=True)
class Layout:
    """Where this process sits: rollout workers are groups of `tp` consecutive ranks."""

    process_index: int
    num_processes: int
    tp: int = 1

    @property
    def workers(self) -> int:
        return self.num_processes // self.tp

    @property
    def worker(self) -> int:
        return self.process_index // self.tp

    @property
    def tp_rank(self) -> int:
        return self.process_index % self.tp

    def tasks(self, n_tasks: int) -> list[int]:
        """Positions of this worker's tasks among the step's `n_tasks` (round robin)."""
        return list(range(self.worker, n_tasks, self.workers))

    def rows(self, rows: list[Any]) -> list[Any]:
        """This rank's share of its worker's training rows."""
        return rows[self.tp_rank :: self.tp]


@dataclass
class Run:
    """Objects of one training run."""

    config: TrainConfig
    accelerator: Any
    layout: Layout
    tokenizer: Any
    learner: Learner
    engine: Any
    policy: LLMPolicy
    runner: RolloutRunner
    eval_policy: LLMPolicy
    eval_runner: RolloutRunner | None
    train_tasks: list[dict[str, Any]]
    eval_tasks: list[dict[str, Any]]
    memory_gib: dict[str, float]
    """Memory in use (`stats.device_memory_gib`) at start, after the learner, after the engine."""
    steps: int
    """Training steps of the run (`config.steps`, or for SFT with `sft.epochs` what the data
    gives)."""
    trace_set: Any = None
    """`--stage sft`: the training rows (`sft.TraceSet`)."""
    last_rows: list[Any] | None = None
    """This rank's training rows of the latest step (for inspection and smoke checks)."""


def mixed_precision(choice: str) -> str:
    """The autocast precision: `choice`, or for "auto" bf16 on a GPU that supports it."""
    if choice != "auto":
        return choice
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16"
    return "no"


def engine_dtype(config: TrainConfig) -> str:
    """The generation engine's dtype: `engine.dtype`, or for "auto" the compute dtype."""
    if config.engine.dtype != "auto":
        return config.engine.dtype
    return {"bf16": "bfloat16", "fp16": "float16"}.get(
        mixed_precision(config.optim.mixed_precision), config.model.dtype)


def _model_path(config: TrainConfig, accelerator: Any) -> str:
    if config.model.path != "tiny":
        return config.model.path
    from wideseek_rl.tiny import build_tiny_model

    path = Path(config.output_dir) / "tiny-model"
    if accelerator.is_main_process:
        build_tiny_model(path, seed=config.seed)
    accelerator.wait_for_everyone()
    return str(path)


def make_engine(config: TrainConfig, path: str, hf_model: Any, stops: list[int], pad: int,
                layout: Layout) -> Any:
    """The configured generation engine ("hf" shares the trained module)."""
    eng = config.engine
    if eng.kind == "hf":  # shares the trained module: new weights are seen without a copy
        return HFEngine(hf_model, stop_token_ids=stops, pad_token_id=pad,
                        max_batch_size=eng.hf_batch_size, seed=config.seed)
    if eng.kind == "vllm":
        from wideseek_rl.engines.vllm import VLLMEngine

        extra = vllm_kwargs(eng.vllm_kwargs)
        if eng.vllm_sleep:
            extra["enable_sleep_mode"] = True
        return VLLMEngine(path, dtype=engine_dtype(config),
                          max_model_len=config.rollout.max_context_tokens, stop_token_ids=stops,
                          seed=config.seed + layout.worker,
                          gpu_memory_utilization=eng.gpu_memory_utilization,
                          tensor_parallel_size=eng.tensor_parallel_size,
                          enforce_eager=eng.vllm_enforce_eager, external_launcher=True, **extra)
    from wideseek_rl.engines.openai_server import OpenAIServerEngine

    return OpenAIServerEngine(list(eng.base_urls), stop_token_ids=stops,
                              weights_dir=eng.weights_dir, seed=config.seed)


def _accelerator(config: TrainConfig) -> Any:
    from accelerate import Accelerator
    from accelerate.utils import InitProcessGroupKwargs

    out = Path(config.output_dir)
    trackers: list[Any] = [JsonlTracker(out / "metrics.jsonl"), StdoutTracker(config.log_every)]
    if config.tensorboard:
        trackers.append("tensorboard")
    return Accelerator(
        # Without a GPU, run every process on the CPU (gloo), also under torchrun/`--multi_gpu`.
        cpu=not torch.cuda.is_available(),
        mixed_precision=mixed_precision(config.optim.mixed_precision),
        log_with=trackers,
        project_dir=str(out),
        step_scheduler_with_optimizer=False,
        kwargs_handlers=[InitProcessGroupKwargs(timeout=timedelta(seconds=config.dist_timeout_s))],
    )


def build_run(config: TrainConfig, env_spec: Any) -> Run:
    """Accelerator, model, learner, engine, policies and envs of a run (see the module doc)."""
    from accelerate.utils import set_seed
    from transformers import AutoModelForCausalLM, AutoTokenizer

    Path(config.output_dir).mkdir(parents=True, exist_ok=True)
    memory = {"start": device_memory_gib()}
    accelerator = _accelerator(config)
    ds = getattr(accelerator.state, "deepspeed_plugin", None)
    check_placement(config, distributed_type=str(accelerator.distributed_type).split(".")[-1],
                    zero_stage=getattr(ds, "zero_stage", None),
                    num_processes=accelerator.num_processes, cuda=torch.cuda.is_available())
    layout = Layout(accelerator.process_index, accelerator.num_processes,
                    config.engine.tensor_parallel_size if config.engine.kind == "vllm" else 1)
    set_seed(config.seed)
    path = _model_path(config, accelerator)
    extra = {"gguf_file": config.model.gguf_file} if config.model.gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(path, **extra)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=DTYPES[config.model.dtype], **extra)
    if config.model.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    model.to(accelerator.device)
    chat_template = (
        Path(config.model.chat_template).read_text() if config.model.chat_template else None
    )
    ro, opt, lc = config.rollout, config.optim, config.loss
    steps, trace_set, learner_cls, settings = config.steps, None, Learner, LossSettings(
        aggregation=lc.aggregation, clip_low=lc.clip_low, clip_high=lc.clip_high,
        dual_clip=lc.dual_clip, kl_coef=lc.kl_coef, max_tokens=ro.max_new_tokens,
        recompute_old_logprobs=lc.recompute_old_logprobs, max_ratio_mean=lc.max_ratio_mean)
    if config.stage == "sft":
        from wideseek_rl.sft import SFTLearner, load_trace_set

        trace_set = load_trace_set(config, tokenizer, chat_template,
                                   log=accelerator.is_main_process)
        if config.sft.epochs is not None:
            steps = max(1, math.ceil(config.sft.epochs * len(trace_set.rows)
                                     / config.sft.rows_per_step))
        learner_cls, settings = SFTLearner, LossSettings(aggregation=config.sft.aggregation)
    ref = None
    if lc.kl_coef > 0:
        ref = PolicyModule(copy.deepcopy(model).eval().requires_grad_(False),
                           temperature=ro.temperature, chunk_tokens=opt.logprob_chunk_tokens)
    module = PolicyModule(model, temperature=ro.temperature, chunk_tokens=opt.logprob_chunk_tokens)
    optimizer = torch.optim.AdamW(
        [p for p in module.parameters() if p.requires_grad], lr=opt.lr,
        betas=(opt.beta1, opt.beta2), eps=opt.adam_eps, weight_decay=opt.weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, LRSchedule(opt.schedule, opt.warmup_steps, steps)
    )
    module, optimizer, scheduler = accelerator.prepare(module, optimizer, scheduler)
    hf_model = accelerator.unwrap_model(module).model
    stops = stop_ids_for(hf_model, tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
    learner = learner_cls(
        accelerator, module, optimizer, scheduler, settings,
        micro_batch_tokens=opt.micro_batch_tokens, max_grad_norm=opt.max_grad_norm,
        pad_token_id=pad, ref_policy=ref.to(accelerator.device) if ref is not None else None,
    )
    memory["learner"] = device_memory_gib()
    engine = make_engine(config, path, hf_model, stops, pad, layout)
    memory["engine"] = device_memory_gib()
    sampling = SamplingParams(max_new_tokens=ro.max_new_tokens, temperature=ro.temperature,
                              top_p=ro.top_p)
    policy = LLMPolicy(engine, tokenizer, sampling, max_context_tokens=ro.max_context_tokens,
                       chat_template=chat_template)
    eval_policy = LLMPolicy(engine, tokenizer, replace(sampling, temperature=config.eval_temperature),
                            max_context_tokens=ro.max_context_tokens, chat_template=chat_template)
    show = config.progress and accelerator.is_main_process
    runner = RolloutRunner(lambda: make_env(env_spec, "train", tokenizer, policy), policy,
                           reward_agent=ro.reward_agent, turn_selection=ro.turn_selection,
                           keep_format_errors=ro.format_error_advantage is not None,
                           progress=show)
    eval_runner = None
    eval_tasks: list[dict[str, Any]] = []
    if config.eval_every:
        from wideseek_env.runner.cli import spread

        # Spread over the split: a world lists its tasks table by table.
        eval_tasks = spread(list(env_spec.task_options("eval")), config.eval_tasks)
        eval_runner = RolloutRunner(lambda: make_env(env_spec, "eval", tokenizer, eval_policy),
                                    eval_policy, reward_agent=ro.reward_agent, progress=show)
    train_tasks = list(env_spec.task_options("train")) if config.stage == "grpo" else []
    if config.stage == "grpo" and not train_tasks:
        raise ValueError("the env spec lists no training tasks")
    return Run(config, accelerator, layout, tokenizer, learner, engine, policy, runner,
               eval_policy, eval_runner, train_tasks, eval_tasks, memory, steps, trace_set)
