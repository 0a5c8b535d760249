"""`wideseek-train`: the multi-agent GRPO loop on Accelerate.

Each step: take the next `tasks_per_step` tasks of a seeded, reshuffled-every-epoch stream;
every rank rolls out G episodes of its share of them (one batched `act` per env step); the
episode scores of all ranks give the group advantages; every generated token of an episode gets
its episode's advantage; one optimiser step on the dual-level-reweighted clipped loss; the new
weights go to the generation engine; periodically evaluate and checkpoint. Metrics go to stdout,
`metrics.jsonl` and TensorBoard; the resolved config is saved as `config.json`.

Everything random is derived from (`seed`, step), so a resumed run replays the exact steps an
uninterrupted run would have taken (on CPU, bit for bit).

Run `wideseek-train toy` for the CPU demo, `wideseek-train paper --help` for the reference
setup, and `accelerate launch --multi_gpu --num_processes N -m wideseek_rl.train …` to use N
processes (on a machine without GPUs too: they then run on the CPU with the gloo backend).
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wideseek_rl.advantages import group_advantages
from wideseek_rl.checkpoint import (
    TrainerState,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
    write_json_atomic,
)
from wideseek_rl.config import PRESETS, TrainConfig, flatten, to_dict
from wideseek_rl.engines.base import SamplingParams
from wideseek_rl.engines.hf import HFEngine, stop_ids_for
from wideseek_rl.learner import Learner, LossSettings, PolicyModule, build_sequences
from wideseek_rl.policy import LLMPolicy
from wideseek_rl.rollout import RolloutRunner
from wideseek_rl.stats import episode_stats, gather_all, memory_metrics, rollout_metrics, rss_gib
from wideseek_rl.trackers import JsonlTracker, StdoutTracker, truncate_jsonl

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


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


def task_stream(n_tasks: int, seed: int, start: int, count: int) -> list[int]:
    """Task indices `start … start+count-1` of an endless stream that visits every task once
    per epoch, in an order reshuffled (seeded) every epoch."""
    out = []
    perms: dict[int, np.ndarray] = {}
    for j in range(start, start + count):
        epoch = j // n_tasks
        if epoch not in perms:
            perms[epoch] = np.random.default_rng([seed, epoch]).permutation(n_tasks)
        out.append(int(perms[epoch][j % n_tasks]))
    return out


def _mixed_precision(choice: str) -> str:
    if choice != "auto":
        return choice
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16"
    return "no"


@dataclass
class _Run:
    """Objects of one training run (internal)."""

    config: TrainConfig
    accelerator: Any
    tokenizer: Any
    model: Any
    learner: Learner
    engine: Any
    policy: LLMPolicy
    runner: RolloutRunner
    eval_policy: LLMPolicy
    eval_runner: RolloutRunner | None
    train_tasks: list[dict[str, Any]]
    eval_tasks: list[dict[str, Any]]


def _model_path(config: TrainConfig, accelerator: Any) -> str:
    if config.model.path != "tiny":
        return config.model.path
    from wideseek_rl.tiny import build_tiny_model

    path = Path(config.output_dir) / "tiny-model"
    if accelerator.is_main_process:
        build_tiny_model(path, seed=config.seed)
    accelerator.wait_for_everyone()
    return str(path)


def _make_engine(config: TrainConfig, path: str, hf_model: Any, stops: list[int], pad: int) -> Any:
    eng = config.engine
    if eng.kind == "hf":  # shares the trained module: new weights are seen without a copy
        return HFEngine(hf_model, stop_token_ids=stops, pad_token_id=pad,
                        max_batch_size=eng.hf_batch_size, seed=config.seed)
    if eng.kind == "vllm":
        from wideseek_rl.engines.vllm import VLLMEngine

        return VLLMEngine(path, dtype=config.model.dtype,
                          max_model_len=config.rollout.max_context_tokens, stop_token_ids=stops,
                          seed=config.seed, gpu_memory_utilization=eng.gpu_memory_utilization,
                          enforce_eager=eng.vllm_enforce_eager)
    from wideseek_rl.engines.openai_server import OpenAIServerEngine

    return OpenAIServerEngine(list(eng.base_urls), stop_token_ids=stops,
                              weights_dir=eng.weights_dir, seed=config.seed)


def _sync_weights(run: _Run) -> None:
    """Give the engine the updated weights (the servers once, from the main process)."""
    acc = run.accelerator
    state = acc.unwrap_model(run.learner.policy).model.state_dict()
    if run.config.engine.kind != "server":
        run.engine.load_weights(state)
    else:
        if acc.is_main_process:
            run.engine.load_weights(state)
        acc.wait_for_everyone()


def _setup(config: TrainConfig, env_spec: Any) -> _Run:
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    trackers: list[Any] = [JsonlTracker(out / "metrics.jsonl"), StdoutTracker(config.log_every)]
    if config.tensorboard:
        trackers.append("tensorboard")
    accelerator = Accelerator(
        # Without a GPU, run every process on the CPU (gloo), also under torchrun/`--multi_gpu`.
        cpu=not torch.cuda.is_available(),
        mixed_precision=_mixed_precision(config.optim.mixed_precision),
        log_with=trackers,
        project_dir=str(out),
        step_scheduler_with_optimizer=False,
    )
    set_seed(config.seed)
    path = _model_path(config, accelerator)
    extra = {"gguf_file": config.model.gguf_file} if config.model.gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(path, **extra)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=_DTYPES[config.model.dtype], **extra)
    if config.model.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    model.to(accelerator.device)
    chat_template = (
        Path(config.model.chat_template).read_text() if config.model.chat_template else None
    )
    ro, opt = config.rollout, config.optim
    ref = None
    if config.loss.kl_coef > 0:
        ref = PolicyModule(copy.deepcopy(model).eval().requires_grad_(False),
                           temperature=ro.temperature, chunk_tokens=opt.logprob_chunk_tokens)
    module = PolicyModule(model, temperature=ro.temperature, chunk_tokens=opt.logprob_chunk_tokens)
    optimizer = torch.optim.AdamW(
        [p for p in module.parameters() if p.requires_grad], lr=opt.lr,
        betas=(opt.beta1, opt.beta2), eps=opt.adam_eps, weight_decay=opt.weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, LRSchedule(opt.schedule, opt.warmup_steps, config.steps)
    )
    module, optimizer, scheduler = accelerator.prepare(module, optimizer, scheduler)
    hf_model = accelerator.unwrap_model(module).model
    stops = stop_ids_for(hf_model, tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
    learner = Learner(
        accelerator, module, optimizer, scheduler,
        LossSettings(aggregation=config.loss.aggregation, clip_low=config.loss.clip_low,
                     clip_high=config.loss.clip_high, dual_clip=config.loss.dual_clip,
                     kl_coef=config.loss.kl_coef, max_tokens=ro.max_new_tokens,
                     recompute_old_logprobs=config.loss.recompute_old_logprobs),
        micro_batch_tokens=opt.micro_batch_tokens, max_grad_norm=opt.max_grad_norm,
        pad_token_id=pad, ref_policy=ref.to(accelerator.device) if ref is not None else None,
    )
    engine = _make_engine(config, path, hf_model, stops, pad)
    sampling = SamplingParams(max_new_tokens=ro.max_new_tokens, temperature=ro.temperature,
                              top_p=ro.top_p)
    policy = LLMPolicy(engine, tokenizer, sampling, max_context_tokens=ro.max_context_tokens,
                       chat_template=chat_template)
    eval_policy = LLMPolicy(engine, tokenizer, replace(sampling, temperature=config.eval_temperature),
                            max_context_tokens=ro.max_context_tokens, chat_template=chat_template)
    show = config.progress and accelerator.is_main_process
    runner = RolloutRunner(lambda: env_spec.make("train", tokenizer), policy,
                           reward_agent=ro.reward_agent,
                           drop_context_overflow=ro.drop_context_overflow, progress=show)
    eval_runner = None
    eval_tasks: list[dict[str, Any]] = []
    if config.eval_every:
        eval_tasks = list(env_spec.task_options("eval"))[: config.eval_tasks]
        eval_runner = RolloutRunner(lambda: env_spec.make("eval", tokenizer), eval_policy,
                                    reward_agent=ro.reward_agent, progress=show)
    train_tasks = list(env_spec.task_options("train"))
    if not train_tasks:
        raise ValueError("the env spec lists no training tasks")
    return _Run(config, accelerator, tokenizer, model, learner, engine, policy, runner,
                eval_policy, eval_runner, train_tasks, eval_tasks)


def _train_step(run: _Run, step: int, tasks_consumed: int) -> dict[str, float]:
    cfg, acc = run.config, run.accelerator
    ro = cfg.rollout
    t0 = time.perf_counter()
    rss_peak = rss_gib()
    picked = task_stream(len(run.train_tasks), cfg.seed, tasks_consumed, ro.tasks_per_step)
    mine = list(range(acc.process_index, ro.tasks_per_step, acc.num_processes))
    run.policy.set_seed(int(np.random.SeedSequence([cfg.seed, step, 1]).generate_state(1)[0]))
    overflows = run.policy.overflows
    episodes = run.runner.run([run.train_tasks[picked[i]] for i in mine], ro.group_size,
                              seed=cfg.seed, step=step, task_indices=mine)
    t_rollout = time.perf_counter() - t0
    rss_peak = max(rss_peak, rss_gib())

    stats = gather_all(acc, episode_stats(episodes))
    stats.sort(key=lambda s: (s["task"], s["group"]))
    adv = group_advantages([s["score"] for s in stats], [s["task"] for s in stats],
                           scale=cfg.loss.advantage_scale, eps=cfg.loss.advantage_eps)
    by_key = {(s["task"], s["group"]): a for s, a in zip(stats, adv.values)}
    rows = build_sequences(
        episodes, [by_key[(e.task_index, e.group)] for e in episodes], pack=cfg.optim.pack_turns,
        episode_ids=[e.task_index * ro.group_size + e.group for e in episodes],
    )
    t1 = time.perf_counter()
    metrics = run.learner.update(rows, num_episodes=ro.tasks_per_step * ro.group_size)
    _sync_weights(run)
    t_update = time.perf_counter() - t1
    rss_peak = max(rss_peak, rss_gib())

    metrics.update(rollout_metrics(stats, adv.groups, adv.groups_with_signal))
    metrics["rollout/rows"] = float(sum(gather_all(acc, [len(rows)])))
    metrics["rollout/context_overflows"] = float(run.policy.overflows - overflows)
    metrics["time/rollout_s"] = t_rollout
    metrics["time/update_s"] = t_update
    metrics.update(memory_metrics(rss_peak))
    return metrics


def _evaluate(run: _Run, step: int) -> dict[str, float]:
    cfg, acc = run.config, run.accelerator
    if run.eval_runner is None or not run.eval_tasks:
        return {}
    t0 = time.perf_counter()
    mine = list(range(acc.process_index, len(run.eval_tasks), acc.num_processes))
    run.eval_policy.set_seed(int(np.random.SeedSequence([cfg.seed, step, 2]).generate_state(1)[0]))
    episodes = run.eval_runner.run([run.eval_tasks[i] for i in mine], 1,
                                   seed=cfg.seed + 1, step=step, task_indices=mine)
    summary = rollout_metrics(gather_all(acc, episode_stats(episodes)), 0, 0)
    out = {"eval/score_mean": summary["score/mean"], "eval/score_std": summary["score/std"],
           "eval/episodes": summary["rollout/episodes"],
           "eval/tokens_per_episode": summary["rollout/tokens_per_episode"]}
    out.update({f"eval/{k}": v for k, v in summary.items() if k.startswith("env/")})
    out["time/eval_s"] = time.perf_counter() - t0
    return out


@dataclass(frozen=True)
class TrainResult:
    """What `train` hands back: the last step's metrics and the trained Hugging Face model."""

    metrics: dict[str, float]
    model: Any
    output_dir: Path


