"""`wideseek-train` refuses bad values at once: one `error:` line naming the field, exit status
2, nothing built (no run directory, no model loaded)."""

from __future__ import annotations

import os
import subprocess
import sys
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
