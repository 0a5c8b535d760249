"""Task records in WideSearch's shape, plus loaders and a writer.

A :class:`Task` is what every other part of the project passes around: the env poses its
``query``, the scorer compares an answer with its ``gold`` table using its ``evaluation``
(``unique_columns``, ``required`` and the per-column ``eval_pipeline``).

Column names inside ``evaluation`` are *normalised* the way WideSearch does it (lower-case, spaces
removed, see :func:`norm_column`); the gold table keeps the human-readable header it was read with.

File layouts:

* WideSearch (:func:`load_widesearch`, :func:`write_widesearch`): a JSONL file with
  ``instance_id``, ``query``, ``language`` and ``evaluation`` (a JSON *string* holding
  ``unique_columns``, ``required`` and ``eval_pipeline``), plus one gold CSV per task,
  ``<gold_dir>/<instance_id>.csv`` (UTF-8, optionally with a BOM, quoted cells may span lines,
  columns beyond the required ones are ignored). Gold cells are kept as raw strings; the scorer
  reads them the way the official evaluator's pandas does.
* WideSeek-R1 training data (:func:`load_r1`): JSON or JSONL records with ``question``, ``answer``
  (a markdown table), ``unique_columns`` and optionally ``evaluation`` (string or object),
  ``instance_id`` and ``language``. Without an ``evaluation``, every column of the answer table
  is required, key columns use ``norm_str`` + ``exact_match`` and the others ``norm_str`` +
  ``llm_judge`` with :data:`DEFAULT_JUDGE_CRITERION` (normalised exact match without a judge).

Every malformed input raises :class:`TaskFormatError` naming the file, the line and the field.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_JUDGE_CRITERION",
    "ColumnEval",
    "GoldTable",
    "Task",
    "TaskFormatError",
    "load_r1",
    "load_tasks",
    "load_widesearch",
    "norm_column",
    "write_widesearch",
]

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


# --------------------------------------------------------------------------- evaluation


def _check_names(names: Any, path: str, line: int | None, fld: str) -> tuple[str, ...]:
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise TaskFormatError(
            path, line, fld, f"expected a non-empty list of strings, got {names!r}"
        )
    for n in names:
        if norm_column(n) != n:
            raise TaskFormatError(
                path, line, fld, f"column {n!r} is not normalised (expected {norm_column(n)!r})"
            )
    if len(set(names)) != len(names):
        raise TaskFormatError(path, line, fld, f"duplicate column names in {names!r}")
    return tuple(names)


def _column_eval(spec: Any, path: str, line: int | None, col: str) -> ColumnEval:
    fld = f"evaluation.eval_pipeline.{col}"
    if not isinstance(spec, Mapping):
        raise TaskFormatError(path, line, fld, f"expected an object, got {spec!r}")
    pre = spec.get("preprocess", [])
    met = spec.get("metric", [])
    if not isinstance(pre, list) or not all(p in PREPROCESS_STEPS for p in pre):
        raise TaskFormatError(
            path,
            line,
            fld + ".preprocess",
            f"unknown step in {pre!r} (known: {sorted(PREPROCESS_STEPS)})",
        )
    if not isinstance(met, list) or not met or not all(m in METRIC_NAMES for m in met):
        raise TaskFormatError(
            path,
            line,
            fld + ".metric",
            f"expected metrics from {sorted(METRIC_NAMES)}, got {met!r}",
        )
    criterion = spec.get("criterion")
    if "number_near" in met:
        if isinstance(criterion, bool) or not isinstance(criterion, (int, float)):
            raise TaskFormatError(
                path,
                line,
                fld + ".criterion",
                f"number_near needs a numeric tolerance, got {criterion!r}",
            )
        if not math.isfinite(criterion) or criterion < 0:
            raise TaskFormatError(path, line, fld + ".criterion", f"bad tolerance {criterion!r}")
        criterion = float(criterion)
    elif "set_match" in met and criterion is not None:
        if isinstance(criterion, bool) or not isinstance(criterion, (int, float)) or not (
            0 <= criterion <= 1
        ):
            raise TaskFormatError(
                path, line, fld + ".criterion",
                f"set_match takes no criterion or a minimum overlap in [0, 1], got {criterion!r}",
            )  # fmt: skip
        criterion = float(criterion)
    elif criterion is not None and not isinstance(criterion, str):
        raise TaskFormatError(
            path, line, fld + ".criterion", f"expected a string, got {criterion!r}"
        )
    return ColumnEval(tuple(pre), tuple(met), criterion)


def _default_eval(col: str, is_key: bool) -> ColumnEval:
    if is_key:
        return ColumnEval(("norm_str",), ("exact_match",), None)
    return ColumnEval(("norm_str",), ("llm_judge",), DEFAULT_JUDGE_CRITERION)


def parse_evaluation(
    evaluation: Any,
    path: str,
    line: int | None,
    default_required: Sequence[str] | None = None,
    default_unique: Any = None,
) -> tuple[tuple[str, ...], tuple[str, ...], dict[str, ColumnEval]]:
    """Validate an ``evaluation`` object (or JSON string): ``(unique, required, pipeline)``.

    With ``default_required`` (the R1 layout), missing ``required``/``unique_columns``/pipeline
    entries are filled in; otherwise all three must be present.
    """
    if isinstance(evaluation, str):
        try:
            evaluation = json.loads(evaluation)
        except json.JSONDecodeError as exc:
            raise TaskFormatError(path, line, "evaluation", f"invalid JSON string: {exc}") from None
    if evaluation is None and default_required is not None:
        evaluation = {}
    if not isinstance(evaluation, Mapping):
        raise TaskFormatError(path, line, "evaluation", f"expected an object, got {evaluation!r}")
    fill = default_required is not None
    required_raw = evaluation.get("required", list(default_required) if fill else None)
    unique_raw = evaluation.get("unique_columns", default_unique if fill else None)
    required = _check_names(required_raw, path, line, "evaluation.required")
    unique = _check_names(unique_raw, path, line, "evaluation.unique_columns")
    missing = [u for u in unique if u not in required]
    if missing:
        raise TaskFormatError(path, line, "evaluation.unique_columns", f"{missing} not in required")
    raw_pipeline = evaluation.get("eval_pipeline", {} if fill else None)
    if not isinstance(raw_pipeline, Mapping):
        raise TaskFormatError(
            path, line, "evaluation.eval_pipeline", f"expected an object, got {raw_pipeline!r}"
        )
    pipeline: dict[str, ColumnEval] = {}
    for col, spec in raw_pipeline.items():
        if col not in required:
            raise TaskFormatError(
                path, line, f"evaluation.eval_pipeline.{col}", "column is not in required"
            )
        pipeline[col] = _column_eval(spec, path, line, col)
    for col in required:
        if col not in pipeline:
            if fill:
                pipeline[col] = _default_eval(col, col in unique)
            elif col not in unique:
                raise TaskFormatError(
                    path,
                    line,
                    f"evaluation.eval_pipeline.{col}",
                    "required column has no pipeline entry",
                )
    return unique, required, pipeline


def evaluation_dict(task: Task) -> dict[str, Any]:
    """The ``evaluation`` object of ``task`` in WideSearch's JSON shape."""
    pipeline = {}
    for col, spec in task.eval_pipeline.items():
        entry: dict[str, Any] = {"preprocess": list(spec.preprocess), "metric": list(spec.metric)}
        if spec.criterion is not None:
            entry["criterion"] = spec.criterion
        pipeline[col] = entry
    return {
        "unique_columns": list(task.unique_columns),
        "required": list(task.required),
        "eval_pipeline": pipeline,
    }


