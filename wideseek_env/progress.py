"""Progress bars that stay readable in a log file.

On a terminal, :func:`bar` is an ordinary ``tqdm`` bar. Anywhere else (CI, ``nohup``, a job
scheduler's log) tqdm would write every refresh after a carriage return, which a log keeps as one
ever-growing line of thousands of updates; there, the bar writes a plain line at most every
``log_interval_s`` seconds (30 by default, ``$WIDESEEK_PROGRESS_INTERVAL_S``) and one at the end.
"""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO

from tqdm import tqdm

DEFAULT_LOG_INTERVAL_S = 30.0


class _Lines:
    """A file for tqdm that turns its carriage-return refreshes into whole lines."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        line = text.replace("\r", "").replace("\x1b[A", "").strip()
        if line:
            self.stream.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def is_terminal(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


def bar(iterable: Any = None, *, log_interval_s: float | None = None,
        stream: TextIO | None = None, **kwargs: Any) -> tqdm:
    """A ``tqdm`` bar (same arguments) that writes whole lines when ``stream`` (default stderr)
    is not a terminal."""
    stream = stream or sys.stderr
    if is_terminal(stream):
        return tqdm(iterable, file=stream, **kwargs)
    interval = log_interval_s if log_interval_s is not None else float(
        os.environ.get("WIDESEEK_PROGRESS_INTERVAL_S", DEFAULT_LOG_INTERVAL_S))
    kwargs.pop("dynamic_ncols", None)
    return tqdm(iterable, file=_Lines(stream), mininterval=interval, maxinterval=interval,
                ncols=100, ascii=True, **kwargs)