def train(config: TrainConfig, env_spec: Any = None) -> TrainResult:
    """Run training as configured; `env_spec` overrides `config.env` (any object with
    `make(split, tokenizer)` and `task_options(split)`)."""
    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    out = Path(config.output_dir)
    ckpt_root = out / "checkpoints"
    if not config.resume and latest_checkpoint(ckpt_root) is not None:
        raise FileExistsError(f"{ckpt_root} holds checkpoints of an earlier run: pass --resume to "
                              f"continue it, or choose another --output-dir")
    run = _setup(config, env_spec if env_spec is not None else config.env)
    acc = run.accelerator
    step, consumed = 0, 0
    if config.resume and (latest := latest_checkpoint(ckpt_root)) is not None:
        state = load_checkpoint(acc, latest)
        if state.seed != config.seed:
            raise ValueError(f"{latest} was written with seed {state.seed}, not {config.seed}")
        step, consumed = state.step, state.tasks_consumed
        if acc.is_main_process:
            truncate_jsonl(out / "metrics.jsonl", step)
            print(f"resumed from {latest} at step {step}", flush=True)
    elif acc.is_main_process:
        truncate_jsonl(out / "metrics.jsonl", 0)
    if acc.is_main_process:
        write_json_atomic(out / "config.json", to_dict(config))
    acc.init_trackers("tensorboard", config=flatten(to_dict(config)))
    metrics: dict[str, float] = {}
    try:
        while step < config.steps:
            t0 = time.perf_counter()
            metrics = _train_step(run, step, consumed)
            step += 1
            consumed += config.rollout.tasks_per_step
            if config.eval_every and step % config.eval_every == 0:
                metrics.update(_evaluate(run, step))
            metrics["time/step_s"] = time.perf_counter() - t0
            acc.log(metrics, step=step)
            if (config.save_every and step % config.save_every == 0) or step == config.steps:
                save_checkpoint(acc, ckpt_root, TrainerState(step, consumed, config.seed),
                                keep=config.keep_checkpoints)
        if acc.is_main_process:
            final = out / "final"
            acc.unwrap_model(run.learner.policy).model.save_pretrained(final)
            run.tokenizer.save_pretrained(final)
    finally:
        acc.end_training()
        run.engine.close()
    return TrainResult(metrics, acc.unwrap_model(run.learner.policy).model, out)


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: `wideseek-train <preset> [--field value …]`."""
    import tyro

    config = tyro.extras.overridable_config_cli(
        PRESETS, args=list(argv) if argv is not None else sys.argv[1:],
        description="Multi-agent GRPO (WideSeek-R1) on Accelerate.",
    )
    train(config)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
