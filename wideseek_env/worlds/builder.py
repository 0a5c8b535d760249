"""Build a world folder from source tables: pages, tasks, gold tables, index and card.

One pipeline for every source (:func:`build_world`):

1. split isolation: rows of training tables whose key names a test entity are dropped
   (``holdout="domains"``, the default: each table belongs to one split); or, with
   ``holdout="entities"``, every table is in both splits and a seeded share of its rows (its
   held-out entities) is asked about only in test tasks;
2. pages: an entity page per row, list pages per table and category value, the pages a source
   brings (article sections) and unrelated pages, all into the page store (``corpus/``);
3. tasks: drawn per table (:mod:`wideseek_env.worlds.taskgen`); a training task that mentions a
   test entity anywhere is discarded; ids are numbered per split in table order;
4. answerability: every gold cell must be stated on its row's entity page (:func:`check_answerability`);
5. the index of each requested engine over the store, recall@3 of entity names, and
   ``world.json``.

The world is written to a temporary sibling folder and renamed into place at the end, so a
half-built world is never visible under its final name.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from wideseek_env.search.docstore import DocStore, DocStoreWriter, StoredPage
from wideseek_env.search.engines import EngineName, build_engine, open_engine
from wideseek_env.tasks import Task
from wideseek_env.worlds import integrity
from wideseek_env.worlds.layout import CARD_FILE, write_tasks
from wideseek_env.worlds.pages import entity_page, list_pages
from wideseek_env.worlds.schema import SourceTable
from wideseek_env.worlds.taskgen import MAX_ROWS, MIN_ROWS, TaskGenerator

BUILDER_VERSION = "1"
_SPACE = re.compile(r"\s+")
HOLDOUTS = ("domains", "entities")


def norm_text(text: str) -> str:
    """Lower-case and collapse white space: how gold cells are looked up in pages."""
    return _SPACE.sub(" ", text).strip().lower()


def _peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cpu_seconds() -> float:
    """User + system CPU time of this process so far (less load-dependent than wall time)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def index_engines(docs: DocStore, world: Path, engines: Sequence[EngineName], name: str,
                  progress: bool) -> dict[str, float]:
    """Build every engine's index over the store into ``world/index``; seconds per engine."""
    seconds: dict[str, float] = {}
    for engine in engines:
        t1 = time.perf_counter()
        pages = ((i, p.title, p.text) for i, p in enumerate(
            tqdm(docs, total=len(docs), desc=f"world {name}: {engine} index", unit="page",
                 disable=not progress, mininterval=2.0)))
        build_engine(engine, pages, world / "index" / engine)
        seconds[engine] = round(time.perf_counter() - t1, 2)
    return seconds


def build_cost(t0: float, t_pages: float, index_seconds: dict[str, float],
               t_figures: float) -> dict[str, Any]:
    """The card's ``build`` record: wall seconds per phase, CPU seconds and peak memory."""
    return {"seconds_pages_tasks": round(t_pages, 2), "seconds_index": index_seconds,
            "seconds_figures": round(time.perf_counter() - t_figures, 2),
            "seconds_total": round(time.perf_counter() - t0, 2),
            "cpu_seconds_process": round(_cpu_seconds(), 1),
            "peak_rss_mib": round(_peak_rss_mib(), 1)}


def publish(tmp: Path, out_dir: Path, info: dict[str, Any], overwrite: bool) -> None:
    """Write the card (with every file's checksum, now that all are written) and rename the
    temporary folder into place: atomic; fails if another build got there first."""
    info.update(integrity.card_fields(tmp))
    (tmp / CARD_FILE).write_text(json.dumps(info, indent=2, ensure_ascii=False, default=str)
                                 + "\n", encoding="utf-8")
    if overwrite and out_dir.exists():
        shutil.rmtree(out_dir)
    try:
        os.rename(tmp, out_dir)
    except OSError as e:
        raise FileExistsError(f"{out_dir} appeared while building (a concurrent build?)") from e


def isolate_splits(tables: Sequence[SourceTable]) -> tuple[list[SourceTable], set[str]]:
    """Drop training rows whose key is a test entity; return the tables and the test keys."""
    test_keys = {norm_text(r[0]) for t in tables if t.split == "test" for r in t.rows}
    groups: dict[str, set[str]] = {}
    for t in tables:
        groups.setdefault(t.group, set()).add(t.split)
    mixed = sorted(g for g, s in groups.items() if len(s) > 1)
    if mixed:
        raise ValueError(f"source groups in both splits (first: {mixed[:3]}); a source page must "
                         f"belong to one split")
    out = []
    for t in tables:
        if t.split == "train":
            keep = [i for i, r in enumerate(t.rows) if norm_text(r[0]) not in test_keys]
            if len(keep) != len(t.rows):
                t = rows_of(t, keep)
        out.append(t)
    return out, test_keys


