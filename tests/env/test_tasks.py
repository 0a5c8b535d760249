"""Task loaders (WideSearch and WideSeek-R1 layouts), the writer, and their error messages."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from wideseek_env.scoring import score_response
from wideseek_env.tasks import (
    DEFAULT_JUDGE_CRITERION,
    ColumnEval,
    GoldTable,
    Task,
    TaskFormatError,
    load_r1,
    load_tasks,
    load_widesearch,
    write_widesearch,
)

SHARED = Path(os.environ.get("WIDESEEK_SHARED", Path(__file__).resolve().parents[3] / "shared"))
WIDESEARCH = SHARED / "widesearch"

EVALUATION = {
    "unique_columns": ["name"],
    "required": ["name", "population(m)"],
    "eval_pipeline": {
        "name": {"preprocess": ["norm_str"], "metric": ["exact_match"]},
        "population(m)": {
            "preprocess": ["extract_number"],
            "metric": ["number_near"],
            "criterion": 0.05,
        },
    },
}


def write_files(tmp_path: Path, csv_text: str, evaluation=EVALUATION, extra: str = "") -> Path:
    gold = tmp_path / "gold"
    gold.mkdir(exist_ok=True)
    (gold / "t1.csv").write_bytes(csv_text.encode("utf-8"))
    record = {
        "instance_id": "t1",
        "query": "List them.",
        "evaluation": json.dumps(evaluation),
        "language": "en",
    }
    jsonl = tmp_path / "tasks.jsonl"
    jsonl.write_text(json.dumps(record) + "\n" + extra, encoding="utf-8")
    return jsonl


def test_widesearch_csv_with_bom_multiline_cells_and_extra_columns(tmp_path):
    csv_text = '\ufeffName,Population (M),Notes\r\nParis,2.1,"capital,\r\nof France"\r\n"Lyon ""la""",0.5,\r\n'
    jsonl = write_files(tmp_path, csv_text)
    (task,) = load_widesearch(jsonl, tmp_path / "gold")
    assert task.gold.columns == ("Name", "Population (M)", "Notes")
    assert task.gold.rows == (("Paris", "2.1", "capital,\r\nof France"), ('Lyon "la"', "0.5", ""))
    assert task.required == ("name", "population(m)") and task.unique_columns == ("name",)
    assert task.eval_pipeline["population(m)"] == ColumnEval(
        ("extract_number",), ("number_near",), 0.05
    )
    assert load_tasks(jsonl, tmp_path / "gold") == [task]
    record = score_response(
        task, '| Name | Population (M) |\n|-|-|\n| Paris | 2.1 |\n| "Lyon ""la""" | 0.52 |'
    )
    assert record.item_f1 == 1.0 and record.success


