"""`wideseek-train` refuses bad values at once: one `error:` line naming the field, exit status
2, nothing built (no run directory, no model loaded)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from wideseek_rl.train import main

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("args", "field"), [
    (["toy", "--optim.lr", "nan"], "optim.lr"),
    (["toy", "--optim.lr", "-1e-6"], "optim.lr"),
    (["toy", "--rollout.temperature", "-1"], "rollout.temperature"),
    (["toy", "--env.width", "0"], "env.width"),
    (["paper", "--env.config.width", "0"], "EnvConfig.width"),
    (["toy", "--save-every", "-3"], "save-every"),
    (["toy", "--rollout.group-size", "0"], "rollout.group-size"),
    (["toy", "--rollout.format-error-advantage", "0"], "rollout.format-error-advantage"),
    (["toy", "--loss.dual-clip", "0.5"], "loss.dual-clip"),
    (["toy", "--engine.kind", "vllm", "--engine.vllm-kwargs", "oops"], "engine.vllm-kwargs"),
    (["toy", "--engine.vllm-sleep"], "engine.kind"),
    (["toy", "--model.path", "/no/such/model"], "model.path"),
])
def test_bad_values_fail_at_once_with_one_line(tmp_path, capsys, args, field):
    out = tmp_path / "run"
    assert main([*args, "--output-dir", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {field}") and "\n" not in err, err
    assert not out.exists()  # refused before anything was built


def test_a_model_directory_without_a_config_is_refused(tmp_path, capsys):
    (tmp_path / "model").mkdir()
    assert main(["toy", "--model.path", str(tmp_path / "model"),
                 "--output-dir", str(tmp_path / "run")]) == 2
    assert "holds no config.json" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "expected"), [
    (["paper", "--env.config.width", "0"], "error: EnvConfig.width must be a positive int, got 0"),
    (["toy", "--model.path", "no-such-org/no-such-model"],
     "error: model.path: cannot load 'no-such-org/no-such-model' (not a local directory, and not "
     "a Hugging Face id that resolves here)"),
])
def test_the_console_entry_point_exits_2_with_one_line(tmp_path, args, expected):
    done = subprocess.run([sys.executable, "-m", "wideseek_rl.train", *args,
                           "--output-dir", str(tmp_path / "run")],
                          cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 2
    assert done.stderr.strip().startswith(expected) and "\n" not in done.stderr.strip()


def test_placements_the_trainer_cannot_serve_are_refused():
    from wideseek_rl.checks import check_placement
    from wideseek_rl.config import PRESETS, ConfigError, EngineConfig

    paper = PRESETS["paper"][1]

    def check(config=paper, kind="MULTI_GPU", zero=None, n=8, cuda=True):
        check_placement(config, distributed_type=kind, zero_stage=zero, num_processes=n, cuda=cuda)

    check()  # DDP on 8 GPUs
    with pytest.raises(ConfigError, match="FSDP is not supported"):
        check(kind="FSDP")
    for zero in (2, 3):
        with pytest.raises(ConfigError, match=f"DeepSpeed \\(ZeRO-{zero}\\) is not supported"):
            check(kind="DEEPSPEED", zero=zero)
    sleepy = replace(paper, engine=replace(paper.engine, vllm_sleep=True))
    check(sleepy)
    with pytest.raises(ConfigError, match="needs CUDA"):
        check(sleepy, cuda=False)
    tp = replace(paper, engine=EngineConfig(kind="vllm", tensor_parallel_size=3))
    with pytest.raises(ConfigError, match="must divide"):
        check(tp)


def test_vllm_sleep_on_a_cpu_is_one_error_line(tmp_path, capsys):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA machine can sleep")
    assert main(["toy", "--engine.kind", "vllm", "--engine.vllm-sleep",
                 "--output-dir", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: engine.vllm-sleep needs CUDA (vLLM's sleep mode frees GPU memory)")


def test_tensor_parallel_ranks_share_tasks_and_split_rows():
    from wideseek_rl.runtime import Layout

    ranks = [Layout(r, 4, tp=2) for r in range(4)]
    assert [lay.worker for lay in ranks] == [0, 0, 1, 1]
    assert ranks[0].tasks(5) == ranks[1].tasks(5) == [0, 2, 4]  # one engine, the same prompts
    assert ranks[2].tasks(5) == ranks[3].tasks(5) == [1, 3]
    rows = list(range(7))
    assert ranks[0].rows(rows) == [0, 2, 4, 6] and ranks[1].rows(rows) == [1, 3, 5]
    solo = Layout(1, 2)
    assert solo.tasks(5) == [1, 3] and solo.rows(rows) == rows


def test_a_bad_task_file_is_one_line_before_anything_loads(tmp_path, capsys):
    """WideSeek-R1's data files are read at once: a bad record names file, line and field."""
    bad = tmp_path / "hybrid.jsonl"
    bad.write_text('{"question": "Who?", "answer": "x", "is_markdown": false}\n'
                   '{"question": "Which?", "answer": ["y", 3.5, ""], "is_markdown": false}\n',
                   encoding="utf-8")
    out = tmp_path / "run"
    assert main(["paper", "--env.train-tasks", str(bad), "--env.depth-share", "None",
                 "--output-dir", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: env.train-tasks: {bad}:2: field 'answer[2]': expected a non-empty "
                   "string, got ''") and not out.exists()
