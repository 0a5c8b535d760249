"""The scorer on the 200 real WideSearch tasks, and on arbitrary text (Hypothesis).

Needs ``../shared/widesearch`` (or ``$WIDESEEK_SHARED/widesearch``); skipped without it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wideseek_env.scoring import render_markdown_table, score_response
from wideseek_env.scoring.gold import gold_column_index
from wideseek_env.tasks import Task, load_widesearch

SHARED = Path(os.environ.get("WIDESEEK_SHARED", Path(__file__).resolve().parents[3] / "shared"))
WIDESEARCH = SHARED / "widesearch"
needs_data = pytest.mark.skipif(
    not (WIDESEARCH / "widesearch.jsonl").is_file(),
    reason=f"WideSearch data not found at {WIDESEARCH} (set WIDESEEK_SHARED)",
)


@pytest.fixture(scope="module")
def tasks() -> list[Task]:
    return load_widesearch(WIDESEARCH / "widesearch.jsonl", WIDESEARCH / "widesearch_gold")


def gold_answer(task: Task) -> str:
    index = gold_column_index(task.gold.columns)
    columns = [task.gold.columns[index[c]] for c in task.required]
    rows = [[row[index[c]] for c in task.required] for row in task.gold.rows]
    return "Here is the final table.\n\n" + render_markdown_table(columns, rows)


@needs_data
def test_every_gold_table_scores_perfectly(tasks):
    assert len(tasks) == 200
    assert sum(len(t.gold.rows) * len(t.required) for t in tasks) > 89_000
    failures = []
    for task in tasks:
        record = score_response(task, gold_answer(task))
        if not (record.item_f1 == 1.0 and record.row_f1 == 1.0 and record.success):
            failures.append((task.instance_id, record))
    assert failures == []


@needs_data
def test_dropping_half_the_rows_halves_recall(tasks):
    task = next(t for t in tasks if t.instance_id == "ws_en_001")
    index = gold_column_index(task.gold.columns)
    columns = [task.gold.columns[index[c]] for c in task.required]
    rows = [[row[index[c]] for c in task.required] for row in task.gold.rows]
    record = score_response(task, render_markdown_table(columns, rows[::2]))
    kept = len(rows[::2])
    assert record.item_precision == 1.0
    assert record.item_recall == pytest.approx(kept / len(rows))
    assert record.row_recall == pytest.approx(kept / len(rows))


_SOME_TASKS = ("ws_en_001", "ws_en_038", "ws_en_053", "ws_zh_001", "ws_zh_085")


@needs_data
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    which=st.sampled_from(_SOME_TASKS),
    text=st.one_of(
        st.text(max_size=400),
        st.lists(
            st.text(alphabet=st.sampled_from('|-: \n"abc12.,%*`年月NA'), max_size=30), max_size=12
        ).map("\n".join),
    ),
    fence=st.booleans(),
)
def test_arbitrary_text_never_raises_and_scores_stay_in_range(tasks, which, text, fence):
    task = next(t for t in tasks if t.instance_id == which)
    response = f"```markdown\n{text}\n```" if fence else text
    record = score_response(task, response)
    values = [
        getattr(record, f)
        for f in (
            "item_precision",
            "item_recall",
            "item_f1",
            "row_precision",
            "row_recall",
            "row_f1",
        )
    ]
    assert all(0.0 <= v <= 1.0 for v in values)
    if not record.parse_ok:
        assert values == [0.0] * 6 and not record.success


@needs_data
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_perturbed_gold_answers_stay_in_range(tasks, data):
    task = data.draw(st.sampled_from([t for t in tasks if t.instance_id in _SOME_TASKS]))
    index = gold_column_index(task.gold.columns)
    rows = [[row[index[c]] for c in task.required] for row in task.gold.rows]
    picked = data.draw(st.lists(st.sampled_from(rows), max_size=20))
    edits = data.draw(
        st.lists(
            st.tuples(st.integers(0, 19), st.integers(0, 20), st.text(max_size=8)), max_size=10
        )
    )
    picked = [list(r) for r in picked]
    for i, j, value in edits:
        if i < len(picked) and j < len(task.required):
            picked[i][j] = value.replace("|", "/").replace("`", "'")
    record = score_response(task, render_markdown_table(list(task.required), picked))
    assert record.parse_ok
    assert 0.0 <= record.item_f1 <= 1.0 and 0.0 <= record.row_f1 <= 1.0
    assert record.item_precision >= record.row_precision - 1e-12  # a right row has right cells
