"""``wideseek bench`` and the two scaling scripts in benchmarks/, with tiny budgets on a small world."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from wideseek_env.bench import markdown_table
from wideseek_env.cli import main
from wideseek_env.worlds import build_small_world

REPO = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RECORD_KEYS = {"item_f1", "row_f1", "success", "critical_path_turns", "total_turns", "tokens"}


@pytest.fixture(scope="module")
def world_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_small_world(tmp_path_factory.mktemp("world") / "small")


def test_markdown_table() -> None:
    rows = [{"width": 1, "item_f1": 0.5, "row_f1": 0.25, "success": 0.0, "critical_path_turns": 30.0,
             "total_turns": 30.0, "tokens": 1234.4, "tokens_estimated": True},
            {"width": 8, "item_f1": 0.875, "row_f1": 0.75, "success": 0.5,
             "critical_path_turns": 12.25, "total_turns": 60.0, "tokens": 99.0,
             "tokens_estimated": False}]
    assert markdown_table("width", rows).splitlines() == [
        "| width | item F1 | row F1 | success | critical-path turns | total turns | tokens |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        "| 1 | 0.5000 | 0.2500 | 0.0000 | 30.0 | 30.0 | ~1,234 |",
        "| 8 | 0.8750 | 0.7500 | 0.5000 | 12.2 | 60.0 | 99 |",
    ]


def test_bench_width_command(world_path: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench"
    argv = ["bench", "width", "--widths", "1,4", "--world", str(world_path), "--limit", "6",
            "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| width | item F1 |" in printed and "\n| 4 | " in printed
    records = json.loads((out / "summary.json").read_text())
    assert [r["width"] for r in records] == [1, 4]
    assert all(set(r) >= RECORD_KEYS for r in records)
    assert records[1]["critical_path_turns"] < records[0]["critical_path_turns"]
    for r, width in zip(records, (1, 4)):  # each point is the summary of its own run
        run = json.loads((out / f"width_{width}" / "summary.json").read_text())
        assert r["item_f1"] == run["scores"]["item_f1_avg@n"] and run["episodes"] == 6
    assert (out / "scaling.png").read_bytes()[:8] == PNG_MAGIC
    assert "| width | item F1 |" in (out / "results.md").read_text()
    assert main(argv) == 0  # resumes: every point already done
    assert json.loads((out / "width_1" / "summary.json").read_text())["episodes_run_now"] == 0


@pytest.mark.parametrize(("script", "kind", "values"), [
    ("width_scaling.py", "width", ["--widths", "1,2"]),
    ("depth_scaling.py", "depth", ["--turns", "6,12"]),
])
def test_benchmark_scripts_smoke(world_path: Path, tmp_path: Path, script: str, kind: str,
                                 values: list[str]) -> None:
    stem = script.removesuffix(".py")
    cmd = [sys.executable, str(REPO / "benchmarks" / script), *values, "--world", str(world_path),
           "--limit", "3", "--out", str(tmp_path / "runs"), "--results-dir", str(tmp_path / "res"),
           "--no-progress"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    records = json.loads((tmp_path / "res" / f"{stem}.json").read_text())
    key = "width" if kind == "width" else "turns"
    assert [r[key] for r in records] == [int(v) for v in values[1].split(",")]
    assert all(set(r) >= RECORD_KEYS for r in records)
    assert (tmp_path / "res" / f"{stem}.png").read_bytes()[:8] == PNG_MAGIC
    meta = json.loads((tmp_path / "res" / f"{stem}.meta.json").read_text())
    assert meta["environment"]["cpu_count"] and script in meta["environment"]["command"]
    assert f"| {key} | item F1 |" in (tmp_path / "res" / f"{stem}.md").read_text()