def test_writer_round_trip(tmp_path):
    tricky = (
        ("A, with comma", " leading space", '"quoted" start', "line\nbreak", ""),
        ("B", "NA", "-", "|pipe|", "  "),
    )
    task = Task(
        instance_id="rt_001", query="q?", language="zh", unique_columns=("k",),
        required=("k", "v"),
        eval_pipeline={"k": ColumnEval(("norm_str",), ("exact_match",)),
                       "v": ColumnEval(("norm_str",), ("llm_judge",), "same meaning")},
        gold=GoldTable(("K", "V", "x", "y", "z"), tricky), meta={"world": "w1", "split": "test"},
    )  # fmt: skip
    one_col = Task(
        "rt_002",
        "q",
        "en",
        ("k",),
        ("k",),
        {"k": ColumnEval()},
        GoldTable(("k",), (("a",), ("",), (" ",))),
    )
    write_widesearch([task, one_col], tmp_path / "out" / "t.jsonl", tmp_path / "out" / "t_gold")
    assert (tmp_path / "out" / "t_gold" / "rt_001.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    again = load_widesearch(tmp_path / "out" / "t.jsonl", tmp_path / "out" / "t_gold")
    assert again == [task, one_col]
    assert load_tasks(tmp_path / "out" / "t.jsonl") == again  # finds t_gold/ next to t.jsonl


@pytest.mark.skipif(
    not (WIDESEARCH / "widesearch.jsonl").is_file(), reason=f"no WideSearch data at {WIDESEARCH}"
)
def test_all_widesearch_tasks_load_and_round_trip(tmp_path):
    tasks = load_widesearch(WIDESEARCH / "widesearch.jsonl", WIDESEARCH / "widesearch_gold")
    assert len(tasks) == 200 and len({t.instance_id for t in tasks}) == 200
    assert {t.language for t in tasks} == {"en", "zh"}
    write_widesearch(tasks, tmp_path / "ws.jsonl", tmp_path / "ws_gold")
    assert load_widesearch(tmp_path / "ws.jsonl", tmp_path / "ws_gold") == tasks


def test_r1_layout_with_and_without_evaluation(tmp_path):
    answer = "| Country | Capital City |\n|---|---|\n| France | Paris |\n| Italy | Rome |"
    records = [
        {"question": "Capitals?", "answer": answer, "unique_columns": ["country"], "instance_id": "r1_zh_1"},
        {
            "question": "Capitals again?", "answer": answer, "unique_columns": ["Country"],
            "evaluation": json.dumps({"eval_pipeline": {"capitalcity": {"preprocess": ["norm_str"], "metric": ["exact_match"]}}}),
        },
    ]  # fmt: skip
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    first, second = load_r1(path)
    assert first.instance_id == "r1_zh_1" and first.language == "zh"
    assert first.required == ("country", "capitalcity") and first.unique_columns == ("country",)
    assert first.eval_pipeline["capitalcity"] == ColumnEval(
        ("norm_str",), ("llm_judge",), DEFAULT_JUDGE_CRITERION
    )
    assert first.gold == GoldTable(
        ("Country", "Capital City"), (("France", "Paris"), ("Italy", "Rome"))
    )
    assert second.instance_id == "train_00001" and second.language == "en"
    assert second.eval_pipeline["capitalcity"] == ColumnEval(("norm_str",), ("exact_match",))
    as_json = tmp_path / "train.json"
    as_json.write_text(json.dumps(records), encoding="utf-8")
    assert [t.gold for t in load_tasks(as_json)] == [first.gold, second.gold]
    assert score_response(first, answer).success


@pytest.mark.parametrize(
    ("mutate", "line", "field", "words"),
    [
        (lambda e: {**e, "unique_columns": ["nope"]}, 1, "evaluation.unique_columns", "not in required"),
        (lambda e: {**e, "required": ["Name"]}, 1, "evaluation.required", "not normalised"),
        (lambda e: {**e, "eval_pipeline": {"name": {"preprocess": ["norm_str"], "metric": ["exact_match"]}}},
         1, "evaluation.eval_pipeline.population(m)", "no pipeline entry"),
        (lambda e: {**e, "eval_pipeline": {**e["eval_pipeline"], "name": {"preprocess": ["upper"], "metric": ["exact_match"]}}},
         1, "evaluation.eval_pipeline.name.preprocess", "unknown step"),
        (lambda e: {**e, "eval_pipeline": {**e["eval_pipeline"], "population(m)": {"preprocess": [], "metric": ["number_near"]}}},
         1, "evaluation.eval_pipeline.population(m).criterion", "numeric tolerance"),
    ],
)  # fmt: skip
def test_bad_evaluation_names_file_line_and_field(tmp_path, mutate, line, field, words):
    jsonl = write_files(tmp_path, "Name,Population (M)\nParis,2.1\n", mutate(EVALUATION))
    with pytest.raises(TaskFormatError) as info:
        load_widesearch(jsonl, tmp_path / "gold")
    err = info.value
    assert (err.path, err.line, err.field) == (str(jsonl), line, field)
    assert words in str(err) and f"{jsonl}:{line}" in str(err)


def test_bad_files_name_file_line_and_field(tmp_path):
    jsonl = write_files(tmp_path, "Name,Population (M)\nParis,2.1\n", extra="{not json\n")
    with pytest.raises(TaskFormatError, match=r"tasks\.jsonl:2: invalid JSON"):
        load_widesearch(jsonl, tmp_path / "gold")
    jsonl = write_files(
        tmp_path,
        "Name,Population (M)\nParis,2.1\n",
        extra=json.dumps({"instance_id": "t2", "query": "q", "evaluation": "{}"}) + "\n",
    )
    with pytest.raises(TaskFormatError, match=r"tasks\.jsonl:2: field 'evaluation.required'"):
        load_widesearch(jsonl, tmp_path / "gold")
    jsonl = write_files(
        tmp_path,
        "Name,Population (M)\nParis,2.1\n",
        extra=json.dumps({"instance_id": "t3", "query": "q"}) + "\n",
    )
    with pytest.raises(TaskFormatError, match=r"tasks\.jsonl:2: field 'evaluation': missing"):
        load_widesearch(jsonl, tmp_path / "gold")
    jsonl = write_files(tmp_path, "Name,Population (M)\nParis,2.1,extra\n")
    with pytest.raises(TaskFormatError, match=r"t1\.csv:2: row has 3 fields"):
        load_widesearch(jsonl, tmp_path / "gold")
    jsonl = write_files(tmp_path, "Name,Inhabitants\nParis,2.1\n")
    with pytest.raises(
        TaskFormatError,
        match=r"t1\.csv:1: field 'evaluation.required': columns \['population\(m\)'\]",
    ):
        load_widesearch(jsonl, tmp_path / "gold")
    jsonl = write_files(tmp_path, 'Name,Population (M)\n"Paris,2.1\n')
    with pytest.raises(TaskFormatError, match=r"t1\.csv.*EOF inside a quoted field"):
        load_widesearch(jsonl, tmp_path / "gold")
    (tmp_path / "gold" / "t1.csv").unlink()
    with pytest.raises(
        TaskFormatError, match=r"tasks\.jsonl:1: field 'instance_id': no gold table"
    ):
        load_widesearch(jsonl, tmp_path / "gold")
    r1 = tmp_path / "r1.jsonl"
    r1.write_text(
        json.dumps({"question": "q", "answer": "no table here", "unique_columns": ["a"]}) + "\n"
    )
    with pytest.raises(TaskFormatError, match=r"r1\.jsonl:1: field 'answer': not a markdown table"):
        load_r1(r1)
    odd = tmp_path / "odd.jsonl"
    odd.write_text(json.dumps({"prompt": "q"}) + "\n")
    with pytest.raises(TaskFormatError, match="unknown layout"):
        load_tasks(odd)
