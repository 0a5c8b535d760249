"""`benchmarks/copy_probe.py`: the two synthetic copying tasks are what they claim, and a short
run writes its curve."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_tasks_label_exactly_the_copy_and_only_fixed_keeps_its_offset(load_benchmark):
    probe = load_benchmark("copy_probe")
    a, b, c, d = probe.MARKERS
    rng = random.Random(0)
    offsets = {"fixed": set(), "content": set()}
    for task in offsets:
        for _ in range(200):
            x, y = probe.example(task, rng, 6144)
            assert len(x) == len(y) and x.count(a) == x.count(b) == x.count(c) == 1
            name = x[x.index(a) + 1: x.index(b)]
            copy = x[x.index(c) + 1: x.index(c) + 1 + len(name)]
            assert copy == name and all(t >= probe.FIRST_ID for t in name)
            labelled = [(i, t) for i, t in enumerate(y) if t != -100]
            tail = [d] if task == "content" else []
            assert [t for _, t in labelled] == name + tail
            assert labelled[0][0] == x.index(c) + 1  # the first label is the first copied token
            offsets[task].add(x.index(c) - x.index(a))
    assert len(offsets["fixed"]) == 1 and len(offsets["content"]) > 20


def test_a_short_run_writes_its_curve(tmp_path):
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "copy_probe.py"), "--task", "content",
         "--steps", "2", "--every", "1", "--batch", "4", "--out", str(tmp_path),
         "--set", "num_hidden_layers=1"],
        capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads((tmp_path / "copy_probe_content_num_hidden_layers1.json").read_text())
    assert [p["step"] for p in result["curve"]] == [1, 2]
    assert all(0 <= p["first_token_acc"] <= 1 for p in result["curve"])
    assert result["shape"]["num_hidden_layers"] == 1
    bad = subprocess.run([sys.executable, str(REPO / "benchmarks" / "copy_probe.py"), "--set",
                          "nope=1", "--out", str(tmp_path)], capture_output=True, text=True)
    assert bad.returncode != 0 and "--set nope" in bad.stderr
