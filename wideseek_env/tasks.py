"""Task records in WideSearch's shape, plus loaders and a writer.

A :class:`Task` is what every other part of the project passes around: the env poses its
``query``, the scorer compares an answer with its ``gold`` table using its ``evaluation``
(``unique_columns``, ``required`` and the per-column ``eval_pipeline``).

Column names inside ``evaluation`` are *normalised* the way WideSearch does it (lower-case, spaces
removed, see :func:`norm_column`); the gold table keeps the human-readable header it was read with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


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