def rows_of(table: SourceTable, rows: Sequence[int], **changes: Any) -> SourceTable:
    """``table`` with only ``rows`` (their passages and row ids with them)."""
    return replace(table, rows=tuple(table.rows[i] for i in rows),
                   passages=tuple(table.passages[i] for i in rows) if table.passages else (),
                   row_ids=tuple(table.row_ids[i] for i in rows) if table.row_ids else (),
                   **changes)


def held_out_rows(table: SourceTable, fraction: float, seed: int) -> frozenset[int]:
    """The rows of ``table`` held out for the test split under ``holdout="entities"``: a
    seeded sample of ``round(fraction * rows)`` (at least one row, and one left for training)."""
    n = len(table.rows)
    count = min(max(1, round(fraction * n)), n - 1)
    return frozenset(random.Random(f"{seed}:holdout:{table.id}").sample(range(n), count))


def task_parts(table: SourceTable, holdout: str, fraction: float,
               seed: int) -> dict[str, list[int]]:
    """Split → row indices to draw tasks from: the table's own split and all its rows, or
    (``holdout="entities"``) its kept rows for train and its held-out rows for test."""
    if holdout == "domains":
        return {table.split: list(range(len(table.rows)))}
    held = held_out_rows(table, fraction, seed)
    return {"train": [i for i in range(len(table.rows)) if i not in held],
            "test": sorted(held)}


def sub_table(table: SourceTable, split: str, rows: list[int]) -> SourceTable:
    """``table`` restricted to ``rows`` (its own random stream per split)."""
    if len(rows) == len(table.rows):
        return table
    return rows_of(table, rows, id=f"{table.id}:{split}", split=split)


