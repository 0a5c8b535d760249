"""``wideseek score`` end to end on the example tasks shipped in ``docs/examples/``."""

from __future__ import annotations

import json
from pathlib import Path

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
