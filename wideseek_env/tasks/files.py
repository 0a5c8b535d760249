"""Task files: the WideSearch and WideSeek-R1 loaders and the WideSearch writer (the layouts
are in the package docstring, :mod:`wideseek_env.tasks`). Every malformed input raises
:class:`~wideseek_env.tasks.records.TaskFormatError` naming the file, the line and the field.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from wideseek_env.scoring.extract import read_markdown_table
from wideseek_env.scoring.pdtable import TableParseError
from wideseek_env.tasks.evaluation import evaluation_dict, parse_evaluation
from wideseek_env.tasks.gold_csv import check_gold, read_gold_csv, write_gold_csv
from wideseek_env.tasks.records import GoldTable, Task, TaskFormatError, norm_column


def _read_records(path: Path) -> list[tuple[int, Any]]:
    """(line number, record) pairs from a JSONL file, or from a JSON list/object."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TaskFormatError(path, exc.lineno, None, f"invalid JSON: {exc.msg}") from None
        items = data if isinstance(data, list) else [data]
        return [(None, item) for item in items]  # type: ignore[misc]
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise TaskFormatError(path, number, None, f"invalid JSON: {exc.msg}") from None
    return out


def _str_field(record: Mapping[str, Any], key: str, path: Path, line: int | None) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value:
        raise TaskFormatError(path, line, key, f"expected a non-empty string, got {value!r}")
    return value


def load_widesearch(
    jsonl_path: str | os.PathLike[str], gold_dir: str | os.PathLike[str]
) -> list[Task]:
    """Load tasks in the WideSearch layout (``widesearch.jsonl`` + ``widesearch_gold/``)."""
    path = Path(jsonl_path)
    gold_root = Path(gold_dir)
    tasks: list[Task] = []
    seen: set[str] = set()
    for line, record in _read_records(path):
        if not isinstance(record, Mapping):
            raise TaskFormatError(path, line, None, f"expected a JSON object, got {record!r}")
        iid = _str_field(record, "instance_id", path, line)
        if iid in seen:
            raise TaskFormatError(path, line, "instance_id", f"duplicate instance_id {iid!r}")
        seen.add(iid)
        query = _str_field(record, "query", path, line)
        language = record.get("language", "en")
        if not isinstance(language, str):
            raise TaskFormatError(path, line, "language", f"expected a string, got {language!r}")
        if "evaluation" not in record:
            raise TaskFormatError(path, line, "evaluation", "missing")
        unique, required, pipeline = parse_evaluation(record["evaluation"], str(path), line)
        gold_path = gold_root / f"{iid}.csv"
        if not gold_path.is_file():
            raise TaskFormatError(path, line, "instance_id", f"no gold table at {gold_path}")
        gold = read_gold_csv(gold_path)
        check_gold(gold, required, str(gold_path), 1)
        meta = record.get("meta", {})
        if not isinstance(meta, Mapping):
            raise TaskFormatError(path, line, "meta", f"expected an object, got {meta!r}")
        tasks.append(Task(iid, query, language, unique, required, pipeline, gold, dict(meta)))
    return tasks


def load_r1(path: str | os.PathLike[str]) -> list[Task]:
    """Load WideSeek-R1 training records (``question``, markdown ``answer``, ``unique_columns``)."""
    src = Path(path)
    tasks = []
    seen: set[str] = set()
    for k, (line, record) in enumerate(_read_records(src)):
        if not isinstance(record, Mapping):
            raise TaskFormatError(src, line, None, f"expected a JSON object, got {record!r}")
        question = _str_field(record, "question", src, line)
        answer = _str_field(record, "answer", src, line)
        try:
            header, rows = read_markdown_table(answer)
        except TableParseError as exc:
            raise TaskFormatError(src, line, "answer", f"not a markdown table: {exc}") from None
        iid = str(record.get("instance_id", f"{src.stem}_{k:05d}"))
        if iid in seen:
            raise TaskFormatError(src, line, "instance_id", f"duplicate instance_id {iid!r}")
        seen.add(iid)
        language = record.get("language") or ("zh" if "zh" in iid else "en")
        unique_raw = record.get("unique_columns")
        if isinstance(unique_raw, list):
            unique_raw = [norm_column(u) if isinstance(u, str) else u for u in unique_raw]
        unique, required, pipeline = parse_evaluation(
            record.get("evaluation"), str(src), line,
            default_required=[norm_column(h) for h in header], default_unique=unique_raw,
        )  # fmt: skip
        gold = GoldTable(tuple(header), tuple(tuple(r) for r in rows))
        check_gold(gold, required, str(src), line)
        meta = {"source": "wideseek-r1"}
        tasks.append(Task(iid, question, str(language), unique, required, pipeline, gold, meta))
    return tasks


def load_tasks(
    path: str | os.PathLike[str], gold_dir: str | os.PathLike[str] | None = None
) -> list[Task]:
    """Load tasks from ``path``, detecting the layout from its first record.

    WideSearch records (``evaluation`` + ``query``) need gold CSVs: ``gold_dir``, or else
    ``<stem>_gold/`` or ``gold/`` next to the file. Records with an inline ``answer`` and
    gzipped files are WideSeek-R1's layouts (tables and QA tasks), read by
    :func:`wideseek_env.taskfiles.load_task_file`.
    """
    src = Path(path)
    if not src.is_file():
        raise TaskFormatError(src, None, None, "no such task file")
    if src.suffix == ".gz":
        from wideseek_env.taskfiles import load_task_file

        return load_task_file(src, gold_dir)
    records = _read_records(src)
    if not records:
        raise TaskFormatError(src, None, None, "no records")
    line, first = records[0]
    if isinstance(first, Mapping) and "answer" in first:  # inline gold: WideSeek-R1's layouts
        from wideseek_env.taskfiles import load_task_file

        return load_task_file(src, gold_dir)
    if isinstance(first, Mapping) and "query" in first and "evaluation" in first:
        if gold_dir is None:
            candidates = [src.parent / f"{src.stem}_gold", src.parent / "gold"]
            found = [c for c in candidates if c.is_dir()]
            if not found:
                raise TaskFormatError(
                    src,
                    None,
                    None,
                    f"gold_dir not given and none of {[str(c) for c in candidates]} exists",
                )
            gold_dir = found[0]
        return load_widesearch(src, gold_dir)
    raise TaskFormatError(
        src,
        line,
        None,
        "unknown layout: expected WideSearch (query, evaluation) or R1 (question, answer) fields",
    )


def write_widesearch(
    tasks: Iterable[Task], jsonl_path: str | os.PathLike[str], gold_dir: str | os.PathLike[str]
) -> None:
    """Write tasks in the WideSearch layout; :func:`load_widesearch` reads them back unchanged.

    ``meta``, when not empty, is written as an extra ``meta`` field (the official loader does not
    expect it).
    """
    path = Path(jsonl_path)
    gold_root = Path(gold_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    gold_root.mkdir(parents=True, exist_ok=True)
    lines = []
    for task in tasks:
        record: dict[str, Any] = {
            "instance_id": task.instance_id,
            "query": task.query,
            "evaluation": json.dumps(evaluation_dict(task), ensure_ascii=False),
            "language": task.language,
        }
        if task.meta:
            record["meta"] = dict(task.meta)
        lines.append(json.dumps(record, ensure_ascii=False))
        write_gold_csv(task.gold, gold_root / f"{task.instance_id}.csv")
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
