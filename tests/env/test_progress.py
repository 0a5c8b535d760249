"""Progress bars in a log file: whole lines, a few of them, never carriage returns."""

from __future__ import annotations

import io
import subprocess
import sys
import time

from wideseek_env.progress import bar


def test_a_bar_in_a_log_writes_a_few_whole_lines() -> None:
    log = io.StringIO()
    b = bar(total=20_000, desc="episodes", unit="ep", stream=log, log_interval_s=0.2)
    t0 = time.monotonic()
    for _ in range(20_000):
        b.update(1)
    while time.monotonic() - t0 < 0.5:  # long enough for at least one timed line
        b.update(0)
        time.sleep(0.05)
    b.close()
    text = log.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert 2 <= len(lines) <= 8, lines  # not one per update
    assert lines[-1].startswith("episodes: 100%") and "20000/20000" in lines[-1]


def test_eval_in_a_log_has_no_carriage_returns(tmp_path) -> None:
    from wideseek_env.worlds import build_small_world

    world = build_small_world(tmp_path / "w")
    done = subprocess.run([sys.executable, "-m", "wideseek_env.cli", "eval", "--world",
                           str(world), "--limit", "12", "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr and "width 10: 100%" in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("width 10:")]
    assert len(lines) <= 3, lines  # the start and the end, not one line per episode
