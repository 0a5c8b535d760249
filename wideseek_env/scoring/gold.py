"""A task's gold table prepared for scoring: required columns located and typed as pandas would.

Preparation depends only on the task, so it is memoised (an LRU keyed by the task object).
Line breaks inside gold cells become spaces here (a documented fix: a markdown answer cannot put
a line break in a cell, so such gold cells could never be matched otherwise).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass

from ..tasks.records import Task, norm_column
from .pdtable import TypedColumn, header_names, infer_column

__all__ = ["PreparedGold", "gold_column_index", "prepared_gold"]

_LINE_BREAK_RE = re.compile(r"\r\n|\r|\n")
_CACHE_SIZE = 4096


@dataclass(frozen=True)
class PreparedGold:
    """Typed gold columns by normalised required-column name."""

    typed: dict[str, TypedColumn]


def gold_column_index(columns: tuple[str, ...] | list[str]) -> dict[str, int]:
    """Normalised column name -> position, naming columns as pandas does (``Unnamed: i``)."""
    index: dict[str, int] = {}
    for i, name in enumerate(header_names(list(columns))):
        index.setdefault(norm_column(name.strip()), i)
    return index


def _prepare(task: Task) -> PreparedGold:
    index = gold_column_index(task.gold.columns)
    typed = {}
    for col in task.required:
        if col not in index:
            raise KeyError(f"task {task.instance_id}: required column {col!r} not in gold table")
        j = index[col]
        cells = [_LINE_BREAK_RE.sub(" ", row[j]) if j < len(row) else "" for row in task.gold.rows]
        typed[col] = infer_column(cells)
    return PreparedGold(typed)


_cache: OrderedDict[int, tuple[Task, PreparedGold]] = OrderedDict()
_lock = threading.Lock()


def prepared_gold(task: Task) -> PreparedGold:
    """The (memoised) prepared gold table of ``task``."""
    key = id(task)
    with _lock:
        hit = _cache.get(key)
        if hit is not None and hit[0] is task:
            _cache.move_to_end(key)
            return hit[1]
    prepared = _prepare(task)
    with _lock:
        _cache[key] = (task, prepared)  # holding the task keeps its id from being reused
        _cache.move_to_end(key)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return prepared
