"""Task files from anywhere: WideSearch's layout and every layout of WideSeek-R1's released data.

:func:`load_task_file` reads JSON, JSONL, and either gzipped (``.json.gz``, ``.jsonl.gz``) and
decides each record's kind from the record itself:

- **test** records (``WideSeek-R1-test-data``): ``query``, ``answer`` (the gold table in
  markdown, inline), ``evaluation`` (object or JSON string), ``instance_id``, ``language``;
- **width** records (``width_*``): ``question``, ``answer`` (markdown table),
  ``unique_columns``, ``is_markdown: true``, ``instance_id``, optionally ``evaluation``;
- **depth** records (``depth_*``, and QA sets such as ASearcher's): ``question``, ``answer``
  (a string or a list of accepted answers), ``is_markdown: false``;
- **hybrid** files mix width and depth records, each with its own ``is_markdown``;
- HybridQA's question files (``question_id``, ``question``, ``table_id``, ``answer``) read as
  depth records (``meta["table_id"]`` kept);
- **WideSearch** files (``query`` and ``evaluation`` without an inline ``answer``) go to
  :func:`wideseek_env.tasks.load_widesearch` with their gold CSV folder (``gold_dir``, else
  ``<stem>_gold/`` or ``gold/`` next to the file); such records cannot be mixed with inline ones.

A record's kind: ``is_markdown`` when present (it must be a boolean); otherwise a list answer is
QA and a string answer is a table when it holds a markdown alignment row (``|---|``), QA when it
does not. Column names in ``unique_columns`` and ``evaluation`` (``required``, ``unique_columns``,
``eval_pipeline`` keys) are normalised as the reference does it (lower case, spaces removed), so
``"Required": ["Country Name"]`` reads as ``countryname``; two names that collide after that are
an error. Without ``evaluation.required`` every column of the answer table is required; columns
without a pipeline entry are scored as :func:`wideseek_env.tasks.load_r1` scores them.

Instance ids come from ``instance_id`` (else ``id``, ``question_id``, else ``<stem>_<index>``);
a repeated id is an error. Every malformed record raises :class:`~wideseek_env.tasks.
TaskFormatError` naming the file, the line (JSONL) or the record index (JSON) and the field.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wideseek_env.qa import QATask, qa_task
from wideseek_env.tasks import GoldTable, Task, TaskFormatError, norm_column, parse_evaluation

__all__ = ["load_task_file", "record_kind", "split_by_kind"]

_ALIGN_ROW = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$", re.MULTILINE)


def _open_text(path: Path) -> str:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8") as f:
                return f.read()
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TaskFormatError(path, None, None, f"not UTF-8: {exc}") from None
    except (OSError, EOFError) as exc:
        raise TaskFormatError(path, None, None, f"cannot be read: {exc}") from None


def _records(path: Path) -> list[tuple[int | None, str, Any]]:
    """(line, field prefix, record) of a JSON or JSONL file (gzipped or not)."""
    text = _open_text(path)
    json_file = path.name.endswith((".json", ".json.gz"))
    if json_file:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TaskFormatError(path, exc.lineno, None, f"invalid JSON: {exc.msg}") from None
        items = data if isinstance(data, list) else [data]
        return [(None, f"[{k}].", item) for k, item in enumerate(items)]
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append((number, "", json.loads(line)))
        except json.JSONDecodeError as exc:
            raise TaskFormatError(path, number, None, f"invalid JSON: {exc.msg}") from None
    return out


def record_kind(record: Mapping[str, Any], path: Path | str = "", line: int | None = None,
                prefix: str = "") -> str:
    """``table``, ``qa`` or ``widesearch`` (gold in a CSV file) for one record."""
    if "answer" not in record:
        if "query" in record and "evaluation" in record:
            return "widesearch"
        raise TaskFormatError(path, line, prefix + "answer", "missing (no inline answer and not a "
                              "WideSearch record with query and evaluation)")
    flag = record.get("is_markdown")
    if flag is not None:
        if not isinstance(flag, bool):
            raise TaskFormatError(path, line, prefix + "is_markdown",
                                  f"expected true or false, got {flag!r}")
        return "table" if flag else "qa"
    answer = record["answer"]
    if isinstance(answer, str) and _ALIGN_ROW.search(answer):
        return "table"
    return "qa"


def _text(record: Mapping[str, Any], keys: tuple[str, ...], path: Path, line: int | None,
          prefix: str) -> str:
    for key in keys:
        if key in record:
            value = record[key]
            if not isinstance(value, str) or not value.strip():
                raise TaskFormatError(path, line, prefix + key,
                                      f"expected a non-empty string, got {value!r}")
            return value
    raise TaskFormatError(path, line, prefix + keys[0], "missing")


def _names(value: Any, path: Path, line: int | None, fld: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TaskFormatError(path, line, fld, f"expected a list of column names, got {value!r}")
    out = [norm_column(v) for v in value]
    if len(set(out)) != len(out):
        raise TaskFormatError(path, line, fld, f"names collide once normalised: {value!r}")
    return out


def _normalised_evaluation(ev: Any, path: Path, line: int | None, prefix: str) -> Any:
    """``evaluation`` with its column names normalised (other problems: parse_evaluation's)."""
    if isinstance(ev, str):
        try:
            ev = json.loads(ev)
        except json.JSONDecodeError as exc:
            raise TaskFormatError(path, line, prefix + "evaluation",
                                  f"invalid JSON string: {exc}") from None
    if not isinstance(ev, Mapping):
        return ev
    out = dict(ev)
    for key in ("required", "unique_columns"):
        if key in out:
            out[key] = _names(out[key], path, line, f"{prefix}evaluation.{key}")
    pipe = out.get("eval_pipeline")
    if isinstance(pipe, Mapping):
        normed = {norm_column(k): v for k, v in pipe.items()}
        if len(normed) != len(pipe):
            raise TaskFormatError(path, line, prefix + "evaluation.eval_pipeline",
                                  "column names collide once normalised")
        out["eval_pipeline"] = normed
    return out


def _prefixed(exc: TaskFormatError, prefix: str) -> TaskFormatError:
    """``exc`` with ``prefix`` (a JSON record's index) before its field."""
    if not prefix:
        return exc
    where = exc.path if exc.line is None else f"{exc.path}:{exc.line}"
    what = f" field {exc.field!r}:" if exc.field else ""
    message = str(exc)[len(f"{where}:{what} "):]
    return TaskFormatError(exc.path, exc.line, prefix + (exc.field or ""), message)


def _language(record: Mapping[str, Any], iid: str, path: Path, line: int | None,
              prefix: str) -> str:
    lang = record.get("language")
    if lang is None:
        return "zh" if "zh" in iid else "en"
    if not isinstance(lang, str) or not lang:
        raise TaskFormatError(path, line, prefix + "language", f"expected a string, got {lang!r}")
    return lang


def _table_task(record: Mapping[str, Any], iid: str, path: Path, line: int | None,
                prefix: str) -> Task:
    from wideseek_env.scoring.extract import read_markdown_table
    from wideseek_env.scoring.gold import gold_column_index
    from wideseek_env.scoring.pdtable import TableParseError

    text = _text(record, ("query", "question"), path, line, prefix)
    answer = record["answer"]
    if not isinstance(answer, str):
        raise TaskFormatError(path, line, prefix + "answer",
                              f"a table task's answer must be a markdown table, got {answer!r}")
    try:
        header, rows = read_markdown_table(answer)
    except TableParseError as exc:
        raise TaskFormatError(path, line, prefix + "answer", f"not a markdown table: {exc}") \
            from None
    unique = record.get("unique_columns")
    if unique is not None:
        unique = _names(unique, path, line, prefix + "unique_columns")
    ev = _normalised_evaluation(record.get("evaluation"), path, line, prefix)
    if unique is None and not (isinstance(ev, Mapping) and "unique_columns" in ev):
        raise TaskFormatError(path, line, prefix + "unique_columns",
                              "missing (a table task needs its key columns)")
    try:
        uniq, required, pipeline = parse_evaluation(
            ev, str(path), line, default_required=[norm_column(h) for h in header],
            default_unique=unique)
    except TaskFormatError as exc:
        raise _prefixed(exc, prefix) from None
    gold = GoldTable(tuple(header), tuple(tuple(r) for r in rows))
    index = gold_column_index(gold.columns)
    missing = [c for c in required if c not in index]
    if missing:
        raise TaskFormatError(path, line, prefix + "evaluation.required",
                              f"columns {missing} not in the answer table's header {header}")
    meta = {"source": "wideseek-r1", "file": path.name}
    return Task(iid, text, _language(record, iid, path, line, prefix), uniq, required, pipeline,
                gold, meta)


def _qa(record: Mapping[str, Any], iid: str, path: Path, line: int | None,
        prefix: str) -> QATask:
    text = _text(record, ("question", "query"), path, line, prefix)
    raw = record["answer"]
    items = raw if isinstance(raw, list) else [raw]
    answers = []
    for k, a in enumerate(items):
        fld = prefix + (f"answer[{k}]" if isinstance(raw, list) else "answer")
        if isinstance(a, bool) or not isinstance(a, (str, int, float)) or not str(a).strip():
            raise TaskFormatError(path, line, fld, f"expected a non-empty string, got {a!r}")
        answers.append(str(a).strip())
    if not answers:
        raise TaskFormatError(path, line, prefix + "answer", "empty list of answers")
    meta: dict[str, Any] = {"source": "wideseek-r1" if "is_markdown" in record else "qa-file",
                            "file": path.name}
    if isinstance(record.get("table_id"), str):
        meta["table_id"] = record["table_id"]
    extra = record.get("meta")
    if isinstance(extra, Mapping):
        meta.update(extra)
    return qa_task(iid, text, answers, language=_language(record, iid, path, line, prefix),
                   meta=meta)


def _instance_id(record: Mapping[str, Any], index: int, stem: str) -> str:
    for key in ("instance_id", "id", "question_id"):
        value = record.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
            return str(value)
    return f"{stem}_{index:05d}"


def load_task_file(path: str | os.PathLike[str],
                   gold_dir: str | os.PathLike[str] | None = None) -> list[Task]:
    """Every task of a task file, table and QA alike (see the module docstring)."""
    src = Path(path)
    if not src.is_file():
        raise TaskFormatError(src, None, None, "no such task file")
    records = _records(src)
    if not records:
        raise TaskFormatError(src, None, None, "no records")
    kinds = []
    for line, prefix, record in records:
        if not isinstance(record, Mapping):
            raise TaskFormatError(src, line, prefix or None, f"expected a JSON object, got {record!r}")
        kinds.append(record_kind(record, src, line, prefix))
    if "widesearch" in kinds:
        if set(kinds) != {"widesearch"}:
            k = kinds.index("widesearch")
            raise TaskFormatError(src, records[k][0], records[k][1] + "answer",
                                  "missing: this file mixes WideSearch records (gold in CSV files) "
                                  "with records whose gold answer is inline")
        from wideseek_env.tasks import load_widesearch

        return load_widesearch(src, _gold_dir(src, gold_dir))
    stem = src.name.split(".")[0]
    tasks: list[Task] = []
    seen: set[str] = set()
    for index, ((line, prefix, record), kind) in enumerate(zip(records, kinds)):
        iid = _instance_id(record, index, stem)
        if iid in seen:
            raise TaskFormatError(src, line, prefix + "instance_id", f"duplicate instance_id {iid!r}")
        seen.add(iid)
        make = _table_task if kind == "table" else _qa
        tasks.append(make(record, iid, src, line, prefix))
    return tasks


def _gold_dir(src: Path, gold_dir: str | os.PathLike[str] | None) -> Path:
    if gold_dir is not None:
        return Path(gold_dir)
    stem = src.name.split(".")[0]
    candidates = [src.parent / f"{stem}_gold", src.parent / "gold"]
    for c in candidates:
        if c.is_dir():
            return c
    raise TaskFormatError(src, None, None, f"WideSearch records need their gold CSVs: gold_dir "
                          f"not given and none of {[str(c) for c in candidates]} exists")


def split_by_kind(tasks: list[Task]) -> tuple[list[Task], list[QATask]]:
    """``(table tasks, QA tasks)`` of ``tasks``, each in its original order."""
    qa = [t for t in tasks if isinstance(t, QATask)]
    return [t for t in tasks if not isinstance(t, QATask)], qa


def mix_tasks(table: list[Task], qa: list[Task], depth_share: float, seed: int = 0) -> list[Task]:
    """A hybrid task list whose share of QA tasks is ``depth_share`` (0..1): as many tasks as can
    be taken without repeating one, each kind drawn by a seeded shuffle, then interleaved in a
    seeded order (a trainer's task stream then meets both kinds in that ratio)."""
    import random

    if not 0.0 <= depth_share <= 1.0:
        raise ValueError(f"depth_share must be within [0, 1], got {depth_share!r}")
    if depth_share > 0 and not qa:
        raise ValueError("depth_share > 0 needs QA tasks, and there are none")
    if depth_share < 1 and not table:
        raise ValueError("depth_share < 1 needs table tasks, and there are none")
    if depth_share == 0:
        total = len(table)
    elif depth_share == 1:
        total = len(qa)
    else:
        total = int(min(len(table) / (1 - depth_share), len(qa) / depth_share))
    n_qa = round(total * depth_share)
    rng = random.Random(f"mix:{seed}")
    picked = rng.sample(table, total - n_qa) + rng.sample(qa, n_qa)
    rng.shuffle(picked)
    return picked
