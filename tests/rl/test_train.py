"""End to end: `wideseek-train` learns the toy game, resumes exactly after being killed, and keeps
two data-parallel ranks in lockstep."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from wideseek_rl.checkpoint import CRASH_ENV, latest_checkpoint
from wideseek_rl.config import PRESETS
from wideseek_rl.envs import ToyEnvSpec
from wideseek_rl.train import main, train

REPO = Path(__file__).resolve().parents[2]
VOLATILE = ("time/", "memory/")


def read_metrics(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [{k: v for k, v in r.items() if not k.startswith(VOLATILE)} for r in rows]


def test_it_learns_the_keyword_game_and_changes_every_parameter(tmp_path: Path):
    from transformers import AutoModelForCausalLM

    config = replace(PRESETS["toy"][1], steps=20, save_every=0, output_dir=tmp_path,
                     progress=False, torch_threads=1)
    assert config.env == ToyEnvSpec(width=4, keywords=("blue",))
    t0, cpu0 = time.perf_counter(), time.process_time()
    result = train(config)
    elapsed, cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == list(range(1, 21))
    scores = [r["score/mean"] for r in rows]
    first, last = sum(scores[:5]) / 5, sum(scores[-5:]) / 5
    print(f"score {first:.3f} -> {last:.3f} in {elapsed:.0f} s ({cpu_s:.0f} CPU s)")
    assert last > first + 0.2, scores
    assert rows[-1]["loss/entropy"] < rows[0]["loss/entropy"] - 1.0
    assert cpu_s < 120  # CPU time: wall time also counts whatever else runs on the machine

    initial = AutoModelForCausalLM.from_pretrained(tmp_path / "tiny-model")
    trained = dict(result.model.named_parameters())
    for name, p in initial.named_parameters():
        assert p.requires_grad
        assert not torch.equal(p, trained[name].detach()), f"{name} did not change"

    raw = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert raw["memory/max_rss_gib"] < 2.0 and 0 < raw["memory/rss_peak_gib"] < 2.0
    for prefix in ("rollout/", "loss/", "score/", "time/", "env/"):
        assert any(k.startswith(prefix) for k in raw), prefix
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["steps"] == 20 and saved["env"]["_type"] == "ToyEnvSpec"
    assert list((tmp_path / "tensorboard").rglob("events.out.tfevents.*"))
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "final") is not None
    assert latest_checkpoint(tmp_path / "checkpoints").name == "step_00000020"
    with pytest.raises(FileExistsError, match="--resume"):
        train(config)  # a fresh run never mixes with an earlier run's checkpoints


def cli_args(out: Path, model: Path) -> list[str]:
    return ["toy", "--output-dir", str(out), "--model.path", str(model), "--steps", "6",
            "--save-every", "2",
            "--env.keywords", "blue", "apple", "--rollout.tasks-per-step", "2",
            "--rollout.group-size", "3", "--rollout.max-new-tokens", "5", "--optim.lr", "0.01",
            "--seed", "3", "--no-progress", "--no-tensorboard", "--torch-threads", "1"]


def run_cli(args: list[str], *, env_extra: dict | None = None, kill_after_step: int | None = None,
            timeout_s: float = 300) -> int:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env_extra or {})}
    proc = subprocess.Popen([sys.executable, "-m", "wideseek_rl.train", *args], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout_s
    metrics = Path(args[args.index("--output-dir") + 1]) / "metrics.jsonl"
    while proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("training run timed out")
        if kill_after_step is not None and metrics.is_file() and any(
            json.loads(line)["step"] >= kill_after_step
            for line in metrics.read_text().splitlines() if line.endswith("}")
        ):
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return proc.returncode
        time.sleep(0.05)
    if proc.returncode not in (0, 75):
        raise AssertionError(proc.stderr.read().decode()[-3000:])
    return proc.returncode


def test_resume_after_kills_replays_the_uninterrupted_run(tmp_path: Path, tiny_model_dir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    reference, killed = tmp_path / "reference", tmp_path / "killed"
    main(cli_args(reference, tiny_model_dir))
    expected = read_metrics(reference / "metrics.jsonl")
    assert [r["step"] for r in expected] == list(range(1, 7))

    args = [a for a in cli_args(killed, tiny_model_dir) if a != "--no-tensorboard"]
    # 1. Killed in the middle of saving step 4: the last complete checkpoint is step 2.
    assert run_cli(args, env_extra={CRASH_ENV: "4"}) == 75
    ckpts = killed / "checkpoints"
    assert latest_checkpoint(ckpts).name == "step_00000002"
    assert (ckpts / ".tmp-step_00000004").is_dir()  # the half-written save is ignored
    # 2. Resumed, then killed (SIGKILL) at some moment after logging step 5.
    assert run_cli([*args, "--resume"], kill_after_step=5) == -signal.SIGKILL
    assert latest_checkpoint(ckpts).name == "step_00000004"
    # 3. Resumed to the end.
    assert run_cli([*args, "--resume"]) == 0
    got = read_metrics(killed / "metrics.jsonl")
    assert got == expected  # every step, bit for bit (timings and memory aside)
    assert not list(ckpts.glob(".tmp-*"))
    assert sorted(p.name for p in ckpts.glob("step_*")) == ["step_00000004", "step_00000006"]
    # TensorBoard shows every step once, with the values of the run that kept it (steps 3-5
    # were logged twice or three times; a resumed run purges what comes after its checkpoint).
    events = EventAccumulator(str(killed / "tensorboard"))
    events.Reload()
    scalars = events.Scalars("score/mean")
    assert [e.step for e in scalars] == list(range(1, 7))
    assert [e.value for e in scalars] == pytest.approx([r["score/mean"] for r in expected])


@pytest.mark.vllm
def test_vllm_engine_run_keeps_sampling_logprobs_equal_to_the_trainers(
        tmp_path: Path, tiny_model_dir: Path):
    """Six steps with the in-process vLLM engine (external launcher, one process), killed while
    saving step 4 and resumed from step 2: the engine gets the new weights after every update
    and the checkpoint's weights on resume, so at every step the trainer's log-probs of the
    sampled tokens, before its update, equal the engine's (ratio 1). A stale engine would sample
    from another step's model, which at this learning rate moves the ratio far from 1. Every
    step makes one generate call per env step (3 in this game: lead, helpers, lead)."""
    pytest.importorskip("vllm")
    out = tmp_path / "vllm"
    args = [*cli_args(out, tiny_model_dir), "--engine.kind", "vllm",
            "--engine.vllm-enforce-eager", "--save-every", "2"]
    # Dynamo off: vLLM would otherwise compile its log-prob rank kernel (tens of CPU seconds).
    env = {"VLLM_CPU_KVCACHE_SPACE": "1", "TORCH_COMPILE_DISABLE": "1"}
    assert run_cli(args, env_extra={**env, CRASH_ENV: "4"}) == 75
    first = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in first] == [1, 2, 3, 4]
    assert run_cli([*args, "--resume"], env_extra=env) == 0
    rows = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in rows] == list(range(1, 7))
    for r in rows:
        assert abs(r["loss/ratio_mean"] - 1) < 1e-3 and r["loss/ratio_max"] < 1.01, r
        assert r["rollout/generated_tokens"] > 0 and r["rollout/generate_calls"] == 3
    assert len({round(r["loss/entropy"], 6) for r in rows}) > 1  # the policy did change
    # The resumed steps replay the killed run's (same seeds, same weights).
    assert rows[2]["loss/entropy"] == pytest.approx(first[2]["loss/entropy"], abs=1e-4)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_hold_identical_parameters(tmp_path: Path):
    launcher = Path(sys.executable).parent / "accelerate"
    # `--multi_gpu` picks Accelerate's torchrun launcher; without a GPU the trainer runs both
    # processes on the CPU with gloo (`accelerate launch --cpu` alone starts a single process).
    cmd = [str(launcher), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(free_port()), str(Path(__file__).parent / "ddp_script.py"),
           str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    ranks = [json.loads((tmp_path / f"params_rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    assert ranks[0]["hash"] == ranks[1]["hash"]
    assert ranks[0]["episodes"] == 6  # 3 tasks × 2, gathered from both ranks
    assert ranks[0]["initial_hash"] == ranks[1]["initial_hash"] != ranks[0]["hash"]


def launch(script: str, args: list[str], processes: int) -> subprocess.CompletedProcess:
    if processes == 1:
        cmd = [sys.executable, str(Path(__file__).parent / script), *args]
    else:
        # `--multi_gpu` picks Accelerate's torchrun launcher; without a GPU the processes run on
        # the CPU with gloo (`accelerate launch --cpu` alone starts a single process).
        cmd = [str(Path(sys.executable).parent / "accelerate"), "launch", "--multi_gpu",
               "--num_processes", str(processes), "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(free_port()), str(Path(__file__).parent / script), *args]
    done = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=REPO,
                          capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    return done


@pytest.mark.vllm
def test_two_ranks_as_one_tensor_parallel_vllm_engine(tmp_path: Path, tiny_model_dir: Path):
    """Two processes, each with its external-launcher vLLM engine, forming one engine of
    tensor-parallel size 2: both ranks roll out the same episodes (identical prompts, as vLLM
    requires), the batch counts each episode once and each generated token is trained once, and
    the sampling log-probs are the trainer's (ratio 1)."""
    pytest.importorskip("vllm")
    out = tmp_path / "tp2"
    args = ["toy", "--output-dir", str(out), "--model.path", str(tiny_model_dir), "--steps", "2",
            "--save-every", "0", "--env.keywords", "blue", "apple", "--rollout.tasks-per-step", "2",
            "--rollout.group-size", "2", "--rollout.max-new-tokens", "5", "--no-progress",
            "--no-tensorboard", "--torch-threads", "1", "--engine.kind", "vllm",
            "--engine.vllm-enforce-eager", "--engine.tensor-parallel-size", "2"]
    cmd = [str(Path(sys.executable).parent / "accelerate"), "launch", "--multi_gpu",
           "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", "--main_process_port", str(free_port()),
           "-m", "wideseek_rl.train", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "VLLM_CPU_KVCACHE_SPACE": "1",
           "TORCH_COMPILE_DISABLE": "1"}
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, timeout=900)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    rows = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2]
    for r in rows:
        assert r["rollout/episodes"] == 4  # 2 tasks × 2, not twice over
        assert r["loss/tokens"] == r["rollout/generated_tokens"] > 0  # each token trained once
        assert abs(r["loss/ratio_mean"] - 1) < 1e-3 and r["rollout/generate_calls"] == 3


