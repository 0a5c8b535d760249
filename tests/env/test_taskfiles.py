"""Task files in WideSeek-R1's released layouts (width, depth, hybrid, test; JSON, JSONL, gzip),
written here in those record layouts, and every bad record's error (file, line, field)."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from wideseek_env.qa import QATask
from wideseek_env.scoring import score_response
from wideseek_env.taskfiles import load_task_file, mix_tasks, record_kind, split_by_kind
from wideseek_env.tasks import TaskFormatError, load_tasks

MD = ("| Country Name | Capital | Population (M) |\n|:---|---|---:|\n| France | Paris | 68.2 |\n"
      "| Japan | Tokyo | 124.5 |")
WIDTH = {"question": "List France and Japan with capital and population.", "answer": MD,
         "unique_columns": ["Country Name"], "is_markdown": True, "instance_id": "width_00001"}
DEPTH_STR = {"question": "Who wrote Hamlet?", "answer": "William Shakespeare",
             "is_markdown": False, "instance_id": "depth_00001"}
DEPTH_LIST = {"question": "Which river flows through Paris?", "answer": ["Seine", "the Seine"],
              "is_markdown": False, "instance_id": "depth_00002"}
TEST = {"instance_id": "ws_en_001", "query": "List France and Japan ...", "answer": MD,
        "language": "en",
        "evaluation": json.dumps({
            "unique_columns": ["Country Name"], "required": ["Country Name", "Capital", "Population (M)"],
            "eval_pipeline": {"Population (M)": {"preprocess": ["extract_number"],
                                                 "metric": ["number_near"], "criterion": 0.05},
                              "Capital": {"preprocess": ["norm_str"], "metric": ["exact_match"]}}})}


def jsonl(path: Path, records: list, gz: bool = False) -> Path:
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_width_depth_hybrid_and_test_layouts(tmp_path: Path) -> None:
    (width,) = load_task_file(jsonl(tmp_path / "width_20k.jsonl", [WIDTH]))
    assert width.unique_columns == ("countryname",) and width.gold.rows[1] == ("Japan", "Tokyo", "124.5")
    assert width.required == ("countryname", "capital", "population(m)")
    depth = load_task_file(jsonl(tmp_path / "depth_20k.jsonl.gz", [DEPTH_STR, DEPTH_LIST], gz=True))
    assert [t.answers for t in depth] == [("William Shakespeare",), ("Seine", "the Seine")]
    assert all(isinstance(t, QATask) for t in depth)
    hybrid = load_task_file(jsonl(tmp_path / "hybrid.jsonl", [WIDTH, DEPTH_STR, DEPTH_LIST]))
    tables, qa = split_by_kind(hybrid)
    assert [t.instance_id for t in tables] == ["width_00001"] and len(qa) == 2
    # the test layout: inline markdown gold, a non-normalised `required`, the pipeline used
    path = tmp_path / "test.json"
    path.write_text(json.dumps([TEST]), encoding="utf-8")
    (test,) = load_task_file(path)
    assert test.required == ("countryname", "capital", "population(m)")
    assert test.eval_pipeline["population(m)"].metric == ("number_near",)
    answer = "```markdown\n| Country Name | Capital | Population (M) |\n|-|-|-|\n| France | Paris | 69 |\n```"
    assert score_response(test, answer).item_precision == 1.0
    # load_tasks reads them too (inline gold, gzip)
    assert load_tasks(path) == [test] and load_tasks(tmp_path / "depth_20k.jsonl.gz") == depth


def test_kind_from_the_record() -> None:
    assert record_kind({"question": "q", "answer": MD}) == "table"
    assert record_kind({"question": "q", "answer": "a | b"}) == "qa"
    assert record_kind({"question": "q", "answer": ["a"]}) == "qa"
    assert record_kind({"question": "q", "answer": MD, "is_markdown": False}) == "qa"
    assert record_kind({"query": "q", "evaluation": "{}"}) == "widesearch"


def test_hybridqa_question_files_read_as_depth(tmp_path: Path) -> None:
    rec = {"question_id": "00153f", "question": "What is the middle name ...?", "table_id": "T_0",
           "answer": "Jerry"}
    (task,) = load_task_file(jsonl(tmp_path / "questions_dev.jsonl.gz", [rec], gz=True))
    assert task.instance_id == "00153f" and task.answers == ("Jerry",)
    assert task.meta["table_id"] == "T_0"


BAD = [
    ({**WIDTH, "is_markdown": "yes"}, "is_markdown", "expected true or false"),
    ({**WIDTH, "answer": "no table here"}, "answer", "not a markdown table"),
    ({**WIDTH, "answer": 3}, "answer", "must be a markdown table"),
    ({**WIDTH, "unique_columns": "Country Name"}, "unique_columns", "list of column names"),
    ({**WIDTH, "unique_columns": ["Country Name", "country name"]}, "unique_columns", "collide"),
    ({**WIDTH, "unique_columns": ["Capital City"]}, "evaluation.unique_columns", "not in required"),
    ({**WIDTH, "evaluation": {"required": ["Country Name", "Area"]}}, "evaluation.required",
     "not in the answer table"),
    ({**WIDTH, "evaluation": "{not json"}, "evaluation", "invalid JSON"),
    ({k: v for k, v in WIDTH.items() if k != "unique_columns"}, "unique_columns", "missing"),
    ({**DEPTH_LIST, "answer": ["Seine", None]}, "answer[1]", "non-empty string"),
    ({**DEPTH_STR, "answer": []}, "answer", "empty list"),
    ({**DEPTH_STR, "question": ""}, "question", "non-empty string"),
    ({**DEPTH_STR, "language": 7}, "language", "expected a string"),
    ({"question": "q"}, "answer", "missing"),
]


@pytest.mark.parametrize(("record", "field", "words"), BAD)
def test_bad_records_name_file_line_and_field(tmp_path: Path, record: dict, field: str,
                                              words: str) -> None:
    good = {"question": "Fine?", "answer": "yes", "instance_id": "good"}
    path = jsonl(tmp_path / "data.jsonl", [good, record])
    with pytest.raises(TaskFormatError) as err:
        load_task_file(path)
    message = str(err.value)
    assert message.startswith(f"{path}:2: field {field!r}:"), message
    assert words in message
    assert (err.value.line, err.value.field) == (2, field)


def test_json_arrays_name_the_record_index(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text(json.dumps([DEPTH_STR, {**DEPTH_LIST, "answer": [1.5, True]}]), encoding="utf-8")
    with pytest.raises(TaskFormatError, match=re.escape("field '[1].answer[1]'")):
        load_task_file(path)
    path.write_text(json.dumps([WIDTH, {**WIDTH, "instance_id": "x", "evaluation": {
        "required": ["country name"], "unique_columns": ["country name"],
        "eval_pipeline": {"country name": {"metric": ["nope"]}}}}]), encoding="utf-8")
    with pytest.raises(TaskFormatError, match=re.escape("field '[1].evaluation.eval_pipeline."
                                                        "countryname.metric'")):
        load_task_file(path)


def test_file_level_errors(tmp_path: Path) -> None:
    with pytest.raises(TaskFormatError, match="no such task file"):
        load_task_file(tmp_path / "missing.jsonl")
    dup = jsonl(tmp_path / "dup.jsonl", [DEPTH_STR, DEPTH_STR])
    with pytest.raises(TaskFormatError, match=r"dup.jsonl:2: field 'instance_id': duplicate"):
        load_task_file(dup)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(DEPTH_STR) + "\n{oops\n", encoding="utf-8")
    with pytest.raises(TaskFormatError, match=r"bad.jsonl:2: invalid JSON"):
        load_task_file(bad)
    mixed = jsonl(tmp_path / "mixed.jsonl", [DEPTH_STR, {"query": "q", "evaluation": "{}",
                                                         "instance_id": "w"}])
    with pytest.raises(TaskFormatError, match=r"mixed.jsonl:2: field 'answer': missing: this "
                                              r"file mixes WideSearch records"):
        load_task_file(mixed)
    (tmp_path / "not.gz").write_bytes(b"not gzip")
    with pytest.raises(TaskFormatError, match="cannot be read"):
        load_task_file(tmp_path / "not.gz")


def test_mix_by_depth_share() -> None:
    from dataclasses import replace

    from wideseek_env.env.toy import toy_tasks
    from wideseek_env.qa import qa_task

    table = [replace(t, instance_id=f"{t.instance_id}-{k}") for k in range(3) for t in toy_tasks()]
    qa = [qa_task(f"q{i}", "?", ["a"]) for i in range(100)]
    mixed = mix_tasks(table, qa, 0.25, seed=1)
    n_qa = sum(isinstance(t, QATask) for t in mixed)
    # every table task, and a third as many QA tasks: 25 % of the whole, nothing repeated
    assert len(mixed) == len(table) + len(table) // 3 and n_qa == len(table) // 3
    assert len({t.instance_id for t in mixed}) == len(mixed)
    assert mixed == mix_tasks(table, qa, 0.25, seed=1) != mix_tasks(table, qa, 0.25, seed=2)
    assert all(isinstance(t, QATask) for t in mix_tasks(table, qa, 1.0))
    with pytest.raises(ValueError, match="within"):
        mix_tasks(table, qa, 1.5)
    with pytest.raises(ValueError, match="needs QA tasks"):
        mix_tasks(table, [], 0.5)


def test_wideseek_score_scores_qa_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from wideseek_env.cli import main

    tasks = jsonl(tmp_path / "hybrid.jsonl", [WIDTH, DEPTH_STR, DEPTH_LIST])
    answers = jsonl(tmp_path / "answers.jsonl", [
        {"instance_id": "depth_00001", "response": "\\boxed{william shakespeare}"},
        {"instance_id": "depth_00002", "response": "The Loire."},
        {"instance_id": "width_00001", "response": f"```markdown\n{MD}\n```"}])
    assert main(["score", "--tasks", str(tasks), "--responses", str(answers), "--out",
                 str(tmp_path / "out.jsonl"), "--quiet"]) == 0
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [o.get("correct") for o in out[:2]] == [1.0, 0.0] and out[1]["parse_ok"] is False
    assert out[2]["item_f1"] == 1.0
    printed = capsys.readouterr().out
    assert "scored 2 QA answers over 2 tasks" in printed and "accuracy 0.5000" in printed
