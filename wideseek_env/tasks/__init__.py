"""Tasks in WideSearch's shape: records, the ``evaluation`` object, gold CSVs and task files.

A :class:`Task` is what every other part of the project passes around: the env poses its
``query``, the scorer compares an answer with its ``gold`` table using its ``evaluation``
(``unique_columns``, ``required`` and the per-column ``eval_pipeline``).

One module per concern, imported in this order (no cycles: :mod:`.records` imports nothing of the
project, and the scorer imports only it):

- :mod:`.records`: :class:`Task`, :class:`GoldTable`, :class:`ColumnEval`,
  :class:`TaskFormatError`, :func:`norm_column`;
- :mod:`.evaluation`: the ``evaluation`` object, validated and written back;
- :mod:`.gold_csv`: gold tables as CSV files;
- :mod:`.files`: the loaders (:func:`load_widesearch`, :func:`load_r1`, :func:`load_tasks`) and
  :func:`write_widesearch`.

Everything public is importable from here (``from wideseek_env.tasks import Task``).

File layouts:

* WideSearch (:func:`load_widesearch`, :func:`write_widesearch`): a JSONL file with
  ``instance_id``, ``query``, ``language`` and ``evaluation`` (a JSON *string* holding
  ``unique_columns``, ``required`` and ``eval_pipeline``), plus one gold CSV per task,
  ``<gold_dir>/<instance_id>.csv`` (UTF-8, optionally with a BOM, quoted cells may span lines,
  columns beyond the required ones are ignored; a row with fewer cells than the header is
  refused). Gold cells are kept as raw strings; the scorer reads them the way the official
  evaluator's pandas does.
* WideSeek-R1 training data (:func:`load_r1`): JSON or JSONL records with ``question``, ``answer``
  (a markdown table), ``unique_columns`` and optionally ``evaluation`` (string or object),
  ``instance_id`` and ``language``. Without an ``evaluation``, every column of the answer table
  is required, key columns use ``norm_str`` + ``exact_match`` and the others ``norm_str`` +
  ``llm_judge`` with :data:`DEFAULT_JUDGE_CRITERION` (normalised exact match without a judge).
"""

from typing import Any

from wideseek_env.tasks.evaluation import evaluation_dict, parse_evaluation
from wideseek_env.tasks.records import (
    DEFAULT_JUDGE_CRITERION,
    METRIC_NAMES,
    PREPROCESS_STEPS,
    ColumnEval,
    GoldTable,
    Task,
    TaskFormatError,
    norm_column,
)

# The file modules use the scorer's table reader, and the scorer uses the records: loading them
# on first use keeps `import wideseek_env.tasks.records` (what the scorer does) from importing
# the scorer back.
_LAZY = {name: "wideseek_env.tasks.files" for name in
         ("load_r1", "load_tasks", "load_widesearch", "write_widesearch")}
_LAZY.update({name: "wideseek_env.tasks.gold_csv" for name in
              ("check_gold", "read_gold_csv", "write_gold_csv")})


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'wideseek_env.tasks' has no attribute {name!r}")


__all__ = [
    "DEFAULT_JUDGE_CRITERION",
    "METRIC_NAMES",
    "PREPROCESS_STEPS",
    "ColumnEval",
    "GoldTable",
    "Task",
    "TaskFormatError",
    "check_gold",
    "evaluation_dict",
    "load_r1",
    "load_tasks",
    "load_widesearch",
    "norm_column",
    "parse_evaluation",
    "read_gold_csv",
    "write_gold_csv",
    "write_widesearch",
]
