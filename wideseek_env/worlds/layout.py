"""The files of a world folder and how tasks are written to and read from it.

::

    <world>/world.json                 the card: sources, licences, counts, splits, measurements
    <world>/corpus/                    the page store (wideseek_env.search.docstore)
    <world>/index/<engine>/            one on-disk index per engine built
    <world>/tasks/<split>.jsonl        tasks in WideSearch's layout (instance_id, query, language,
                                       evaluation as a JSON string)
    <world>/tasks/<split>_gold/*.csv   gold tables, UTF-8 with BOM, one per task
    <world>/tasks/<split>_meta.jsonl   per task: source table, selection, filter, row URLs

The WideSearch files are written and read by :func:`wideseek_env.tasks.write_widesearch` and
:func:`wideseek_env.tasks.load_widesearch` when the installed ``tasks`` module has them; a minimal
equivalent here keeps worlds usable until then (same layout, so the files are interchangeable).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from wideseek_env.tasks import ColumnEval, GoldTable, Task

CARD_FILE = "world.json"
SPLIT_FILES = {"train": "train", "test": "test"}


def _paths(world: Path, split: str) -> tuple[Path, Path, Path]:
    base = world / "tasks"
    return base / f"{split}.jsonl", base / f"{split}_gold", base / f"{split}_meta.jsonl"


def _write_widesearch(tasks: Sequence[Task], jsonl_path: Path, gold_dir: Path) -> None:
    try:
        from wideseek_env.tasks import write_widesearch  # type: ignore[attr-defined]
    except ImportError:
        write_widesearch = None
    if write_widesearch is not None:
        write_widesearch(tasks, jsonl_path, gold_dir)
        return
    gold_dir.mkdir(parents=True, exist_ok=True)
    with open(jsonl_path, "w", encoding="utf-8") as f:
        for t in tasks:
            evaluation = {
                "unique_columns": list(t.unique_columns), "required": list(t.required),
                "eval_pipeline": {
                    col: {"preprocess": list(ev.preprocess), "metric": list(ev.metric),
                          **({"criterion": ev.criterion} if ev.criterion is not None else {})}
                    for col, ev in t.eval_pipeline.items()},
            }
            f.write(json.dumps({"instance_id": t.instance_id, "query": t.query,
                                "evaluation": json.dumps(evaluation, ensure_ascii=False),
                                "language": t.language}, ensure_ascii=False) + "\n")
            with open(gold_dir / f"{t.instance_id}.csv", "w", encoding="utf-8-sig",
                      newline="") as g:
                w = csv.writer(g)
                w.writerow(t.gold.columns)
                w.writerows(t.gold.rows)


def _load_widesearch(jsonl_path: Path, gold_dir: Path) -> list[Task]:
    try:
        from wideseek_env.tasks import load_widesearch  # type: ignore[attr-defined]
    except ImportError:
        load_widesearch = None
    if load_widesearch is not None:
        return list(load_widesearch(jsonl_path, gold_dir))
    tasks = []
    with open(jsonl_path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            try:
                d = json.loads(line)
                ev = json.loads(d["evaluation"])
            except (json.JSONDecodeError, KeyError) as e:
                raise ValueError(f"{jsonl_path}:{lineno}: bad task line ({e})") from e
            with open(gold_dir / f"{d['instance_id']}.csv", encoding="utf-8-sig",
                      newline="") as g:
                rows = list(csv.reader(g))
            pipeline = {c: ColumnEval(tuple(p["preprocess"]), tuple(p["metric"]),
                                      p.get("criterion")) for c, p in ev["eval_pipeline"].items()}
            tasks.append(Task(instance_id=d["instance_id"], query=d["query"],
                              language=d.get("language", "en"),
                              unique_columns=tuple(ev["unique_columns"]),
                              required=tuple(ev["required"]), eval_pipeline=pipeline,
                              gold=GoldTable(tuple(rows[0]), tuple(tuple(r) for r in rows[1:]))))
    return tasks


def write_tasks(world: Path, split: str, tasks: Sequence[Task]) -> None:
    """Write one split's tasks, gold tables and metadata into ``world``."""
    jsonl, gold, meta = _paths(world, split)
    jsonl.parent.mkdir(parents=True, exist_ok=True)
    _write_widesearch(tasks, jsonl, gold)
    with open(meta, "w", encoding="utf-8") as f:
        for t in tasks:
            f.write(json.dumps({"instance_id": t.instance_id, **t.meta}, ensure_ascii=False)
                    + "\n")


def read_tasks(world: Path, split: str) -> list[Task]:
    """Read one split's tasks with their metadata (``Task.meta``)."""
    jsonl, gold, meta_path = _paths(world, split)
    if not jsonl.is_file():
        raise FileNotFoundError(f"world {world} has no tasks for split {split!r} ({jsonl})")
    tasks = _load_widesearch(jsonl, gold)
    metas: dict[str, dict] = {}
    if meta_path.is_file():
        with open(meta_path, encoding="utf-8") as f:
            for line in f:
                d = json.loads(line)
                metas[d.pop("instance_id")] = d
    return [replace(t, meta={**t.meta, **metas.get(t.instance_id, {})}) for t in tasks]
