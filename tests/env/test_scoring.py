"""Hand-computed item/row precision, recall and F1 for the WideSearch scorer, and aggregation."""

from __future__ import annotations

import pytest

from wideseek_env.scoring import ScoreRecord, aggregate, render_markdown_table, score_response
from wideseek_env.tasks import ColumnEval, GoldTable, Task

HEADER = ("City", "Country", "Population", "Founded", "Site")
GOLD = (
    ("Paris", "France", "2100000", "1900-01-01", "https://www.paris.fr/"),
    ("Berlin", "Germany", "3600000", "1237-10-28", "https://www.berlin.de/"),
    ("Rome", "Italy", "2800000", "2000-04-21", "https://www.comune.roma.it/"),
    ("Tokyo", "Japan", "14000000", "1868-09-03", "https://www.metro.tokyo.lg.jp/"),
)
PIPELINE = {
    "city": ColumnEval(("norm_str",), ("exact_match",)),
    "country": ColumnEval(("norm_str",), ("llm_judge",), "same country"),
    "population": ColumnEval(("extract_number",), ("number_near",), 0.1),
    "founded": ColumnEval(("norm_date",), ("date_near",)),
    "site": ColumnEval(("norm_str",), ("url_match",)),
}


def make_task(rows=GOLD, pipeline=PIPELINE, unique=("city",)) -> Task:
    required = tuple(pipeline)
    return Task(
        "t_cities", "List the cities.", "en", tuple(unique), required, dict(pipeline),
        GoldTable(HEADER[: len(required)], tuple(rows)),
    )  # fmt: skip


def answer(rows, header=HEADER) -> str:
    return "Here you go:\n\n" + render_markdown_table(header, rows) + "\n\nDone."


def f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def check(
    record: ScoreRecord, item_tp: float, row_tp: float, n_pred: int, n_gold: int, n_cols: int
):
    ip, ir = item_tp / (n_pred * n_cols), item_tp / (n_gold * n_cols)
    rp, rr = row_tp / n_pred, row_tp / n_gold
    assert record.item_precision == pytest.approx(ip)
    assert record.item_recall == pytest.approx(ir)
    assert record.item_f1 == pytest.approx(f1(ip, ir))
    assert record.row_precision == pytest.approx(rp)
    assert record.row_recall == pytest.approx(rr)
    assert record.row_f1 == pytest.approx(f1(rp, rr))
    assert record.parse_ok


def test_perfect_answer_with_other_formatting_succeeds():
    rows = [
        ("**PARIS**", "france", "2,100,000 people", "Jan 1, 1900", "http://paris.fr"),
        ("berlin", "Germany", "3.6e6", "October 28, 1237", "https://www.berlin.de/en/"),
        ("Rome", "ITALY", "2800000", "1237-10-28", "https://www.comune.roma.it/"),
        ("Tokyo", "Japan", "14,000,000", "1868/9/3", "https://www.metro.tokyo.lg.jp/x"),
    ]
    # Founded for Rome is wrong on purpose: every other cell is right in another format.
    record = score_response(
        make_task(), answer(rows, ("city", "Country", "POPULATION", "Founded", "Site"))
    )
    # 3.6e6: extract_number keeps "3.6" (WideSearch's number pattern has no exponent) -> wrong.
    # paris.fr vs www.paris.fr: different host names -> wrong.
    check(record, item_tp=20 - 3, row_tp=1, n_pred=4, n_gold=4, n_cols=5)
    assert not record.success
    exact = score_response(make_task(), answer(GOLD))
    assert exact == ScoreRecord(1.0, 1.0, 1.0, 1.0, 1.0, 1.0, True, True)


def test_missing_row_and_out_of_tolerance_number():
    rows = [GOLD[0], ("Berlin", "Germany", "4000000", *GOLD[1][3:]), GOLD[2]]
    # |4.0 - 3.6| / 3.6 = 11% > 10%: Berlin's population is wrong, the rest is right.
    record = score_response(make_task(), answer(rows))
    check(record, item_tp=3 * 5 - 1, row_tp=2, n_pred=3, n_gold=4, n_cols=5)
    within = score_response(
        make_task(), answer([GOLD[0], ("Berlin", "Germany", "3900000", *GOLD[1][3:])])
    )
    check(within, item_tp=10, row_tp=2, n_pred=2, n_gold=4, n_cols=5)


def test_extra_rows_and_duplicates():
    fake = ("Atlantis", "Nowhere", "1", "1000-01-01", "https://atlantis.example/")
    # An exact duplicate is dropped before the join (pandas drop_duplicates on the key).
    record = score_response(make_task(), answer([*GOLD, fake, GOLD[0]]))
    check(record, item_tp=20, row_tp=4, n_pred=5, n_gold=4, n_cols=5)
    # A duplicate that differs only after normalisation ("PARIS") is dropped after
    # preprocessing (documented fix): the official evaluator would match Paris twice.
    upper = tuple(c.upper() for c in GOLD[0])
    record = score_response(make_task(), answer([*GOLD, upper]))
    assert record == ScoreRecord(1.0, 1.0, 1.0, 1.0, 1.0, 1.0, True, True)


