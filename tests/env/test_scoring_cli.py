"""``wideseek score`` end to end on the example tasks shipped in ``docs/examples/``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wideseek_env.cli import main
from wideseek_env.scoring import score_response
from wideseek_env.tasks import load_widesearch

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def test_score_command_copies_fields_adds_scores_and_summarises(tmp_path, capsys):
    out = tmp_path / "scores.jsonl"
    code = main([
        "score", "--tasks", str(EXAMPLES / "tasks.jsonl"), "--gold-dir", str(EXAMPLES / "gold"),
        "--responses", str(EXAMPLES / "responses.jsonl"), "--out", str(out), "--quiet",
    ])  # fmt: skip
    assert code == 0
    inputs = [json.loads(line) for line in (EXAMPLES / "responses.jsonl").read_text().splitlines()]
    outputs = [json.loads(line) for line in out.read_text().splitlines()]
    tasks = {t.instance_id: t for t in load_widesearch(EXAMPLES / "tasks.jsonl", EXAMPLES / "gold")}
    assert len(outputs) == len(inputs)
    for src, got in zip(inputs, outputs):
        assert {k: got[k] for k in src} == src  # every input field is copied
        assert {k: v for k, v in got.items() if k not in src} == score_response(
            tasks[src["instance_id"]], src["response"]
        ).as_dict()
    printed = capsys.readouterr().out
    assert "mean item_f1" in printed and "success_pass@3" in printed


def test_score_command_reports_bad_input(tmp_path, capsys):
    responses = tmp_path / "r.jsonl"
    responses.write_text(json.dumps({"instance_id": "nope", "response": "x"}) + "\n")
    code = main([
        "score", "--tasks", str(EXAMPLES / "tasks.jsonl"), "--gold-dir", str(EXAMPLES / "gold"),
        "--responses", str(responses), "--out", str(tmp_path / "o.jsonl"), "--quiet",
    ])  # fmt: skip
    assert code == 2
    assert "r.jsonl:1: field 'instance_id': unknown task 'nope'" in capsys.readouterr().err


def test_score_explain_writes_explanations_whose_totals_match(tmp_path):
    from wideseek_env.scoring.explain import ScoreExplanation

    out = tmp_path / "scores.jsonl"
    code = main([
        "score", "--tasks", str(EXAMPLES / "tasks.jsonl"), "--gold-dir", str(EXAMPLES / "gold"),
        "--responses", str(EXAMPLES / "responses.jsonl"), "--out", str(out), "--quiet",
        "--explain",
    ])  # fmt: skip
    assert code == 0
    outputs = [json.loads(line) for line in out.read_text().splitlines()]
    assert outputs and all("explanation" in o for o in outputs)
    for o in outputs:
        ex = ScoreExplanation.from_dict(o["explanation"])
        assert o["explanation"]["totals"] == ex.totals()
        t = ex.totals()
        if o["parse_ok"]:
            assert o["item_recall"] == t["item_tp"] / (t["gold_rows"] * t["columns"])
            assert o["row_recall"] == t["row_tp"] / t["gold_rows"]
        else:
            assert ex.failure and o["item_f1"] == 0.0


def _score(tmp_path, responses: bytes, capsys) -> tuple[int, str]:
    path = tmp_path / "r.jsonl"
    path.write_bytes(responses)
    code = main([
        "score", "--tasks", str(EXAMPLES / "tasks.jsonl"), "--gold-dir", str(EXAMPLES / "gold"),
        "--responses", str(path), "--out", str(tmp_path / "o.jsonl"), "--quiet",
    ])  # fmt: skip
    return code, capsys.readouterr().err.strip()


def _line(**fields) -> bytes:
    return json.dumps(fields).encode() + b"\n"


@pytest.mark.parametrize("responses,message", [
    (_line(instance_id="ex_en_planets", run=0), "r.jsonl:1: field 'response': missing"),
    (_line(instance_id="ex_en_planets", response="a", run=0) + b"\n"
     + _line(instance_id="ex_en_planets", response="b", run=0),
     "r.jsonl:3: field 'run': instance 'ex_en_planets' run 0 is already on line 1"),
    (_line(instance_id="ex_en_planets", response="a")
     + _line(instance_id="ex_en_planets", response="a"),
     "r.jsonl:2: field 'run': instance 'ex_en_planets' run 0 is already on line 1"),
    (_line(instance_id="ex_en_planets", response="a", run=[1]), "r.jsonl:1: field 'run'"),
    (_line(instance_id="ex_en_planets", response=3), "r.jsonl:1: field 'response'"),
    (_line(instance_id="ex_en_planets", response="a") + b'{"instance_id": "ex_en_planets", '
     b'"response": "caf\xe9"}\n', "r.jsonl:2: not UTF-8 (byte 0xe9 at column 50)"),
])
def test_score_refuses_what_it_would_score_silently(tmp_path, capsys, responses: bytes,
                                                    message: str) -> None:
    code, err = _score(tmp_path, responses, capsys)
    assert code == 2 and message in err and "\n" not in err
    assert not (tmp_path / "o.jsonl").exists()


def test_score_takes_null_as_no_answer_and_distinct_runs(tmp_path, capsys) -> None:
    code, _ = _score(tmp_path, _line(instance_id="ex_en_planets", response=None, run=0)
                     + _line(instance_id="ex_en_planets", response="x", run="b"), capsys)
    assert code == 0
    assert [json.loads(x)["item_f1"] for x in (tmp_path / "o.jsonl").read_text().splitlines()] \
        == [0.0, 0.0]


def test_gold_rows_with_missing_cells_are_refused(tmp_path) -> None:
    from wideseek_env.tasks import TaskFormatError, read_gold_csv

    (tmp_path / "g.csv").write_text("a,b,c\n1,2,3\n4,5\n", encoding="utf-8")
    with pytest.raises(TaskFormatError, match=r"g\.csv:3: row has 2 fields, the header has 3"):
        read_gold_csv(tmp_path / "g.csv")
