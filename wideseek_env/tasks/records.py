"""Task records: :class:`Task`, its :class:`GoldTable` and per-column :class:`ColumnEval`, the
error every loader raises (:class:`TaskFormatError`), and WideSearch's column-name
normalisation. A leaf module: the scorer imports it, and it imports nothing of the project.

Column names inside ``evaluation`` are *normalised* the way WideSearch does it (lower-case, spaces
removed, see :func:`norm_column`); the gold table keeps the human-readable header it was read with.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PREPROCESS_STEPS = frozenset({"norm_str", "extract_number", "norm_date"})
METRIC_NAMES = frozenset(
    {"exact_match", "number_near", "date_near", "url_match", "llm_judge", "set_match"}
)
DEFAULT_JUDGE_CRITERION = (
    "It is sufficient if the semantics are approximately the same as the reference answer or if "
    "they point to the same entity. There is no need for a word-for-word correspondence."
)


def norm_column(name: str) -> str:
    """WideSearch's column-name normalisation: lower-case, all spaces removed."""
    return name.strip().lower().replace(" ", "")


@dataclass(frozen=True)
class ColumnEval:
    """How one column is scored: preprocess steps, metric(s) and the metric's criterion.

    ``criterion`` is the relative tolerance for ``number_near`` (a float), the instruction text for
    ``llm_judge`` (a string), and ``None`` otherwise.
    """

    preprocess: tuple[str, ...] = ("norm_str",)
    metric: tuple[str, ...] = ("exact_match",)
    criterion: float | str | None = None


@dataclass(frozen=True)
class GoldTable:
    """A gold table: header as written (not normalised) and rows of cell strings."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Task:
    """One WideSearch-shaped task.

    ``unique_columns`` and ``required`` hold normalised column names; ``eval_pipeline`` maps every
    required column to its :class:`ColumnEval`. ``meta`` is free-form (world, split, source ...).
    """

    instance_id: str
    query: str
    language: str
    unique_columns: tuple[str, ...]
    required: tuple[str, ...]
    eval_pipeline: Mapping[str, ColumnEval]
    gold: GoldTable
    meta: Mapping[str, Any] = field(default_factory=dict)


class TaskFormatError(ValueError):
    """A task or gold file is malformed. The message names the file, line and field."""

    def __init__(
        self, path: str | os.PathLike[str], line: int | None, field: str | None, message: str
    ) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        where = self.path if line is None else f"{self.path}:{line}"
        what = f" field {field!r}:" if field else ""
        super().__init__(f"{where}:{what} {message}")
