"""Cell-level explanation of a score: which gold rows were matched or missed, which cells were
right or wrong and why, which answer rows were extra.

:func:`explain_response` runs the scorer's own alignment (:func:`.scorer.align`) once and returns
the usual :class:`~.scorer.ScoreRecord` beside a :class:`ScoreExplanation`, so the explanation can
never disagree with the numbers: its totals (:meth:`ScoreExplanation.totals`) are sums over its
cells, and tests check that they reproduce the scorer's precision and recall.

For every gold row (gold order, after the scorer's duplicate-key rule) the explanation says
``matched`` or ``missed``; for every cell the raw predicted and gold text, the forms the metric
compared (after pandas typing, key mapping and the column's preprocessing), the metric and its
score. Answer rows that match no gold row are ``extra``; answer rows dropped because their key
repeats an earlier row are ``duplicate`` (they are not scored and do not count as answer rows).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..tasks import Task
from .gold import gold_column_index
from .scorer import Alignment, ScoreRecord, align

if TYPE_CHECKING:
    from .judge import Judge

__all__ = ["CellExplanation", "ColumnExplanation", "RowExplanation", "ScoreExplanation",
           "explain_alignment", "explain_response", "explanation_from_record",
           "format_explanation"]

Verdict = Literal["key", "correct", "partial", "wrong", "missed", "extra", "duplicate"]
RowStatus = Literal["matched", "missed", "extra", "duplicate"]


@dataclass(frozen=True)
class ColumnExplanation:
    """A required column (normalised name), its header in the gold table and in the answer,
    whether it is a key, and how it is scored."""

    name: str
    gold_name: str | None
    answer_name: str | None
    key: bool
    preprocess: tuple[str, ...]
    metric: tuple[str, ...]
    criterion: float | str | None


@dataclass(frozen=True)
class CellExplanation:
    """One cell. ``*_pre`` are the forms the metric compared; ``score`` is None when the cell was
    not compared (missed, extra or duplicate row)."""

    predicted: str | None
    gold: str | None
    predicted_pre: str | None
    gold_pre: str | None
    score: float | None
    verdict: Verdict


@dataclass(frozen=True)
class RowExplanation:
    """One row: its place in the gold table and in the answer table (None where it has none),
    its status, its row score (the minimum of its cells; 0 unless matched) and its cells in
    required-column order. ``duplicate_of`` is the answer row whose key a duplicate repeats."""

    gold_row: int | None
    answer_row: int | None
    status: RowStatus
    score: float
    cells: tuple[CellExplanation, ...]
    duplicate_of: int | None = None


@dataclass(frozen=True)
class ScoreExplanation:
    """Why an answer got its score. ``rows``: every scored gold row (matched or missed), in gold
    order; ``extra_rows``: answer rows without a gold row, then duplicates, in answer order;
    ``gold_duplicates``: ``(gold row, gold row it repeats)`` pairs the scorer dropped."""

    task_id: str
    parse_ok: bool
    failure: str | None
    columns: tuple[ColumnExplanation, ...]
    rows: tuple[RowExplanation, ...]
    extra_rows: tuple[RowExplanation, ...]
    gold_duplicates: tuple[tuple[int, int], ...] = ()

    def totals(self) -> dict[str, float]:
        """Counts summed over the explanation's own cells: ``answer_rows`` (scored answer rows),
        ``gold_rows``, ``columns``, ``item_tp`` (sum of cell scores of matched rows, key cells 1),
        ``row_tp`` (sum of row scores), ``matched``, ``missed``, ``extra``, ``duplicates``."""
        matched = [r for r in self.rows if r.status == "matched"]
        extra = [r for r in self.extra_rows if r.status == "extra"]
        return {
            "answer_rows": float(len(matched) + len(extra)),
            "gold_rows": float(len(self.rows)),
            "columns": float(len(self.columns)),
            "item_tp": sum(c.score or 0.0 for r in matched for c in r.cells),
            "row_tp": sum(r.score for r in matched),
            "matched": float(len(matched)),
            "missed": float(len(self.rows) - len(matched)),
            "extra": float(len(extra)),
            "duplicates": float(len(self.extra_rows) - len(extra)),
        }

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["totals"] = self.totals()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScoreExplanation:
        """Read back :meth:`as_dict` (e.g. from a trace record); ``totals`` is recomputed."""

        def row(r: Mapping[str, Any]) -> RowExplanation:
            return RowExplanation(
                r["gold_row"], r["answer_row"], r["status"], float(r["score"]),
                tuple(CellExplanation(**c) for c in r["cells"]), r.get("duplicate_of"))

        return cls(
            data["task_id"], bool(data["parse_ok"]), data.get("failure"),
            tuple(ColumnExplanation(c["name"], c.get("gold_name"), c.get("answer_name"),
                                    bool(c["key"]), tuple(c["preprocess"]), tuple(c["metric"]),
                                    c.get("criterion")) for c in data["columns"]),
            tuple(row(r) for r in data["rows"]), tuple(row(r) for r in data["extra_rows"]),
            tuple((int(a), int(b)) for a, b in data.get("gold_duplicates", ())),
        )


def _verdict(score: float) -> Verdict:
    return "correct" if score >= 1.0 else "wrong" if score <= 0.0 else "partial"


def explain_alignment(task: Task, al: Alignment) -> ScoreExplanation:
    """The explanation of one :func:`.scorer.align` result."""
    required = task.required
    keys = set(al.key_idx)
    pipeline = task.eval_pipeline
    names = ({c: al.frame.names[i] for c, i in al.position.items()}
             if al.frame is not None and al.position is not None else {})
    gidx = gold_column_index(task.gold.columns)
    columns = tuple(
        ColumnExplanation(
            col, task.gold.columns[gidx[col]] if col in gidx else None, names.get(col), j in keys,
            pipeline[col].preprocess if col in pipeline else (),
            pipeline[col].metric if col in pipeline else (),
            pipeline[col].criterion if col in pipeline else None)
        for j, col in enumerate(required))
    if al.failure is not None:
        return ScoreExplanation(task.instance_id, False, al.failure, columns, (), ())
    assert al.frame is not None and al.position is not None
    gold_raw = [gidx[c] for c in required]
    resp_raw = [al.frame.columns[al.position[c]] for c in required]

    def gold_cell(g: int, j: int) -> str:
        row = task.gold.rows[g]
        return row[gold_raw[j]] if gold_raw[j] < len(row) else ""

    pair_of_gold = {g: (n, i) for n, (i, g) in enumerate(al.pairs)}
    rows = []
    for g, gid in enumerate(al.gold_ids):
        hit = pair_of_gold.get(g)
        if hit is None:
            cells = tuple(CellExplanation(None, gold_cell(gid, j), None, al.gold_rows[g][j], None,
                                          "missed") for j in range(len(required)))
            rows.append(RowExplanation(gid, None, "missed", 0.0, cells))
            continue
        n, i = hit
        aid = al.resp_ids[i]
        matched = []
        for j in range(len(required)):
            column_scores = al.cell_scores[j]
            score = 1.0 if column_scores is None else float(column_scores[n])
            matched.append(CellExplanation(
                resp_raw[j][aid], gold_cell(gid, j), al.resp_rows[i][j], al.gold_rows[g][j],
                score, "key" if j in keys else _verdict(score)))
        rows.append(RowExplanation(gid, aid, "matched", min(c.score or 0.0 for c in matched),
                                   tuple(matched)))
    paired = {i for i, _ in al.pairs}
    extra = [
        RowExplanation(None, aid, "extra", 0.0, tuple(
            CellExplanation(resp_raw[j][aid], None, al.resp_rows[i][j], None, None, "extra")
            for j in range(len(required))))
        for i, aid in enumerate(al.resp_ids) if i not in paired]
    extra += [
        RowExplanation(None, aid, "duplicate", 0.0, tuple(
            CellExplanation(resp_raw[j][aid], None, None, None, None, "duplicate")
            for j in range(len(required))), duplicate_of=first)
        for aid, first in sorted(al.resp_dropped)]
    return ScoreExplanation(task.instance_id, True, None, columns, tuple(rows), tuple(extra),
                            tuple(sorted(al.gold_dropped)))


def explain_response(task: Task, response: str, judge: Judge | None = None,
                     ) -> tuple[ScoreRecord, ScoreExplanation]:
    """Score ``response`` and explain the score, in one pass (one set of judge calls)."""
    al = align(task, response, judge)
    return al.record(), explain_alignment(task, al)


# ------------------------------------------------------------------------------ text form

_MARK = {"key": " ", "correct": "✓", "partial": "~", "wrong": "✗", "missed": "-", "extra": "+",
         "duplicate": "="}


def _show(value: str | None, max_chars: int) -> str:
    text = " ".join(str(value).split()) if value is not None else ""
    return text if max_chars <= 0 or len(text) <= max_chars else text[: max_chars - 1] + "…"


def _cell_text(col: ColumnExplanation, cell: CellExplanation, max_chars: int) -> str:
    if cell.verdict in ("wrong", "partial"):
        how = "+".join(col.metric)
        if col.criterion is not None and not isinstance(col.criterion, str):
            how += f" {col.criterion:g}"
        return (f"{_MARK[cell.verdict]} {_show(cell.predicted, max_chars)} (gold "
                f"{_show(cell.gold, max_chars)}; {how}: {_show(cell.predicted_pre, max_chars)!r} vs "
                f"{_show(cell.gold_pre, max_chars)!r}, score {cell.score:g})")
    value = cell.gold if cell.verdict == "missed" else cell.predicted
    return _show(value, max_chars)


def format_explanation(ex: ScoreExplanation, max_chars: int = 60, only_wrong: bool = False,
                       ) -> str:
    """The explanation as text: a summary line, then one line per row (``✓`` right row, ``✗``
    a wrong cell, ``~`` partial, ``-`` missed gold row, ``+`` extra answer row, ``=`` duplicate).
    ``only_wrong`` leaves out fully right rows; ``max_chars`` <= 0 shows values in full."""
    if not ex.parse_ok:
        return f"not scored: {ex.failure}"
    t = ex.totals()
    n_cells = t["gold_rows"] * t["columns"]
    lines = [
        f"{t['matched']:.0f} of {t['gold_rows']:.0f} gold rows matched ({t['missed']:.0f} missed), "
        f"{t['extra']:.0f} extra and {t['duplicates']:.0f} duplicate answer rows; cell score "
        f"{t['item_tp']:g} of {n_cells:g} gold cells, {t['answer_rows'] * t['columns']:g} answer cells",
        "columns: " + " | ".join(c.name + (" (key)" if c.key else "") for c in ex.columns),
    ]
    for row in (*ex.rows, *ex.extra_rows):
        if row.status == "matched":
            bad = [c for c in row.cells if c.verdict in ("wrong", "partial")]
            if only_wrong and not bad:
                continue
            mark = _MARK[bad[0].verdict] if bad else "✓"
            where = f"gold {row.gold_row} = answer {row.answer_row}"
        elif row.status == "missed":
            mark, where = "-", f"gold {row.gold_row} missed"
        elif row.status == "extra":
            mark, where = "+", f"answer {row.answer_row} extra"
        else:
            mark, where = "=", f"answer {row.answer_row} repeats answer {row.duplicate_of}"
        cells = " | ".join(_cell_text(c, cell, max_chars) for c, cell in zip(ex.columns, row.cells))
        lines.append(f"{mark} {where}: {cells}")
    return "\n".join(lines)


def explanation_from_record(record: Mapping[str, Any]) -> ScoreExplanation | None:
    """The explanation stored in a trace or score record (key ``explanation``), if any."""
    data = record.get("explanation")
    return ScoreExplanation.from_dict(data) if isinstance(data, Mapping) else None

