"""Small pieces of the training loop: task stream, learning-rate schedule, metrics files, config."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from wideseek_rl.checkpoint import latest_checkpoint, write_json_atomic
from wideseek_rl.checks import validate
from wideseek_rl.config import PRESETS, ConfigError, EngineConfig, TrainConfig, flatten, to_dict
from wideseek_rl.envs import EnvSpec, ToyEnvSpec, WideSeekEnvSpec
from wideseek_rl.trackers import JsonlTracker, truncate_jsonl
from wideseek_rl.train import LRSchedule, task_stream


def test_task_stream_visits_every_task_once_per_epoch_and_resumes_anywhere():
    stream = task_stream(5, seed=1, start=0, count=15)
    for epoch in range(3):
        assert sorted(stream[5 * epoch : 5 * epoch + 5]) == [0, 1, 2, 3, 4]
    assert stream[:5] != stream[5:10]  # reshuffled each epoch
    assert task_stream(5, seed=1, start=7, count=6) == stream[7:13]
    assert task_stream(5, seed=2, start=0, count=5) != stream[:5]


def test_lr_schedule_by_hand():
    warm = LRSchedule("constant", warmup_steps=3, total_steps=10)
    assert [warm(s) for s in range(5)] == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0])
    lin = LRSchedule("linear", warmup_steps=0, total_steps=4)
    assert [lin(s) for s in range(5)] == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0])
    cos = LRSchedule("cosine", warmup_steps=2, total_steps=6)
    assert cos(2) == pytest.approx(1.0) and cos(4) == pytest.approx(0.5) and cos(6) == pytest.approx(0.0)
    assert cos(3) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))


def test_jsonl_tracker_and_truncation_after_a_kill(tmp_path: Path):
    path = tmp_path / "metrics.jsonl"
    tracker = JsonlTracker(path)
    for step in (1, 2, 3):
        tracker.log({"score/mean": step / 10, "loss/grad_norm": float("nan")}, step=step)
    tracker.finish()
    with open(path, "a") as f:
        f.write('{"step": 4, "score/me')  # the torn last line of a killed run
    truncate_jsonl(path, max_step=2)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert rows[0]["loss/grad_norm"] == "nan"  # JSON has no NaN: written as a string


def test_latest_checkpoint_ignores_incomplete_ones(tmp_path: Path):
    assert latest_checkpoint(tmp_path) is None
    for step in (2, 4):
        (tmp_path / f"step_{step:08d}").mkdir()
        write_json_atomic(tmp_path / f"step_{step:08d}" / "trainer_state.json", {"step": step})
    (tmp_path / "step_00000006").mkdir()  # never completed
    (tmp_path / ".tmp-step_00000008").mkdir()
    assert latest_checkpoint(tmp_path).name == "step_00000004"
    (tmp_path / "latest").write_text("step_00000002")
    assert latest_checkpoint(tmp_path).name == "step_00000002"  # the pointer wins
    (tmp_path / "latest").write_text("step_00000006")
    assert latest_checkpoint(tmp_path).name == "step_00000004"  # unless it names a partial one


def test_config_serialises_and_validates(tmp_path: Path):
    config = PRESETS["paper"][1]
    d = to_dict(config)
    assert d["env"]["_type"] == "WideSeekEnvSpec" and d["env"]["config"]["width"] == 10
    assert json.loads(json.dumps(d)) == d
    flat = flatten(d)
    assert flat["loss.clip_high"] == 0.28 and flat["optim.lr"] == 1e-6
    assert all(isinstance(v, (bool, int, float, str)) for v in flat.values())
    assert isinstance(ToyEnvSpec(), EnvSpec) and isinstance(WideSeekEnvSpec(), EnvSpec)
    # The paper's preset trains fp32 master weights with bf16 compute and a bf16 engine.
    assert (config.model.dtype, config.optim.mixed_precision) == ("float32", "bf16")
    assert config.engine.dtype == "bfloat16" and config.loss.max_ratio_mean == 5.0
    assert config.rollout.turn_selection == "paper" and config.env.config.reward == "paper"
    validate(config)
    with pytest.raises(ConfigError, match=r"^steps must be >= 1"):
        validate(TrainConfig(steps=0))
    with pytest.raises(ConfigError, match=r"engine\.base-urls"):
        validate(TrainConfig(engine=EngineConfig(kind="server")))
