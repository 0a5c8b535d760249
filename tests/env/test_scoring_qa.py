"""QA scoring: the boxed answer, SQuAD's normalisation and token F1 (hand-computed cases), the
score record and the summary over tasks and repeats."""

from __future__ import annotations

import pytest

from wideseek_env.qa import QATask, qa_task, task_kind
from wideseek_env.scoring.qa import (
    QAScore,
    aggregate_qa,
    extract_boxed,
    normalize_answer,
    score_qa,
    token_f1,
)
from wideseek_env.tasks import GoldTable, Task


@pytest.mark.parametrize(("text", "want"), [
    ("The answer is \\boxed{Paris}.", "Paris"),
    ("\\boxed{1} then \\boxed{2}", "2"),  # the last box
    ("\\boxed{\\frac{1}{2}} ", "\\frac{1}{2}"),  # nested braces
    ("<think>\\boxed{wrong}</think> so \\boxed{ right }", "right"),  # reasoning is ignored
    ("\\boxed{unclosed", None),
    ("\\boxed{a} \\boxed{unclosed", "a"),
    ("no box at all", None),
    ("\\boxed{}", ""),
])
def test_extract_boxed(text: str, want: str | None) -> None:
    assert extract_boxed(text) == want


def test_normalisation_and_token_f1_by_hand() -> None:
    assert normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert normalize_answer("An Apple, a day") == "apple day"
    assert normalize_answer("北京市。") == "北 京 市"
    # pred "the big red dog" -> [big, red, dog]; gold "red dog" -> [red, dog]: P 2/3, R 1
    assert token_f1("the big red dog", "red dog") == pytest.approx(2 * (2 / 3) / (2 / 3 + 1))
    assert token_f1("北京", "北京市") == pytest.approx(2 * 1 * (2 / 3) / (1 + 2 / 3))
    assert token_f1("x", "y") == 0.0 and token_f1("", "") == 1.0 and token_f1("b", "") == 0.0


def test_score_qa_takes_the_best_accepted_answer() -> None:
    task = qa_task("q1", "Where?", ["Paris", "Paris, France"])
    assert task_kind(task) == "qa" and isinstance(task, Task)
    s = score_qa(task, "\\boxed{paris france}")
    assert s == QAScore(1.0, 1.0, 1.0, True, False, "paris france")
    s = score_qa(task, "\\boxed{France}")
    assert (s.correct, s.exact_match) == (0.0, 0.0) and s.token_f1 == pytest.approx(2 / 3)
    assert score_qa(task, "Paris") == QAScore(0.0, 0.0, 0.0, False, False, None)


def test_qa_tasks_need_answers_and_tables_stay_tables() -> None:
    with pytest.raises(ValueError, match="answers must be non-empty"):
        qa_task("q", "?", [])
    with pytest.raises(ValueError, match="answers must be non-empty"):
        qa_task("q", "?", [" "])
    table = Task("t", "q", "en", ("a",), ("a",), {}, GoldTable(("A",), (("x",),)))
    assert task_kind(table) == "table" and not isinstance(table, QATask)


def test_aggregate_over_tasks_and_repeats() -> None:
    right, wrong = QAScore(1.0, 1.0, 1.0, True, False, "a"), QAScore(0.0, 0.0, 0.5, True, False, "b")
    none = QAScore(0.0, 0.0, 0.0, False, False, None)
    out = aggregate_qa({"t1": [right, wrong], "t2": [wrong, wrong], "t3": [none]})
    assert out["tasks"] == 3 and out["runs"] == 5 and out["runs_per_task"] == 2
    assert out["correct"] == pytest.approx(1 / 5) and out["parse_ok"] == pytest.approx(4 / 5)
    assert out["accuracy_avg@n"] == pytest.approx((0.5 + 0 + 0) / 3)
    assert out["accuracy_pass@n"] == pytest.approx(1 / 3)
    assert out["token_f1_avg@n"] == pytest.approx((0.75 + 0.5 + 0) / 3)
    with pytest.raises(ValueError):
        aggregate_qa({})
