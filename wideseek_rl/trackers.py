"""Accelerate trackers for the training loop: JSON lines on disk and a compact stdout line.

Both run on the main process only and sit beside Accelerate's own TensorBoard tracker, so one
`accelerator.log(metrics, step)` call feeds all three. Metric names are namespaced
(`rollout/…`, `loss/…`, `score/…`, `eval/…`, `env/…`, `time/…`, `memory/…`).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from accelerate.tracking import GeneralTracker

STDOUT_KEYS = (
    ("score/mean", "score"),
    ("eval/score_mean", "eval"),
    ("loss/policy", "loss"),
    ("loss/nll", "nll"),
    ("loss/entropy", "ent"),
    ("loss/grad_norm", "gnorm"),
    ("rollout/groups_with_signal", "signal"),
    ("rollout/generated_tokens", "tok"),
    ("memory/rss_peak_gib", "rss"),
    ("time/step_s", "s"),
)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/inf
    return value


class JsonlTracker(GeneralTracker):
    """Appends `{"step": …, **metrics}` per call to a JSONL file, flushed at once."""

    name = "jsonl"
    requires_logging_directory = False

    def __init__(self, path: str | os.PathLike[str]):
        super().__init__()
        self.path = Path(path)
        self._file: Any = None  # opened on the first record, after a resume has trimmed the file

    @property
    def tracker(self) -> Any:
        return self._file

    def log(self, values: dict, step: int | None = None, **kwargs) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a")  # noqa: SIM115 - lives as long as the tracker
        record = {"step": step, **{k: _clean(v) for k, v in values.items()}}
        self._file.write(json.dumps(record, sort_keys=True) + "\n")
        self._file.flush()

    def finish(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class StdoutTracker(GeneralTracker):
    """Prints one short line per `every` steps with the most telling metrics."""

    name = "stdout"
    requires_logging_directory = False

    def __init__(self, every: int = 1):
        super().__init__()
        self.every = every

    @property
    def tracker(self) -> Any:
        return None

    def log(self, values: dict, step: int | None = None, **kwargs) -> None:
        if step is not None and step % self.every:
            return
        parts = [f"step {step}"]
        for key, short in STDOUT_KEYS:
            if key in values:
                v = values[key]
                parts.append(f"{short} {v:.4g}" if isinstance(v, float) else f"{short} {v}")
        print(" | ".join(parts), flush=True)


def truncate_jsonl(path: str | os.PathLike[str], max_step: int) -> None:
    """Drop records with `step > max_step` (a resumed run re-logs those steps)."""
    path = Path(path)
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # the half-written last line of a killed run
        if (record.get("step") or 0) <= max_step:
            kept.append(line)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in kept))
    os.replace(tmp, path)
