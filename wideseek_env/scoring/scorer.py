"""Score one answer against a task's gold table, the way WideSearch's evaluator does.

Algorithm (docs/scoring.md has the reasons and the list of deliberate departures):

1. Extract the answer table (:func:`.extract.extract_frame`); none -> every score 0.
2. Normalise column names (lower-case, spaces removed). If they are not exactly the required
   columns, map them: with a judge, as the judge aligns them; without, a column maps to the
   required column that is equal after ``norm_str`` (so ``**Element**`` maps to ``element``).
   Still not the required set -> every score 0 (``parse_ok`` false).
3. Type every column as pandas would and take its ``astype(str)`` strings; an int column facing a
   float column is converted to float on its side (``7`` -> ``7.0``).
4. Drop rows whose key (the ``unique_columns`` values) repeats an earlier row, on both sides.
5. Key alignment: with a judge, response key values are mapped onto gold key values by the judge
   (columns whose metric is ``exact_match`` or ``llm_judge``); without, a value maps to the gold
   value that is equal after ``norm_str``.
6. Preprocess every column of the evaluation pipeline on both sides.
7. Fix (documented): drop rows whose preprocessed key repeats an earlier row, on both sides, so
   one gold row is never matched twice.
8. Inner-join on the key. Key cells of a matched row score 1; other cells score with their
   column's metric (``llm_judge`` columns in one judge call per column). A row scores the minimum
   of its cells.
9. Item precision = sum of cell scores / (answer rows x required columns), recall over gold rows;
   row precision/recall likewise with row scores; F1 = 2PR/(P+R) (0 when P+R is 0).
   ``success`` when all six are exactly 1, or when the preprocessed tables are identical
   (the evaluator's frame comparison, which only applies when no key column has an
   ``exact_match``/``llm_judge`` metric).

A malformed answer only lowers the score. A malformed task (a required column without a
pipeline entry, an unknown preprocess step or metric) raises, as does any scorer bug.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from operator import itemgetter
from statistics import fmean
from typing import TYPE_CHECKING, Any

from ..tasks.records import Task, norm_column
from .extract import extract_frame
from .gold import prepared_gold
from .metrics import METRICS, PREPROCESSORS, norm_str
from .pdtable import Frame, infer_column

if TYPE_CHECKING:
    from .judge import Judge

__all__ = ["Alignment", "ScoreRecord", "aggregate", "align", "score_response"]


@dataclass(frozen=True)
class ScoreRecord:
    """The scores of one answer. ``parse_ok``: a table with the required columns was found."""

    item_precision: float
    item_recall: float
    item_f1: float
    row_precision: float
    row_recall: float
    row_f1: float
    success: bool
    parse_ok: bool

    def as_dict(self) -> dict[str, float | bool]:
        return asdict(self)


_FAILED = ScoreRecord(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, False, False)
_KEY_MAPPED_METRICS = ("exact_match", "llm_judge")


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall > 1e-9 else 0.0


def _map_columns(names: list[str], required: Sequence[str], judge: Judge | None) -> list[str]:
    if judge is not None:
        mapping = judge.align(names, list(required))
    else:
        by_norm: dict[str, str] = {}
        for col in required:
            by_norm.setdefault(norm_str(col), col)
        mapping = {n: by_norm[norm_str(n)] for n in names if norm_str(n) in by_norm}
    return [mapping.get(n, n) for n in names]


def _map_keys(values: list[str], reference: list[str], judge: Judge | None) -> dict[str, str]:
    if judge is not None:
        return dict(judge.align(values, reference))
    by_norm: dict[str, str] = {}
    for ref in reference:
        by_norm.setdefault(norm_str(ref), ref)
    return {v: by_norm[norm_str(v)] for v in values if norm_str(v) in by_norm}


def _first_per_key(rows: list[tuple[str, ...]], key_of: Callable[[tuple[str, ...]], Any]) -> list[int]:
    """Positions of the first row of every key (pandas' ``drop_duplicates(keep="first")``)."""
    seen: set[Any] = set()
    kept = []
    add = seen.add
    for i, row in enumerate(rows):
        key = key_of(row)
        if key not in seen:
            add(key)
            kept.append(i)
    return kept


@dataclass(frozen=True)
class Alignment:
    """Everything one scoring pass computed; the score record and the explanation read it.

    Rows are the kept rows (steps 4 and 7), as tuples in ``required`` order: ``gold_rows`` and
    ``resp_rows`` after key mapping and preprocessing, ``gold_ids``/``resp_ids`` their positions
    in the gold table and in the answer table. ``*_dropped`` pairs a dropped row's position with
    the position of the kept row whose key it repeats. ``pairs`` holds ``(i, g)`` indices into
    ``resp_rows`` and ``gold_rows`` in answer order; ``cell_scores[j]`` the scores of column ``j``
    per pair (``None`` for key columns: they score 1). ``frame``/``position`` locate the raw answer
    cells; ``failure`` says why nothing was scored (then most fields are empty).
    """

    required: tuple[str, ...]
    key_idx: tuple[int, ...]
    failure: str | None = None
    frame: Frame | None = None
    position: Mapping[str, int] | None = None
    gold_ids: tuple[int, ...] = ()
    resp_ids: tuple[int, ...] = ()
    gold_rows: tuple[tuple[str, ...], ...] = ()
    resp_rows: tuple[tuple[str, ...], ...] = ()
    gold_dropped: tuple[tuple[int, int], ...] = ()
    resp_dropped: tuple[tuple[int, int], ...] = ()
    pairs: tuple[tuple[int, int], ...] = ()
    cell_scores: tuple[tuple[float, ...] | None, ...] = ()
    identical: bool = False

    def record(self) -> ScoreRecord:
        """Step 9: the scores."""
        if self.failure is not None:
            return _FAILED
        n_pairs = len(self.pairs)
        row_scores = [1.0] * n_pairs
        tp_items = float(n_pairs * len(self.key_idx))
        for cell in self.cell_scores:
            if cell is not None:
                tp_items += sum(cell)
                row_scores = [min(a, b) for a, b in zip(row_scores, cell)]
        n_pred, n_gold, n_cols = len(self.resp_rows), len(self.gold_rows), len(self.required)
        tp_rows = sum(row_scores)
        row_p = tp_rows / n_pred if n_pred else 0.0
        row_r = tp_rows / n_gold if n_gold else 0.0
        item_p = tp_items / (n_pred * n_cols) if n_pred else 0.0
        item_r = tp_items / (n_gold * n_cols) if n_gold else 0.0
        row_f, item_f = _f1(row_p, row_r), _f1(item_p, item_r)
        perfect = item_p == item_r == item_f == 1.0 and row_p == row_r == row_f == 1.0
        return ScoreRecord(item_p, item_r, item_f, row_p, row_r, row_f,
                           perfect or self.identical, True)


def _dedup(rows: list[tuple[str, ...]], ids: list[int], key_of: Callable[[tuple[str, ...]], Any],
           dropped: list[tuple[int, int]]) -> tuple[list[tuple[str, ...]], list[int]]:
    """Keep the first row per key; note each dropped row's id with the id of the row it repeats."""
    kept = _first_per_key(rows, key_of)
    if len(kept) < len(rows):
        first = {key_of(rows[i]): ids[i] for i in kept}
        kept_set = set(kept)
        dropped.extend((ids[i], first[key_of(rows[i])]) for i in range(len(rows))
                       if i not in kept_set)
    return [rows[i] for i in kept], [ids[i] for i in kept]


def align(task: Task, response: str, judge: Judge | None = None) -> Alignment:
    """Steps 1-8 of the module docstring: what :func:`score_response` scores."""
    gold = prepared_gold(task)
    required = task.required
    key_idx = tuple(required.index(u) for u in task.unique_columns)
    frame = extract_frame(response)
    if frame is None:
        return Alignment(required, key_idx, failure="no table found in the response")
    names = [norm_column(n) for n in frame.names]
    if set(names) != set(required):
        names = _map_columns(names, required, judge)
    if len(set(names)) != len(names) or set(names) != set(required):
        return Alignment(required, key_idx, frame=frame, failure=_column_failure(names, required))
    position = {name: i for i, name in enumerate(names)}
    in_required_order = names == list(required)

    # Step 3: pandas typing, then astype(str) with the int/float reconciliation.
    gold_cols: list[tuple[str, ...]] = []
    resp_cols: list[tuple[str, ...]] = []
    for col in required:
        g = gold.typed[col]
        r = infer_column(frame.columns[position[col]])
        g_values, r_values = g.values, r.values
        if r.kind == "float" and g.kind == "int":
            g_values = g.as_float()
        elif r.kind == "int" and g.kind == "float":
            r_values = r.as_float()
        gold_cols.append(g_values)
        resp_cols.append(r_values)
    key_of = itemgetter(*key_idx)  # a cell for one key column, a tuple for several
    gold_dropped: list[tuple[int, int]] = []
    resp_dropped: list[tuple[int, int]] = []
    gold_rows = list(zip(*gold_cols))
    resp_rows = list(zip(*resp_cols))
    gold_rows, gold_ids = _dedup(gold_rows, list(range(len(gold_rows))), key_of, gold_dropped)
    resp_rows, resp_ids = _dedup(resp_rows, list(range(len(resp_rows))), key_of, resp_dropped)

    # Steps 5-6: key alignment, then preprocessing, column by column.
    pipeline = task.eval_pipeline
    frames_comparable = True
    g_columns = [list(c) for c in zip(*gold_rows)] if gold_rows else [[] for _ in required]
    r_columns = [list(c) for c in zip(*resp_rows)] if resp_rows else [[] for _ in required]
    for u, j in zip(task.unique_columns, key_idx):
        spec = pipeline.get(u)
        if spec is None or not any(m in _KEY_MAPPED_METRICS for m in spec.metric):
            continue
        frames_comparable = False  # the evaluator adds a "<key>_before_map" column here
        mapping = _map_keys(r_columns[j], g_columns[j], judge)
        if mapping:
            r_columns[j] = [mapping.get(v, v) for v in r_columns[j]]
    for col, spec in pipeline.items():
        j = required.index(col)
        for step in spec.preprocess:
            fn = PREPROCESSORS[step]
            g_columns[j] = [fn(v) for v in g_columns[j]]
            r_columns[j] = [fn(v) for v in r_columns[j]]
    gold_rows = list(zip(*g_columns))
    resp_rows = list(zip(*r_columns))
    identical = (
        frames_comparable
        and in_required_order
        and len(gold_rows) == len(resp_rows)
        and Counter(gold_rows) == Counter(resp_rows)
    )

    # Step 7 (fix): one row per preprocessed key on each side.
    gold_rows, gold_ids = _dedup(gold_rows, gold_ids, key_of, gold_dropped)
    resp_rows, resp_ids = _dedup(resp_rows, resp_ids, key_of, resp_dropped)

    # Step 8: inner join on the key, then cell scores.
    gold_by_key = {key_of(row): g for g, row in enumerate(gold_rows)}
    pairs = []
    for i, row in enumerate(resp_rows):
        g = gold_by_key.get(key_of(row))
        if g is not None:
            pairs.append((i, g))
    cell_scores: list[tuple[float, ...] | None] = []
    for j, col in enumerate(required):
        if j in key_idx:
            cell_scores.append(None)
            continue
        spec = pipeline[col]
        r_vals = [resp_rows[i][j] for i, _ in pairs]
        g_vals = [gold_rows[g][j] for _, g in pairs]
        cell = [1.0] * len(pairs)
        for metric in spec.metric:
            if metric == "llm_judge" and judge is not None and pairs:
                criterion = spec.criterion if isinstance(spec.criterion, str) else ""
                scores = judge.judge_column(criterion, r_vals, g_vals)
            else:
                fn = METRICS[metric]
                crit = spec.criterion
                scores = [fn(r, g, crit) for r, g in zip(r_vals, g_vals)]  # type: ignore[arg-type]
            cell = scores if len(spec.metric) == 1 else [min(a, b) for a, b in zip(cell, scores)]
        cell_scores.append(tuple(cell))
    return Alignment(
        required, key_idx, frame=frame, position=position, gold_ids=tuple(gold_ids),
        resp_ids=tuple(resp_ids), gold_rows=tuple(gold_rows), resp_rows=tuple(resp_rows),
        gold_dropped=tuple(gold_dropped), resp_dropped=tuple(resp_dropped), pairs=tuple(pairs),
        cell_scores=tuple(cell_scores), identical=identical,
    )


def _column_failure(names: list[str], required: Sequence[str]) -> str:
    missing = [c for c in required if c not in names]
    extra = sorted({n for n in names if n not in required})
    repeated = sorted({n for n in names if names.count(n) > 1})
    parts = []
    if missing:
        parts.append("missing " + ", ".join(missing))
    if extra:
        parts.append("extra " + ", ".join(extra))
    if repeated:
        parts.append("repeated " + ", ".join(repeated))
    return "the table's columns are not the required ones (" + "; ".join(parts) + ")"


def score_response(task: Task, response: str, judge: Judge | None = None) -> ScoreRecord:
    """Score ``response`` (the model's final text) against ``task``'s gold table."""
    return align(task, response, judge).record()


def aggregate(records_by_task: Mapping[str, Sequence[ScoreRecord]]) -> dict[str, float]:
    """Summary over tasks, each with one or more runs.

    Keys: ``tasks``, ``runs`` (all records), ``runs_per_task`` (largest number of runs of a
    task), the means over all records of the eight fields, and, over tasks (each task weighted
    once, as in WideSearch): ``item_f1_avg@n`` / ``row_f1_avg@n`` / ``success_avg@n`` (mean over
    a task's runs), ``item_f1_max@n`` / ``row_f1_max@n`` (best run) and ``success_pass@n`` (any
    run succeeds).
    """
    per_task = [list(v) for v in records_by_task.values() if len(v)]
    if not per_task:
        raise ValueError("aggregate() needs at least one task with at least one record")
    everything = [r for runs in per_task for r in runs]
    out: dict[str, float] = {
        "tasks": float(len(per_task)),
        "runs": float(len(everything)),
        "runs_per_task": float(max(len(runs) for runs in per_task)),
    }
    for field in (
        "item_precision", "item_recall", "item_f1", "row_precision", "row_recall", "row_f1",
        "success", "parse_ok",
    ):  # fmt: skip
        out[field] = fmean(float(getattr(r, field)) for r in everything)
    for field in ("item_f1", "row_f1", "success"):
        out[f"{field}_avg@n"] = fmean(
            fmean(float(getattr(r, field)) for r in runs) for runs in per_task
        )
    for field in ("item_f1", "row_f1"):
        out[f"{field}_max@n"] = fmean(max(getattr(r, field) for r in runs) for runs in per_task)
    out["success_pass@n"] = fmean(float(any(r.success for r in runs)) for runs in per_task)
    return out
