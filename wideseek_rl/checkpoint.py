"""Atomic, resumable checkpoints.

A checkpoint is a directory `checkpoints/step_XXXXXXXX/` holding Accelerate's state (model
weights as safetensors, optimiser, scheduler, every rank's RNG states) plus `trainer_state.json`
(step, data position, seed). It is written under a temporary name and renamed into place once
every rank has finished writing, and `checkpoints/latest` (written with an atomic replace) names
the newest complete one; so a run killed at any moment, also in the middle of a save, resumes
from the last complete checkpoint and never reads a partial one. Leftover temporary directories
are removed on the next save.

Test hook: with `WIDESEEK_RL_CRASH_IN_SAVE=<step>` in the environment the process exits hard
(`os._exit(75)`) after writing the state of that step but before committing it, which lets the
tests check a kill during a save without timing races.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

CRASH_ENV = "WIDESEEK_RL_CRASH_IN_SAVE"
_PREFIX = "step_"


@dataclass(frozen=True)
class TrainerState:
    """What the loop needs besides Accelerate's state to continue exactly."""

    step: int
    """Completed training steps."""
    tasks_consumed: int
    """Position in the (seeded, reshuffled every epoch) stream of training tasks."""
    seed: int


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to `path` through a temporary file and `os.replace` (never half-written)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def latest_checkpoint(root: str | os.PathLike[str]) -> Path | None:
    """The newest complete checkpoint under `root` (None when there is none)."""
    root = Path(root)
    pointer = root / "latest"
    if pointer.is_file():
        candidate = root / pointer.read_text().strip()
        if (candidate / "trainer_state.json").is_file():
            return candidate
    complete = sorted(
        (p for p in root.glob(f"{_PREFIX}*") if (p / "trainer_state.json").is_file()),
        key=lambda p: int(p.name[len(_PREFIX):]),
    )
    return complete[-1] if complete else None


def save_checkpoint(accelerator: Any, root: str | os.PathLike[str], state: TrainerState,
                    keep: int = 2) -> Path:
    """Save the accelerator's state and `state` as checkpoint `state.step` (all ranks call)."""
    root = Path(root)
    name = f"{_PREFIX}{state.step:08d}"
    final, tmp = root / name, root / f".tmp-{name}"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        for stale in root.glob(".tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if os.environ.get(CRASH_ENV) == str(state.step):
        os._exit(75)
    if accelerator.is_main_process:
        write_json_atomic(tmp / "trainer_state.json", asdict(state))
        if final.exists():  # re-saving a step after a resume: move the old copy aside first
            old = root / f".tmp-old-{name}"
            os.replace(final, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, final)
        _fsync_dir(root)
        tmp_pointer = root / f".latest.tmp-{os.getpid()}"
        tmp_pointer.write_text(name)
        os.replace(tmp_pointer, root / "latest")
        _prune(root, keep)
    accelerator.wait_for_everyone()
    return final


def _prune(root: Path, keep: int) -> None:
    complete = sorted(
        (p for p in root.glob(f"{_PREFIX}*") if (p / "trainer_state.json").is_file()),
        key=lambda p: int(p.name[len(_PREFIX):]),
    )
    for old in complete[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(accelerator: Any, path: str | os.PathLike[str]) -> TrainerState:
    """Restore the accelerator's state from `path`; return the trainer state saved with it."""
    path = Path(path)
    data = json.loads((path / "trainer_state.json").read_text())
    accelerator.load_state(str(path))
    return TrainerState(**data)