def test_two_processes_make_the_update_of_one(tmp_path: Path, tiny_model_dir: Path):
    """One update over the same global batch, split over 2 ranks or not: the same parameters
    (up to float summation order). DDP keeps ranks equal by construction, so only a comparison
    with one process can catch a rank using another rank's loss weights or a wrong loss scale."""
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    launch("ddp_equivalence_script.py", [str(tiny_model_dir), str(one)], 1)
    launch("ddp_equivalence_script.py", [str(tiny_model_dir), str(two)], 2)
    ref = torch.load(one / "delta_rank0.pt")
    ranks = [torch.load(two / f"delta_rank{r}.pt") for r in (0, 1)]
    assert ref["world"] == 1 and [r["world"] for r in ranks] == [2, 2]
    assert ref["rows"] == ranks[0]["rows"] > 2
    moved = 0
    for name, d in ref["delta"].items():
        scale = float(d.abs().max())
        moved += scale > 0
        for r in ranks:
            assert torch.allclose(r["delta"][name], d, rtol=1e-4, atol=1e-4 * scale), name
    assert moved == len(ref["delta"])  # every parameter got a gradient


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_parse_and_name_their_env(preset):
    import tyro

    config = tyro.extras.overridable_config_cli(PRESETS, args=[preset, "--steps", "3"])
    assert config.steps == 3
    assert type(config.env) is type(PRESETS[preset][1].env)


