"""The files of a world folder and how tasks are written to and read from it.

::

    <world>/world.json                 the card: sources, licences, counts, splits, measurements
    <world>/corpus/                    the page store (wideseek_env.search.docstore)
    <world>/index/<engine>/            one on-disk index per engine built
    <world>/tasks/<split>.jsonl        tasks in WideSearch's layout (instance_id, query, language,
                                       evaluation as a JSON string, plus our ``meta``: source
                                       table, selection, filter, row URLs)
    <world>/tasks/<split>_gold/*.csv   gold tables, UTF-8 with BOM, one per task

Reading and writing go through :func:`wideseek_env.tasks.load_widesearch` and
:func:`wideseek_env.tasks.write_widesearch`, so a world's task files are WideSearch files.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from wideseek_env.tasks import Task, load_widesearch, write_widesearch

CARD_FILE = "world.json"


def task_paths(world: Path, split: str) -> tuple[Path, Path]:
    """The JSONL file and gold folder of one split."""
    return world / "tasks" / f"{split}.jsonl", world / "tasks" / f"{split}_gold"


def write_tasks(world: Path, split: str, tasks: Sequence[Task]) -> None:
    """Write one split's tasks and gold tables into ``world``."""
    jsonl, gold = task_paths(world, split)
    write_widesearch(tasks, jsonl, gold)


def read_tasks(world: Path, split: str) -> list[Task]:
    """Read one split's tasks (with ``Task.meta``)."""
    jsonl, gold = task_paths(world, split)
    if not jsonl.is_file():
        raise FileNotFoundError(f"world {world} has no tasks for split {split!r} ({jsonl})")
    return load_widesearch(jsonl, gold)


def content_digest(world: Path) -> str:
    """SHA-256 over the world's page store and task files (names and bytes): equal for two
    builds of the same world; the card and the index (which records build times) are left out."""
    import hashlib

    h = hashlib.sha256()
    for p in sorted(world.rglob("*")):
        if p.is_file() and p.name != CARD_FILE and "index" not in p.relative_to(world).parts:
            h.update(str(p.relative_to(world)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()
