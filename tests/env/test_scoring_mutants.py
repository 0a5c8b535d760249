"""Scorer cases that mutation testing found unguarded (benchmarks/mutation.py, group "scorer"):
tables whose columns are all keys or have two keys, a column with two metrics, an answer without
rows, a task without gold rows, and the score record being read-only. Each expected value is
worked out by hand from docs/scoring.md."""

from __future__ import annotations

import dataclasses

import pytest

from wideseek_env.scoring import render_markdown_table, score_response
from wideseek_env.tasks import ColumnEval, GoldTable, Task

KEY = ColumnEval(("norm_str",), ("exact_match",))


def task(header: tuple[str, ...], rows: tuple[tuple[str, ...], ...], unique: tuple[str, ...],
         pipeline: dict[str, ColumnEval]) -> Task:
    return Task("t", "q", "en", unique, tuple(pipeline), pipeline, GoldTable(header, rows))


def answer(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    return render_markdown_table(header, rows)


def test_a_table_of_key_columns_only_scores_at_most_one() -> None:
    # 2 of 3 answer rows match 2 of 2 gold rows: row precision 2/3, recall 1; no non-key column,
    # so a matched row scores exactly 1 (not its starting value of the min over cells).
    t = task(("Name",), (("a",), ("b",)), ("name",), {"name": KEY})
    r = score_response(t, answer(("Name",), [("a",), ("b",), ("c",)]))
    assert (r.row_precision, r.row_recall) == pytest.approx((2 / 3, 1.0))
    assert (r.item_precision, r.item_recall) == pytest.approx((2 / 3, 1.0))
    assert not r.success


def test_two_key_columns_count_two_items_per_matched_row() -> None:
    # keys (first, last), one value column; the one matched row has 2 key items + 1 right value.
    pipeline = {"first": KEY, "last": KEY, "age": ColumnEval(("extract_number",),
                                                            ("number_near",), 0.0)}
    t = task(("First", "Last", "Age"), (("ada", "lovelace", "36"), ("alan", "turing", "41")),
             ("first", "last"), pipeline)
    r = score_response(t, answer(("First", "Last", "Age"), [("ada", "lovelace", "36"),
                                                            ("ada", "byron", "36")]))
    # tp items = 2 (keys) + 1 (age) = 3 over 2 answer rows x 3 columns, and 2 gold rows x 3
    assert (r.item_precision, r.item_recall) == pytest.approx((0.5, 0.5))
    assert (r.row_precision, r.row_recall) == pytest.approx((0.5, 0.5))


def test_a_column_with_two_metrics_needs_both() -> None:
    # "site" must be the same URL and also an exact string: the min of both metrics.
    pipeline = {"name": KEY, "site": ColumnEval(("norm_str",), ("url_match", "exact_match"))}
    t = task(("Name", "Site"), (("a", "https://a.org/x"), ("b", "https://b.org/")),
             ("name",), pipeline)
    # url_match passes for both (scheme and trailing slash aside), exact_match only for "b"
    r = score_response(t, answer(("Name", "Site"), [("a", "http://a.org/x/"),
                                                    ("b", "https://b.org/")]))
    assert (r.item_precision, r.row_precision) == pytest.approx((3 / 4, 1 / 2))
    # the other order of the same two metrics gives the same cell scores
    flipped = {"name": KEY, "site": ColumnEval(("norm_str",), ("exact_match", "url_match"))}
    t2 = task(("Name", "Site"), t.gold.rows, ("name",), flipped)
    r2 = score_response(t2, answer(("Name", "Site"), [("a", "http://a.org/x/"),
                                                      ("b", "https://b.org/")]))
    assert (r2.item_precision, r2.row_precision) == pytest.approx((3 / 4, 1 / 2))


def test_an_answer_with_a_header_and_no_rows_scores_zero() -> None:
    t = task(("Name", "Age"), (("a", "1"),), ("name",),
             {"name": KEY, "age": ColumnEval(("norm_str",), ("exact_match",))})
    r = score_response(t, "| Name | Age |\n|---|---|\n")
    assert r.parse_ok
    assert (r.item_precision, r.item_recall, r.row_precision, r.row_recall) == (0, 0, 0, 0)
    assert not r.success


def test_a_task_without_gold_rows_has_zero_recall() -> None:
    t = task(("Name", "Age"), (), ("name",),
             {"name": KEY, "age": ColumnEval(("norm_str",), ("exact_match",))})
    r = score_response(t, answer(("Name", "Age"), [("a", "1")]))
    assert (r.item_recall, r.row_recall, r.item_precision, r.row_precision) == (0, 0, 0, 0)


def test_score_records_are_read_only() -> None:
    t = task(("Name",), (("a",),), ("name",), {"name": KEY})
    r = score_response(t, answer(("Name",), [("a",)]))
    assert r.success
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.item_f1 = 0.0  # type: ignore[misc]
