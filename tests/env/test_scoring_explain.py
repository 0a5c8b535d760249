"""The cell-level score explanation: hand-built cases with hand-written verdicts, and on the 200
WideSearch gold tables with perturbed answers its totals reproduce the scorer's numbers.

The WideSearch part needs ``../shared/widesearch`` (or ``$WIDESEEK_SHARED/widesearch``).
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wideseek_env.scoring import extract_table, render_markdown_table, score_response
from wideseek_env.scoring.explain import (
    ScoreExplanation,
    explain_response,
    format_explanation,
)
from wideseek_env.scoring.gold import gold_column_index
from wideseek_env.tasks import ColumnEval, GoldTable, Task, load_widesearch

HEADER = ("City", "Country", "Population")
GOLD = (
    ("Paris", "France", "2100000"),
    ("Berlin", "Germany", "3600000"),
    ("Rome", "Italy", "2800000"),
    ("Tokyo", "Japan", "14000000"),
)
PIPELINE = {
    "city": ColumnEval(("norm_str",), ("exact_match",)),
    "country": ColumnEval(("norm_str",), ("llm_judge",), "same country"),
    "population": ColumnEval(("extract_number",), ("number_near",), 0.1),
}
TASK = Task("t_cities", "List the cities.", "en", ("city",), tuple(PIPELINE), PIPELINE,
            GoldTable(HEADER, GOLD))


def answer(rows: Sequence[Sequence[str]], header: Sequence[str] = HEADER) -> str:
    return "Table:\n\n" + render_markdown_table(header, rows)


def totals_reproduce(record, ex: ScoreExplanation) -> None:
    """The explanation's own sums give the scorer's precision and recall."""
    t = ex.totals()
    if not record.parse_ok:
        assert not ex.parse_ok and ex.rows == () and record.item_f1 == 0.0
        return
    n_pred, n_gold, n_cols = t["answer_rows"], t["gold_rows"], t["columns"]
    assert record.item_precision == pytest.approx(t["item_tp"] / (n_pred * n_cols) if n_pred else 0.0, abs=1e-12)
    assert record.item_recall == pytest.approx(t["item_tp"] / (n_gold * n_cols) if n_gold else 0.0, abs=1e-12)
    assert record.row_precision == pytest.approx(t["row_tp"] / n_pred if n_pred else 0.0, abs=1e-12)
    assert record.row_recall == pytest.approx(t["row_tp"] / n_gold if n_gold else 0.0, abs=1e-12)


def test_hand_built_answer_every_verdict():
    rows = [
        ("Paris", "France", "2,100,000"),  # right
        ("berlin", "Germany", "5000000"),  # key matches after norm_str; population wrong
        ("Madrid", "Spain", "3300000"),  # extra
        ("PARIS", "France", "1"),  # repeats Paris after preprocessing: duplicate
        ("Rome", "Italy", "2900000"),  # right: within 10 %
    ]
    record, ex = explain_response(TASK, answer(rows))
    assert record == score_response(TASK, answer(rows))
    # Tokyo missed; 3 matched rows, 1 extra, 1 duplicate (not scored).
    assert [(r.gold_row, r.answer_row, r.status) for r in ex.rows] == [
        (0, 0, "matched"), (1, 1, "matched"), (2, 4, "matched"), (3, None, "missed")]
    assert [(r.answer_row, r.status, r.duplicate_of) for r in ex.extra_rows] == [
        (2, "extra", None), (3, "duplicate", 0)]
    berlin = ex.rows[1]
    assert [c.verdict for c in berlin.cells] == ["key", "correct", "wrong"]
    pop = berlin.cells[2]
    assert (pop.predicted, pop.gold, pop.predicted_pre, pop.gold_pre, pop.score) == (
        "5000000", "3600000", "5000000", "3600000", 0.0)
    assert (berlin.cells[0].predicted, berlin.cells[0].predicted_pre) == ("berlin", "berlin")
    assert ex.rows[0].cells[2].predicted == "2,100,000"
    assert ex.rows[0].cells[2].predicted_pre == "2100000"
    assert [r.score for r in ex.rows] == [1.0, 0.0, 1.0, 0.0]
    tokyo = ex.rows[3].cells
    assert [(c.predicted, c.gold, c.verdict) for c in tokyo] == [
        (None, "Tokyo", "missed"), (None, "Japan", "missed"), (None, "14000000", "missed")]
    assert ex.columns[0].key and not ex.columns[2].key
    assert ex.columns[2].metric == ("number_near",) and ex.columns[2].criterion == 0.1
    t = ex.totals()
    assert t == {"answer_rows": 4.0, "gold_rows": 4.0, "columns": 3.0, "item_tp": 8.0,
                 "row_tp": 2.0, "matched": 3.0, "missed": 1.0, "extra": 1.0, "duplicates": 1.0}
    totals_reproduce(record, ex)
    assert record.item_precision == pytest.approx(8 / 12)
    text = format_explanation(ex)
    assert "3 of 4 gold rows matched (1 missed), 1 extra and 1 duplicate" in text
    assert "✗ gold 1 = answer 1" in text and "5000000 (gold 3600000; number_near 0.1" in text
    assert "- gold 3 missed: Tokyo" in text and "+ answer 2 extra: Madrid" in text
    assert "= answer 3 repeats answer 0" in text
    assert "✓ gold 0" not in format_explanation(ex, only_wrong=True)


class HalfJudge:
    """A deterministic judge: half credit when only the first letter agrees."""

    def judge_column(self, criterion: str, responses: Sequence[str], targets: Sequence[str],
                     ) -> list[float]:
        return [1.0 if r == t else 0.5 if r[:1] == t[:1] else 0.0
                for r, t in zip(responses, targets)]

    def align(self, values: Sequence[str], reference: Sequence[str]) -> Mapping[str, str]:
        by_lower = {r.lower(): r for r in reference}
        return {v: by_lower[v.lower()] for v in values if v.lower() in by_lower}


def test_partial_scores_from_a_judge_and_raw_duplicates():
    rows = [("Paris", "Fr", "2100000"), ("Paris", "France", "9"), ("Rome", "Italy", "2800000")]
    judge = HalfJudge()
    record, ex = explain_response(TASK, answer(rows), judge)
    assert record == score_response(TASK, answer(rows), judge)
    paris = ex.rows[0]
    assert paris.cells[1].verdict == "partial" and paris.cells[1].score == 0.5
    assert paris.score == 0.5
    # The second Paris repeats the raw key: dropped before preprocessing.
    assert [(r.answer_row, r.status, r.duplicate_of) for r in ex.extra_rows] == [(1, "duplicate", 0)]
    assert ex.totals()["item_tp"] == 2.5 + 3.0
    totals_reproduce(record, ex)


def test_failures_are_explained():
    record, ex = explain_response(TASK, "I could not find anything.")
    assert not record.parse_ok and ex.failure == "no table found in the response"
    totals_reproduce(record, ex)
    record, ex = explain_response(TASK, answer([("Paris", "France")], ("City", "Nation")))
    assert not ex.parse_ok
    assert ex.failure == ("the table's columns are not the required ones "
                          "(missing country, population; extra nation)")
    assert format_explanation(ex).startswith("not scored: the table's columns")


def test_round_trip_through_a_dict():
    _, ex = explain_response(TASK, answer([("Rome", "Italy", "1"), ("Oslo", "Norway", "7")]))
    data = ex.as_dict()
    assert data["totals"] == ex.totals()
    assert ScoreExplanation.from_dict(data) == ex


# ------------------------------------------------------------------------ 200 WideSearch tasks

SHARED = Path(os.environ.get("WIDESEEK_SHARED", Path(__file__).resolve().parents[3] / "shared"))
WIDESEARCH = SHARED / "widesearch"
needs_data = pytest.mark.skipif(
    not (WIDESEARCH / "widesearch.jsonl").is_file(),
    reason=f"WideSearch data not found at {WIDESEARCH} (set WIDESEEK_SHARED)",
)


@pytest.fixture(scope="module")
def tasks() -> list[Task]:
    return load_widesearch(WIDESEARCH / "widesearch.jsonl", WIDESEARCH / "widesearch_gold")


def perturbed_answer(task: Task, rng: random.Random) -> str:
    """The gold table with rows dropped, cells edited, emptied or upper-cased, a repeated row, an
    extra row, shuffled rows and (sometimes) reordered columns."""
    index = gold_column_index(task.gold.columns)
    columns = [task.gold.columns[index[c]] for c in task.required]
    rows = [[row[index[c]] if index[c] < len(row) else "" for c in task.required]
            for row in task.gold.rows if rng.random() > 0.2]
    for row in rows:
        for j in range(len(row)):
            x = rng.random()
            if x < 0.1:
                row[j] += " (edited)"
            elif x < 0.15:
                row[j] = row[j].upper()
            elif x < 0.18:
                row[j] = ""
    if rows and rng.random() < 0.4:
        rows.append(list(rows[rng.randrange(len(rows))]))
    if rng.random() < 0.4:
        rows.append([f"made up {j}" for j in range(len(columns))])
    rng.shuffle(rows)
    if rng.random() < 0.3:
        order = list(range(len(columns)))
        rng.shuffle(order)
        columns = [columns[j] for j in order]
        rows = [[row[j] for j in order] for row in rows]
    return "Final answer:\n" + render_markdown_table(columns, rows)


@needs_data
def test_totals_equal_the_scorer_on_perturbed_widesearch_answers(tasks):
    assert len(tasks) == 200
    rng = random.Random(15)
    seen = {"wrong": 0, "missed": 0, "extra": 0, "duplicate": 0}
    for task in tasks:
        for _ in range(3):
            text = perturbed_answer(task, rng)
            record, ex = explain_response(task, text)
            assert record == score_response(task, text), task.instance_id
            totals_reproduce(record, ex)
            # Every scored gold row appears once; raw cells are the gold's and the answer's.
            assert len({r.gold_row for r in ex.rows}) == len(ex.rows)
            header, answer_rows = extract_table(text)
            gidx = gold_column_index(task.gold.columns)
            for row in ex.rows:
                gold_row = task.gold.rows[row.gold_row]
                assert [c.gold for c in row.cells] == [
                    gold_row[gidx[c]] if gidx[c] < len(gold_row) else "" for c in task.required]
            aidx = {c.name: header.index(c.answer_name) for c in ex.columns}
            for row in (*ex.rows, *ex.extra_rows):
                if row.answer_row is not None:
                    raw = answer_rows[row.answer_row]
                    assert [c.predicted for c in row.cells] == [raw[aidx[c]] for c in task.required]
            for row in (*ex.rows, *ex.extra_rows):
                for cell in row.cells:
                    if cell.verdict in seen:
                        seen[cell.verdict] += 1
    assert all(n > 100 for n in seen.values()), seen


_SOME_TASKS = ("ws_en_001", "ws_en_038", "ws_zh_001")


@needs_data
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.sampled_from(_SOME_TASKS),
       text=st.lists(st.text(alphabet=st.sampled_from('|-: \n"ab12.,%*年NA'), max_size=30),
                     max_size=12).map("\n".join))
def test_totals_equal_the_scorer_on_arbitrary_text(tasks, which, text):
    task = next(t for t in tasks if t.instance_id == which)
    record, ex = explain_response(task, text)
    assert record == score_response(task, text)
    totals_reproduce(record, ex)