def build_world(
    tables: Sequence[SourceTable],
    out_dir: str | Path,
    *,
    name: str,
    seed: int = 0,
    other_pages: Iterable[StoredPage] = (),
    engines: Sequence[EngineName] = ("tantivy",),
    card: dict[str, Any] | None = None,
    overwrite: bool = False,
    progress: bool = True,
    tasks_scale: float = 1.0,
    recall_sample: int | None = None,
    isolate_cells: bool = True,
    rows: tuple[int, int] | None = None,
    holdout: str = "domains",
    holdout_fraction: float = 0.25,
) -> Path:
    """Build a world at ``out_dir`` and return its path.

    ``tasks_scale`` multiplies each table's ``tasks_wanted``; ``recall_sample`` caps the number of
    task rows whose names are searched for the recall@3 figure (all when ``None``).
    ``isolate_cells``: also discard training tasks with a test entity's name in any cell (not
    only as a row's key, which step 1 already rules out). ``rows`` = (min, max) rows per task
    (default the task generator's 5-50). ``holdout``: ``domains`` (each table's ``split``) or
    ``entities`` (every table in both splits; ``holdout_fraction`` of each table's entities are
    asked about only in test tasks, which then name their entities explicitly -- see
    :mod:`wideseek_env.worlds.taskgen` -- and training tasks that mention a held-out entity in
    any cell are dropped as usual).
    """
    if holdout not in HOLDOUTS:
        raise ValueError(f"holdout must be one of {HOLDOUTS}, got {holdout!r}")
    if not 0.0 < holdout_fraction < 1.0:
        raise ValueError(f"holdout_fraction must be in (0, 1), got {holdout_fraction!r}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} exists; pass overwrite=True (--overwrite) to replace it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.building-", dir=out_dir.parent))
    try:
        t0 = time.perf_counter()
        rows_before = sum(len(t.rows) for t in tables)
        if holdout == "domains":
            tables, test_keys = isolate_splits(tables)
        else:
            test_keys = {norm_text(t.rows[i][0]) for t in tables
                         for i in held_out_rows(t, holdout_fraction, seed)}
        dropped_rows = rows_before - sum(len(t.rows) for t in tables)
        parts = [task_parts(t, holdout, holdout_fraction, seed) for t in tables]
        store = DocStoreWriter(tmp / "corpus")
        taken_urls: set[str] = set()
        kinds: dict[str, int] = {}
        tasks: dict[str, list[Task]] = {"train": [], "test": []}
        dropped_for_isolation = 0

        def unique(url: str) -> str:
            base, n = url, 1
            while url in taken_urls:  # two titles that slugify alike: number the later one
                n += 1
                url = f"{base}-{n}"
            taken_urls.add(url)
            return url

        def add(page: StoredPage, reserved: bool = False) -> str:
            url = page.url if reserved else unique(page.url)
            if url != page.url:
                page = replace(page, url=url, id=url.split("://", 1)[-1])
            store.add(page)
            kinds[page.kind] = kinds.get(page.kind, 0) + 1
            return url

        # Entity URLs first: tables that share entities (merge_entities) get one page per key.
        members: dict[str, list[tuple[SourceTable, int]]] = {}
        row_urls: list[list[str]] = []
        by_identity: dict[tuple[str, str], str] = {}
        for table in tables:
            urls = []
            for i, row in enumerate(table.rows):
                ident = (table.url_prefix, norm_text(row[0]))
                url = by_identity.get(ident) if table.merge_entities else None
                if url is None:
                    url = unique(table.entity_url(i))
                    by_identity[ident] = url
                members.setdefault(url, []).append((table, i))
                urls.append(url)
            row_urls.append(urls)
        written: set[str] = set()

        bar = tqdm(tables, desc=f"world {name}: pages+tasks", unit="table", disable=not progress)
        for table, urls, table_parts in zip(bar, row_urls, parts):
            for extra in table.extra_pages:
                add(extra)
            for url in urls:
                if url not in written:
                    written.add(url)
                    add(entity_page(members[url], url, seed), reserved=True)
            for page in list_pages(table):
                add(page)
            want = max(1, round(table.tasks_wanted * tasks_scale))
            for split, idx in table_parts.items():
                gen = TaskGenerator(sub_table(table, split, idx), seed,
                                    rows or (MIN_ROWS, MAX_ROWS),
                                    explicit_only=holdout == "entities")
                n = want if split == "train" or holdout == "domains" else \
                    max(1, round(want * holdout_fraction / (1 - holdout_fraction)))
                for sel, cols, query, info in gen.generate(n):
                    task = gen.to_task("", sel, cols, query, {
                        **info, "world": name, "split": split, "source_table": table.id,
                        "group": table.group, "row_urls": [urls[idx[i]] for i in sel.rows]})
                    if split == "train" and isolate_cells and any(
                            norm_text(c) in test_keys for row in task.gold.rows for c in row):
                        dropped_for_isolation += 1
                        continue
                    tasks[split].append(task)
        for page in tqdm(other_pages, desc=f"world {name}: other pages", unit="page",
                         disable=not progress):
            add(page)
        store.close()
        for split, items in tasks.items():
            tasks[split] = [replace(t, instance_id=f"{name}-{split}-{i:05d}")
                            for i, t in enumerate(items)]
            write_tasks(tmp, split, tasks[split])
        t_pages = time.perf_counter() - t0

        docs = DocStore(tmp / "corpus")
        answer = check_answerability(docs, [t for ts in tasks.values() for t in ts])
        index_seconds = index_engines(docs, tmp, engines, name, progress)
        recall = {e: recall_at_k(docs, open_engine(e, tmp / "index" / e),
                                 [t for ts in tasks.values() for t in ts], k=3,
                                 sample=recall_sample, seed=seed) for e in engines}
        docs.close()
        t_fig = time.perf_counter()
        figures = _figures(tmp, tasks, seed, small=len(docs) < 20_000) \
            if "tantivy" in engines else {}
        info = {
            "name": name, "builder_version": BUILDER_VERSION, "seed": seed,
            "world_version": 1, "tier": "easy",
            "engines": list(engines), "default_engine": engines[0],
            "holdout": holdout,
            **({"holdout_fraction": holdout_fraction} if holdout == "entities" else {}),
            "splits": {
                split: {
                    "tasks": len(items),
                    "tables": sorted({t.id for t, p in zip(tables, parts) if split in p})
                    if len(tables) <= 50 else sum(1 for p in parts if split in p),
                    **({"tasks_by_table": dict(Counter(t.meta["source_table"] for t in items))}
                       if len(tables) <= 50 else {}),
                    "entities": sum(len(p.get(split, ())) for p in parts),
                } for split, items in tasks.items()},
            "counts": {"pages": sum(kinds.values()), "pages_by_kind": kinds,
                       "entities": sum(len(t.rows) for t in tables), "source_tables": len(tables),
                       "tasks": sum(len(v) for v in tasks.values()),
                       "tasks_dropped_for_isolation": dropped_for_isolation},
            "isolation": {"test_entity_rows_dropped_from_train": dropped_rows,
                          "train_tasks_with_test_names_dropped": dropped_for_isolation,
                          "checked": "keys and every cell" if isolate_cells else "keys"},
            "answerability": answer, "recall_at_3": recall, "figures": figures,
            "build": build_cost(t0, t_pages, index_seconds, t_fig),
            **(card or {}),
        }
        publish(tmp, out_dir, info, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _figures(world: Path, tasks: dict[str, list[Task]], seed: int, small: bool
             ) -> dict[str, Any]:
    """The card's task and shortcut figures (:mod:`wideseek_env.worlds.stats`), per split, and
    WideSearch's task figures beside them."""
    from wideseek_env.worlds.sources_hybridqa import shared_dir
    from wideseek_env.worlds.stats import shortcut_figures, task_figures, widesearch_figures

    n = {"cell_sample": 300, "snippet_sample": 100, "task_sample": 60} if small else {}
    ws = widesearch_figures(shared_dir(), seed=seed)
    return {"tasks": {s: task_figures(ts, seed=seed) for s, ts in tasks.items()},
            "shortcuts": {s: shortcut_figures(world, ts, seed=seed, **n)
                          for s, ts in tasks.items() if ts},
            "widesearch": ws if ws is not None else "not available (../shared/widesearch "
            "missing at build time)"}


def check_answerability(store: DocStore, tasks: Sequence[Task]) -> dict[str, Any]:
    """Prove every gold cell is stated on the entity page of its row (cell text found in the
    page text, case and white space aside). Returns rates and the first few failures."""
    cells = found = tasks_ok = 0
    failures: list[dict[str, str]] = []
    for task in tasks:
        ok = True
        for row, url in zip(task.gold.rows, task.meta["row_urls"]):
            page = store.by_url(url)
            text = norm_text(f"{page.title}\n{page.text}") if page else ""
            for col, cell in zip(task.gold.columns, row):
                cells += 1
                if norm_text(cell) in text:
                    found += 1
                else:
                    ok = False
                    if len(failures) < 20:
                        failures.append({"task": task.instance_id, "url": url, "column": col,
                                         "cell": cell})
        tasks_ok += ok
    return {"cells": cells, "cells_found": found,
            "cell_rate": round(found / cells, 6) if cells else 1.0,
            "tasks": len(tasks), "tasks_fully_answerable": tasks_ok,
            "task_rate": round(tasks_ok / len(tasks), 6) if tasks else 1.0,
            "failures": failures}


def recall_at_k(store: DocStore, engine: Any, tasks: Sequence[Task], *, k: int = 3,
                sample: int | None = None, seed: int = 0,
                query_of: Callable[[str], str] = lambda name: name) -> dict[str, Any]:
    """For task rows (distinct entity pages), is the row's page in the top ``k`` when searching
    for the entity's name (``recall``)? ``recall_same_name`` also counts a hit on another entity
    page of the same name (HybridQA has one row page per table an entity appears in).
    ``sample`` caps how many distinct pages are tried (seeded)."""
    import random

    pairs = sorted({(url, row[0]) for t in tasks for row, url in zip(t.gold.rows,
                                                                     t.meta["row_urls"])})
    if sample is not None and len(pairs) > sample:
        pairs = random.Random(f"{seed}:recall").sample(pairs, sample)
    exact = same_name = 0
    batch = 64
    misses: list[str] = []
    for j in range(0, len(pairs), batch):
        chunk = pairs[j: j + batch]
        ranked = engine.rank([query_of(name) for _, name in chunk], k)
        for (url, name), hits in zip(chunk, ranked):
            target = store.ordinal(url)
            if any(o == target for o, _ in hits):
                exact += 1
                same_name += 1
                continue
            if any(norm_text(store.get(o).entity) == norm_text(name) for o, _ in hits):
                same_name += 1
            elif len(misses) < 10:
                misses.append(name)
    n = len(pairs)
    return {"k": k, "queries": n, "recall": round(exact / n, 4) if n else 1.0,
            "recall_same_name": round(same_name / n, 4) if n else 1.0, "example_misses": misses}