def test_steps_without_signal_move_nothing_when_skipped_and_adams_momentum_moves_them_otherwise(
        tmp_path: Path):
    """`loss.skip_steps_without_signal`: a step whose groups all have equal rewards leaves the
    weights exactly as they were (and logs `loss/step_skipped`); without it, such a step after
    one with a signal still moves them (Adam's momentum), as the reference does."""
    from safetensors.torch import load_file

    base = replace(PRESETS["toy"][1], steps=8, save_every=1, keep_checkpoints=10,
                   progress=False, torch_threads=1, tensorboard=False)
    base = replace(base, rollout=replace(base.rollout, tasks_per_step=1, group_size=2))

    class AllOrNothing:  # the keyword game paid 1 or 0, so that some groups have equal rewards
        def __init__(self, env):
            self.env = env

        def __getattr__(self, name):
            return getattr(self.env, name)

        def step(self, actions):
            obs, rewards, ends, cuts, infos = self.env.step(actions)
            return obs, {a: float(r >= 0.3) for a, r in rewards.items()}, ends, cuts, infos

    class Spec:
        def make(self, split, tokenizer=None):
            return AllOrNothing(base.env.make(split, tokenizer))

        def task_options(self, split):
            return base.env.task_options(split)

    def run(out: Path, skip: bool) -> tuple[list[dict], list[dict[str, torch.Tensor]]]:
        train(replace(base, output_dir=out, loss=replace(base.loss, skip_steps_without_signal=skip)),
              Spec())
        ckpts = sorted((out / "checkpoints").glob("step_*"))
        return read_metrics(out / "metrics.jsonl"), [load_file(str(c / "model.safetensors"))
                                                     for c in ckpts]

    def moved(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
        return any(not torch.equal(a[k], b[k]) for k in a)

    rows, weights = run(tmp_path / "skip", True)
    signal = [r["rollout/groups_with_signal"] > 0 for r in rows]
    assert len(weights) == 8 and any(signal) and not all(signal), signal
    for step in range(1, 8):  # steps 2..8 against the step before
        assert moved(weights[step - 1], weights[step]) == signal[step], step
        assert rows[step]["loss/step_skipped"] == (0.0 if signal[step] else 1.0)
    plain_rows, plain = run(tmp_path / "plain", False)
    # The same rollouts up to the first step the two runs train differently, then ...
    first_quiet = next(i for i in range(1, 8) if signal[i - 1] and not signal[i])
    assert [r["rollout/groups_with_signal"] for r in plain_rows[:first_quiet + 1]] == \
        [r["rollout/groups_with_signal"] for r in rows[:first_quiet + 1]]
    # ... the step without a signal that follows one with a signal moves the weights anyway.
    assert plain_rows[first_quiet]["loss/step_skipped"] == 0.0
    assert moved(plain[first_quiet - 1], plain[first_quiet])


def test_format_error_turns_carry_a_signal_that_skipping_keeps(tmp_path: Path):
    """`rollout.format_error_advantage`: with every reward equal no group has a signal, yet a
    step whose rollout held a format error still trains (its error turns at -c), while a step
    without one is skipped under `loss.skip_steps_without_signal`."""
    base = replace(PRESETS["toy"][1], steps=4, progress=False, torch_threads=1, tensorboard=False,
                   output_dir=tmp_path)
    base = replace(base, rollout=replace(base.rollout, tasks_per_step=1, group_size=2,
                                         format_error_advantage=1.0),
                   loss=replace(base.loss, skip_steps_without_signal=True))

    class Unpaid:
        """The keyword game paying nothing (no group ever has a signal), whose per-agent infos
        report `format_errors` only in every other episode it plays (one per step here)."""

        def __init__(self, env):
            self.env, self.resets = env, 0

        def __getattr__(self, name):
            return getattr(self.env, name)

        def reset(self, *args, **kwargs):
            self.resets += 1
            return self._strip(*self.env.reset(*args, **kwargs))

        def step(self, actions):
            obs, rewards, ends, cuts, infos = self.env.step(actions)
            obs, infos = self._strip(obs, infos)
            return obs, dict.fromkeys(rewards, 0.0), ends, cuts, infos

        def _strip(self, obs, infos):
            if self.resets % 2 == 0:
                infos = {a: {k: v for k, v in i.items() if k != "format_errors"}
                         for a, i in infos.items()}
            return obs, infos

    class Spec:
        def make(self, split, tokenizer=None):
            return Unpaid(base.env.make(split, tokenizer))

        def task_options(self, split):
            return base.env.task_options(split)

    train(base, Spec())
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert all(r["rollout/groups_with_signal"] == 0 for r in rows)
    errors = [r["rollout/format_error_turns_trained"] for r in rows]
    # Where reported, the count is the env's own (its mean per episode times the episodes).
    reported = [r.get("env/format_errors", 0.0) * 2 for r in rows]
    assert errors == [n if step % 2 == 0 else 0.0 for step, n in enumerate(reported)]
    assert any(errors) and not all(errors), errors  # both kinds of step occur
    assert [r["loss/step_skipped"] for r in rows] == [float(e == 0) for e in errors]