# --------------------------------------------------------------------------- gold tables


def read_gold_csv(path: str | os.PathLike[str]) -> GoldTable:
    """Read a gold CSV (UTF-8, BOM allowed) into raw cell strings, as pandas tokenizes it."""
    from .scoring.pdtable import TableParseError, tokenize

    try:
        text = Path(path).read_bytes().decode("utf-8")  # keep "\r\n" inside cells, as pandas does
    except UnicodeDecodeError as exc:
        raise TaskFormatError(path, None, None, f"not UTF-8: {exc}") from None
    text = text.removeprefix("\ufeff")
    try:
        records, starts = tokenize(text, ",")
    except TableParseError as exc:
        raise TaskFormatError(path, None, None, str(exc)) from None
    if not records:
        raise TaskFormatError(path, 1, None, "empty gold table (no header)")
    header = tuple(records[0])
    rows = []
    for record, line in zip(records[1:], starts[1:]):
        if len(record) > len(header):
            raise TaskFormatError(
                path, line, None, f"row has {len(record)} fields, the header has {len(header)}"
            )
        rows.append(tuple(record) + ("",) * (len(header) - len(record)))
    return GoldTable(header, tuple(rows))


def _check_gold(gold: GoldTable, required: Sequence[str], path: str, line: int | None) -> None:
    from .scoring.gold import gold_column_index

    index = gold_column_index(gold.columns)
    missing = [c for c in required if c not in index]
    if missing:
        raise TaskFormatError(
            path,
            line,
            "evaluation.required",
            f"columns {missing} not in the gold header {list(gold.columns)}",
        )


def _write_gold_csv(gold: GoldTable, path: Path) -> None:
    buf = io.StringIO()
    minimal = csv.writer(buf, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    quote_all = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    for row in (gold.columns, *gold.rows):
        # A one-column row of blanks would be a blank line, which readers skip: quote it.
        writer = quote_all if len(row) == 1 and not row[0].strip(" \t") else minimal
        writer.writerow(row)
    path.write_text("\ufeff" + buf.getvalue(), encoding="utf-8", newline="")


# --------------------------------------------------------------------------- loaders


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
        _check_gold(gold, required, str(gold_path), 1)
        meta = record.get("meta", {})
        if not isinstance(meta, Mapping):
            raise TaskFormatError(path, line, "meta", f"expected an object, got {meta!r}")
        tasks.append(Task(iid, query, language, unique, required, pipeline, gold, dict(meta)))
    return tasks


def load_r1(path: str | os.PathLike[str]) -> list[Task]:
    """Load WideSeek-R1 training records (``question``, markdown ``answer``, ``unique_columns``)."""
    from .scoring.extract import read_markdown_table
    from .scoring.pdtable import TableParseError

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
        _check_gold(gold, required, str(src), line)
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
        from .taskfiles import load_task_file

        return load_task_file(src, gold_dir)
    records = _read_records(src)
    if not records:
        raise TaskFormatError(src, None, None, "no records")
    line, first = records[0]
    if isinstance(first, Mapping) and "answer" in first:  # inline gold: WideSeek-R1's layouts
        from .taskfiles import load_task_file

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
        _write_gold_csv(task.gold, gold_root / f"{task.instance_id}.csv")
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
