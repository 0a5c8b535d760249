"""`wideseek-train`: the multi-agent GRPO loop on Accelerate.

Each step: take the next `tasks_per_step` tasks of a seeded, reshuffled-every-epoch stream;
every rank rolls out G episodes of its share of them (one batched `act` per env step); the
episode scores of all ranks give the group advantages; every generated token of an episode gets
its episode's advantage; one optimiser step on the dual-level-reweighted clipped loss; the new
weights go to the generation engine; periodically evaluate and checkpoint. Metrics go to stdout,
`metrics.jsonl` and TensorBoard; the resolved config is saved as `config.json`.

Everything random is derived from (`seed`, step), so a resumed run replays the exact steps an
uninterrupted run would have taken (on CPU, bit for bit).

With `--stage sft` the same loop trains on episode traces instead (wideseek_rl/sft.py): the
step is an SFT update on the next rows of a seeded stream of the traces' agents.

Run `wideseek-train toy` for the CPU demo, `wideseek-train paper --help` for the reference
setup, and `accelerate launch --multi_gpu --num_processes N -m wideseek_rl.train …` to use N
processes (on a machine without GPUs too: they then run on the CPU with the gloo backend).
The configuration and the model path are checked before anything heavy starts; a mistake is
one `error:` line naming the field and exit status 2.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
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
from wideseek_rl.checks import check_model, validate
from wideseek_rl.config import PRESETS, ConfigError, TrainConfig, flatten, to_dict
from wideseek_rl.learner import build_sequences
from wideseek_rl.runtime import LRSchedule, Run, build_run
from wideseek_rl.stats import (
    credit_metrics,
    episode_stats,
    gather_all,
    memory_metrics,
    rollout_metrics,
    rss_gib,
)
from wideseek_rl.trackers import truncate_jsonl

__all__ = ["LRSchedule", "TrainResult", "main", "sync_weights", "task_stream", "train", "train_step"]


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


def sync_weights(run: Run) -> None:
    """Give the engine the current weights (the servers once, from the main process)."""
    acc = run.accelerator
    state = acc.unwrap_model(run.learner.policy).model.state_dict()
    if run.config.engine.kind != "server":
        run.engine.load_weights(state)
    else:
        if acc.is_main_process:
            run.engine.load_weights(state)
        acc.wait_for_everyone()


def train_step(run: Run, step: int, tasks_consumed: int) -> dict[str, float]:
    """One training step (rollout, rewards, update, weight sync); returns its metrics."""
    cfg, acc, lay = run.config, run.accelerator, run.layout
    ro = cfg.rollout
    t0 = time.perf_counter()
    rss_peak = rss_gib()
    calls0 = getattr(run.engine, "generate_calls", 0)
    picked = task_stream(len(run.train_tasks), cfg.seed, tasks_consumed, ro.tasks_per_step)
    mine = lay.tasks(ro.tasks_per_step)
    run.policy.set_seed(int(np.random.SeedSequence([cfg.seed, step, 1]).generate_state(1)[0]))
    overflows = run.policy.overflows
    episodes = run.runner.run([run.train_tasks[picked[i]] for i in mine], ro.group_size,
                              seed=cfg.seed, step=step, task_indices=mine)
    t_rollout = time.perf_counter() - t0
    rss_peak = max(rss_peak, rss_gib())

    t1 = time.perf_counter()  # rewards: gathered over ranks, advantages, training rows
    stats = gather_all(acc, episode_stats(episodes) if lay.tp_rank == 0 else [])
    stats.sort(key=lambda s: (s["task"], s["group"]))
    adv = group_advantages([s["score"] for s in stats], [s["task"] for s in stats],
                           scale=cfg.loss.advantage_scale, eps=cfg.loss.advantage_eps)
    by_key = {(s["task"], s["group"]): a for s, a in zip(stats, adv.values)}
    rows = lay.rows(build_sequences(
        episodes, [by_key[(e.task_index, e.group)] for e in episodes], pack=cfg.optim.pack_turns,
        episode_ids=[e.task_index * ro.group_size + e.group for e in episodes],
        format_error_advantage=ro.format_error_advantage,
    ))
    t_reward = time.perf_counter() - t1
    run.last_rows = rows

    t2 = time.perf_counter()
    # Every rank decides alike: the advantages were computed over every rank's episodes, and
    # the format-error turns trained at their own advantage are counted over every rank.
    error_turns = 0
    if ro.format_error_advantage is not None:
        mine_errors = sum(t.format_error for e in episodes for a in e.agents for t in a.turns)
        error_turns = sum(gather_all(acc, [mine_errors if lay.tp_rank == 0 else 0]))
    skip = (cfg.loss.skip_steps_without_signal and adv.groups_with_signal == 0
            and cfg.loss.kl_coef == 0
            and not (ro.format_error_advantage is not None and error_turns > 0))
    if skip:
        metrics = run.learner.skip_update()
    else:
        if cfg.engine.vllm_sleep:
            run.engine.sleep()
        metrics = run.learner.update(rows, num_episodes=ro.tasks_per_step * ro.group_size)
    t_update = time.perf_counter() - t2
    rss_peak = max(rss_peak, rss_gib())
    t3 = time.perf_counter()
    if not skip:  # the engine has these weights already
        sync_weights(run)
    t_sync = time.perf_counter() - t3

    metrics.update(rollout_metrics(stats, adv.groups, adv.groups_with_signal))
    metrics.update(credit_metrics(stats))
    metrics["rollout/rows"] = float(sum(gather_all(acc, [len(rows)])))
    if ro.format_error_advantage is not None:
        metrics["rollout/format_error_turns_trained"] = float(error_turns)
    metrics["rollout/context_overflows"] = float(run.policy.overflows - overflows)
    metrics["rollout/generate_calls"] = float(getattr(run.engine, "generate_calls", 0) - calls0)
    metrics.update({"time/rollout_s": t_rollout, "time/reward_s": t_reward,
                    "time/update_s": t_update, "time/sync_s": t_sync})
    metrics["time/generated_tokens_per_s"] = metrics["rollout/generated_tokens"] / max(t_rollout, 1e-9)
    metrics.update(memory_metrics(rss_peak))
    return metrics


def _evaluate(run: Run, step: int) -> dict[str, float]:
    cfg, acc, lay = run.config, run.accelerator, run.layout
    if run.eval_runner is None or not run.eval_tasks:
        return {}
    t0 = time.perf_counter()
    mine = lay.tasks(len(run.eval_tasks))
    run.eval_policy.set_seed(int(np.random.SeedSequence([cfg.seed, step, 2]).generate_state(1)[0]))
    episodes = run.eval_runner.run([run.eval_tasks[i] for i in mine], 1,
                                   seed=cfg.seed + 1, step=step, task_indices=mine)
    summary = rollout_metrics(
        gather_all(acc, episode_stats(episodes) if lay.tp_rank == 0 else []), 0, 0)
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
    `make(split, tokenizer)` and `task_options(split)`). Raises `ConfigError` for a value or
    model path that cannot work, before building anything."""
    validate(config)
    check_model(config)
    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    out = Path(config.output_dir)
    ckpt_root = out / "checkpoints"
    if not config.resume and latest_checkpoint(ckpt_root) is not None:
        raise FileExistsError(f"{ckpt_root} holds checkpoints of an earlier run: pass --resume to "
                              f"continue it, or choose another --output-dir")
    run = build_run(config, env_spec if env_spec is not None else config.env)
    config = run.config = dataclasses.replace(config, steps=run.steps)
    step_fn, per_step = train_step, config.rollout.tasks_per_step
    if config.stage == "sft":
        from wideseek_rl.sft import sft_step

        step_fn, per_step = sft_step, config.sft.rows_per_step
    acc = run.accelerator
    if acc.is_main_process:
        m = run.memory_gib
        print(f"memory in use: {m['start']:.2f} GiB at start, {m['learner']:.2f} with the "
              f"learner, {m['engine']:.2f} with the {config.engine.kind} engine", flush=True)
    step, consumed = 0, 0
    if config.resume and (latest := latest_checkpoint(ckpt_root)) is not None:
        state = load_checkpoint(acc, latest)
        if state.seed != config.seed:
            raise ValueError(f"{latest} was written with seed {state.seed}, not {config.seed}")
        step, consumed = state.step, state.tasks_consumed
        sync_weights(run)  # the engine samples the next step from the checkpoint's weights
        if acc.is_main_process:
            truncate_jsonl(out / "metrics.jsonl", step)
            print(f"resumed from {latest} at step {step}", flush=True)
    elif acc.is_main_process:
        truncate_jsonl(out / "metrics.jsonl", 0)
    if acc.is_main_process:
        write_json_atomic(out / "config.json", to_dict(config))
    # After a resume, TensorBoard hides the events the killed run wrote for the steps to come.
    acc.init_trackers("tensorboard", config=flatten(to_dict(config)),
                      init_kwargs={"tensorboard": {"purge_step": step + 1}} if step else {})
    metrics: dict[str, float] = {}
    try:
        while step < config.steps:
            t0 = time.perf_counter()
            metrics = step_fn(run, step, consumed)
            step += 1
            consumed += per_step
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


class _OneLineError(Exception):
    """A value the command line cannot turn into a config (raised from tyro's error hook)."""


@contextlib.contextmanager
def _value_errors_as_one_line() -> Iterator[None]:
    """Turn tyro's boxed "Value error" (a field's constructor refused the value) into
    `_OneLineError`. Uses tyro's experimental error hook when the installed tyro has it;
    otherwise tyro prints its own box (still a clear error and exit status 2)."""
    try:
        from tyro import _errors as tyro_errors

        hook_type = tyro_errors.InstantiationFailure
        register = tyro_errors.on_parse_error
    except (ImportError, AttributeError):
        yield
        return

    def hook(event: Any) -> None:
        if isinstance(event, hook_type):
            raise _OneLineError(str(event.message).strip().splitlines()[0])

    with register(hook):
        yield


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: `wideseek-train <preset> [--field value …]`."""
    import tyro

    try:
        with _value_errors_as_one_line():
            config = tyro.extras.overridable_config_cli(
                PRESETS, args=list(argv) if argv is not None else sys.argv[1:],
                description="Multi-agent GRPO (WideSeek-R1) on Accelerate.",
            )
        validate(config)
        check_model(config)
        train(config)
    except (_OneLineError, ConfigError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