def test_date_near_is_31_days_and_url_match_compares_hosts():
    near = ("Paris", "France", "2100000", "1900-02-01", "https://www.paris.fr/en/visit?x=1")
    far = ("Berlin", "Germany", "3600000", "1237-11-29", "https://berlin.de/")
    # 1900-01-01 -> 1900-02-01 is 31 days: right; 1237-10-28 -> 11-29 is 32 days: wrong;
    # www.berlin.de vs berlin.de: different hosts: wrong.
    record = score_response(make_task(), answer([near, far]))
    check(record, item_tp=5 + 3, row_tp=1, n_pred=2, n_gold=4, n_cols=5)


def test_llm_judge_falls_back_to_normalised_exact_match():
    rows = [("Paris", "République française", *GOLD[0][2:]), ("Rome", " I T A L Y ", *GOLD[2][2:])]
    record = score_response(make_task(), answer(rows))
    check(record, item_tp=4 + 5, row_tp=1, n_pred=2, n_gold=4, n_cols=5)


def test_wrong_columns_score_zero_but_renamed_columns_map():
    zero = ScoreRecord(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, False, False)
    extra = [(*r, "note") for r in GOLD]
    assert score_response(make_task(), answer(extra, (*HEADER, "Notes"))) == zero
    missing = [r[:4] for r in GOLD]
    assert score_response(make_task(), answer(missing, HEADER[:4])) == zero
    # Bold headers, other case and order: mapped after norm_str.
    order = [4, 2, 0, 1, 3]
    header = [f"**{HEADER[i].upper()}**" for i in order]
    record = score_response(make_task(), answer([[r[i] for i in order] for r in GOLD], header))
    assert record.item_f1 == 1.0 and record.success


def test_no_table_or_unreadable_table_scores_zero():
    zero = ScoreRecord(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, False, False)
    assert score_response(make_task(), "I could not find the data.") == zero
    assert score_response(make_task(), "") == zero
    # A "|" inside a cell of a later row makes it wider than the header: pandas refuses it.
    body = answer(GOLD).replace("| Rome |", "| Rome | Lazio |")
    assert score_response(make_task(), body) == zero


def test_int_and_float_columns_are_reconciled_like_pandas():
    pipeline = {
        "city": ColumnEval(("norm_str",), ("exact_match",)),
        "rank": ColumnEval(("norm_str",), ("exact_match",)),
    }
    gold = (("A", "1"), ("B", "2"), ("C", "3"))
    task = Task("t_rank", "q", "en", ("city",), ("city", "rank"), pipeline,
                GoldTable(("City", "Rank"), gold))  # fmt: skip

    def run(ranks):
        return score_response(
            task, answer([(c, r) for (c, _), r in zip(gold, ranks)], ("City", "Rank"))
        )

    # "01" in an all-integer column is the integer 1; "2.0" makes the column float, and the
    # gold int column is converted to float too ("1.0" == "1.0").
    assert run(["01", "2", "3"]).item_f1 == 1.0
    assert run(["1.0", "2", "3"]).item_f1 == 1.0
    # An empty cell makes the answer column float ("1.0", "nan", "3.0") and the gold one too.
    check(run(["1", "", "3"]), item_tp=5, row_tp=2, n_pred=3, n_gold=3, n_cols=2)
    # A text cell keeps the column as strings: "01" stays "01" and no longer equals "1".
    check(run(["01", "two", "3"]), item_tp=4, row_tp=1, n_pred=3, n_gold=3, n_cols=2)


def test_identical_tables_succeed_even_when_a_metric_disagrees():
    # Without an exact_match/llm_judge key, the evaluator compares the preprocessed tables:
    # identical tables succeed although number_near("nan", "nan") is 0.
    pipeline = {
        "id": ColumnEval(("extract_number",), ("number_near",), 0.0),
        "value": ColumnEval(("norm_str",), ("number_near",), 0.0),
    }
    gold = (("1", "5"), ("2", ""))
    task = Task("t_ident", "q", "en", ("id",), ("id", "value"), pipeline,
                GoldTable(("id", "value"), gold))  # fmt: skip
    record = score_response(task, answer(gold, ("id", "value")))
    check(record, item_tp=3, row_tp=1, n_pred=2, n_gold=2, n_cols=2)
    assert record.success


def test_aggregate_avg_max_pass():
    def rec(f1_value: float, success: bool) -> ScoreRecord:
        return ScoreRecord(
            f1_value, f1_value, f1_value, f1_value / 2, f1_value / 2, f1_value / 2, success, True
        )

    summary = aggregate(
        {"a": [rec(1.0, True), rec(0.5, False)], "b": [rec(0.0, False), rec(0.2, False)]}
    )
    assert summary["tasks"] == 2 and summary["runs"] == 4 and summary["runs_per_task"] == 2
    assert summary["item_f1"] == pytest.approx((1.0 + 0.5 + 0.0 + 0.2) / 4)
    assert summary["item_f1_avg@n"] == pytest.approx((0.75 + 0.1) / 2)
    assert summary["item_f1_max@n"] == pytest.approx((1.0 + 0.2) / 2)
    assert summary["row_f1_max@n"] == pytest.approx((0.5 + 0.1) / 2)
    assert summary["success_avg@n"] == pytest.approx(0.25)
    assert summary["success_pass@n"] == pytest.approx(0.5)
    with pytest.raises(ValueError):
        aggregate({})
