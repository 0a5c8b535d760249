"""The ``evaluation`` object of a task (``unique_columns``, ``required``, ``eval_pipeline``):
validated on the way in (:func:`parse_evaluation`), written back in WideSearch's shape
(:func:`evaluation_dict`). Every mistake is a :class:`TaskFormatError` naming file, line and field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from wideseek_env.tasks.records import (
    DEFAULT_JUDGE_CRITERION,
    METRIC_NAMES,
    PREPROCESS_STEPS,
    ColumnEval,
    Task,
    TaskFormatError,
    norm_column,
)


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
