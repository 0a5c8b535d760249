"""The CI scripts: `.ci/setup.sh` merges the extras of successive runs (the README's two
commands in order: `main.sh` installs "" and `test.sh` then asks for every extra), and `.ci/run`
runs those two commands in that order."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _plan(venv: Path, extras: str | None, stamp: tuple[str, str] | None) -> str:
    """What `.ci/setup.sh [extras]` would do with a venv whose stamp holds ``stamp``."""
    venv.mkdir(parents=True, exist_ok=True)
    if stamp is not None:
        (venv / ".wideseek-stamp").write_text(f"{stamp[0]}\n{stamp[1]}\n")
    env = {**os.environ, "WIDESEEK_VENV": str(venv), "WIDESEEK_SETUP_DRY_RUN": "1"}
    args = ["bash", str(ROOT / ".ci" / "setup.sh")] + ([] if extras is None else [extras])
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    return out.stdout.splitlines()[0]


def _hash() -> str:
    data = (ROOT / "pyproject.toml").read_bytes() + (ROOT / ".ci" / "setup.sh").read_bytes()
    return hashlib.sha256(data).hexdigest()[:16]


@pytest.mark.parametrize(("stamp", "request_", "expected"), [
    (("same", ""), None, "rl,test,vllm-cpu,bench"),  # main.sh then test.sh: the reported bug
    (("same", ""), "", "extras: "),  # main.sh twice on a fresh venv: env side only
    (("same", "rl,test"), "", "rl,test"),  # a subset of what is there: nothing new
    (("same", "rl"), "test,rl", "rl,test"),  # the union, in first-seen order, once each
    (("old", "bench"), "", "bench"),  # pyproject changed: reinstall what was there
    (None, "rl,,test,", "rl,test"),  # empty names never reach pip's `.[…]`
])
def test_setup_merges_extras(tmp_path: Path, stamp: tuple[str, str] | None, request_: str | None,
                             expected: str) -> None:
    if stamp is not None and stamp[0] == "same":
        stamp = (_hash(), stamp[1])
    line = _plan(tmp_path / "venv", request_, stamp)
    assert line.startswith("extras: ")
    if expected.startswith("extras: "):
        assert line == expected
    else:
        assert line.split(" (")[0] == f"extras: {expected}"
    assert ",," not in line and "extras: ," not in line


def test_ci_runs_the_readme_commands_in_order() -> None:
    readme = (ROOT / "README.md").read_text()
    run = (ROOT / ".ci" / "run").read_text()
    for text in (readme, run):
        assert 0 <= text.index("bash .ci/main.sh") < text.index("bash .ci/test.sh")
