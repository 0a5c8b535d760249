"""Provenance of gold cells, and the checker that re-derives every cell from the built pages.

Every gold cell of a v2 task records where it comes from: one step ``[url, surface]`` (the page
and the exact string it states), or two for a multi-hop cell (the row's page naming the linked
entity, then that entity's page stating the value). The first page must be about the row's
entity, or, for a table or list page, name the row's entity on the line of the surface. Each column records the
:class:`~.surface.Transform` its request applies. The file is
``tasks/<split>_provenance.jsonl.gz``, one record per task::

    {"instance_id": ..., "transforms": [{...} per column], "hops": [bool per column],
     "cells": [[[[url, surface], ...] per column] per row]}

:func:`check_provenance` opens each page through the store, checks the surface is written on it
(and, for a hop, that the second page is about the entity the first one names), applies the
transform again and compares with the gold cell. A world is built only when every cell passes.
"""

from __future__ import annotations

import gzip
import io
import json
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from wideseek_env.search.docstore import DocStore, StoredPage
from wideseek_env.tasks import Task
from wideseek_env.worlds.v2.surface import Transform, derive


def provenance_path(world: Path, split: str) -> Path:
    return world / "tasks" / f"{split}_provenance.jsonl.gz"


def write_provenance(world: Path, split: str, records: Iterable[Mapping[str, Any]]) -> None:
    path = provenance_path(world, split)
    path.parent.mkdir(parents=True, exist_ok=True)
    # No file name and a zero time stamp in the gzip header: the same world, the same bytes.
    with open(path, "wb") as raw, gzip.GzipFile("", "wb", 6, raw, mtime=0) as gz, \
            io.TextIOWrapper(gz, encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n")


def read_provenance(world: Path, split: str) -> dict[str, dict[str, Any]]:
    path = provenance_path(world, split)
    if not path.is_file():
        raise FileNotFoundError(f"world {world} has no provenance for split {split!r} ({path})")
    out = {}
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            try:
                r = json.loads(line)
                out[r["instance_id"]] = r
            except (json.JSONDecodeError, KeyError) as e:
                raise ValueError(f"{path}:{lineno}: bad provenance record ({e})") from e
    return out


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


class _Pages:
    """A small cache of decompressed pages (tasks reuse the same pages a lot)."""

    def __init__(self, store: DocStore, size: int = 4096) -> None:
        self.store = store
        self.size = size
        self._cache: OrderedDict[str, StoredPage | None] = OrderedDict()

    def get(self, url: str) -> StoredPage | None:
        if url in self._cache:
            self._cache.move_to_end(url)
            return self._cache[url]
        page = self.store.by_url(url)
        self._cache[url] = page
        if len(self._cache) > self.size:
            self._cache.popitem(last=False)
        return page


def check_cell(pages: _Pages, gold: str, steps: Sequence[Sequence[str]], transform: Transform,
               hop: bool, about: str | None = None) -> str | None:
    """``None`` when the cell is proved, else why not. ``about``: the row's entity, which the
    first page must be about (key cells: ``None``)."""
    for url, surface in steps:
        page = pages.get(url)
        if page is None:
            return f"no page at {url}"
        if surface not in f"{page.title}\n{page.text}":
            return f"surface {surface!r} is not on {url}"
    if about is not None:
        first = pages.get(steps[0][0])
        if first is not None and first.kind != "entity":  # a table or list: the row's line
            if not any(_norm(about) in _norm(line) and steps[0][1] in line
                       for line in first.text.splitlines()):
                return (f"no line of {steps[0][0]} names the row's entity {about!r} next to "
                        f"{steps[0][1]!r}")
        elif first is None or _norm(first.entity) != _norm(about):
            return (f"the page {steps[0][0]} is not about the row's entity {about!r} "
                    f"(it is about {first.entity if first else None!r})")
    if hop and len(steps) > 1:  # a hop column's cell may also be stated on the row's own page
        if len(steps) != 2:
            return f"a multi-hop cell needs 2 steps, has {len(steps)}"
        target = pages.get(steps[1][0])
        if target is None or _norm(target.entity) != _norm(steps[0][1]):
            return (f"the value's page {steps[1][0]} is not about {steps[0][1]!r} "
                    f"(it is about {target.entity if target else None!r})")
    try:
        derived = derive(steps[-1][1], transform)
    except (ValueError, KeyError) as e:
        return f"surface {steps[-1][1]!r} does not read as {transform.op}: {e}"
    if derived != gold:
        return f"{transform.op} of {steps[-1][1]!r} gives {derived!r}, the gold cell is {gold!r}"
    return None


def check_provenance(store: DocStore, tasks: Sequence[Task],
                     provenance: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Re-derive every gold cell of ``tasks`` from the pages; rates, counts per transform and the
    first failures."""
    pages = _Pages(store)
    cells = proved = tasks_ok = 0
    ops: Counter[str] = Counter()
    failures: list[dict[str, Any]] = []
    for task in tasks:
        rec = provenance.get(task.instance_id)
        ok = True
        if rec is None:
            cells += sum(len(r) for r in task.gold.rows)
            failures.append({"task": task.instance_id, "why": "no provenance record"})
            continue
        transforms = [Transform.from_dict(t) for t in rec["transforms"]]
        hops = rec.get("hops") or [False] * len(transforms)
        if len(rec["cells"]) != len(task.gold.rows):
            failures.append({"task": task.instance_id, "why": "provenance rows != gold rows"})
            cells += sum(len(r) for r in task.gold.rows)
            continue
        keys = {task.required.index(u) for u in task.unique_columns}
        k0 = task.required.index(task.unique_columns[0])
        for i, (row, steps_row) in enumerate(zip(task.gold.rows, rec["cells"])):
            for j, (gold, steps) in enumerate(zip(row, steps_row)):
                cells += 1
                why = check_cell(pages, gold, steps, transforms[j], bool(hops[j]),
                                 None if j in keys else row[k0])
                if why is None:
                    proved += 1
                    ops[transforms[j].op + ("+hop" if hops[j] else "")] += 1
                else:
                    ok = False
                    if len(failures) < 20:
                        failures.append({"task": task.instance_id, "row": i,
                                         "column": task.gold.columns[j], "cell": gold,
                                         "why": why})
        tasks_ok += ok
    return {"cells": cells, "cells_proved": proved,
            "cell_rate": round(proved / cells, 6) if cells else 1.0,
            "tasks": len(tasks), "tasks_fully_proved": tasks_ok,
            "task_rate": round(tasks_ok / len(tasks), 6) if tasks else 1.0,
            "proved_by_transform": dict(sorted(ops.items())), "failures": failures}


class AnswerabilityError(RuntimeError):
    """The checker could not prove every gold cell: the world is not built."""
