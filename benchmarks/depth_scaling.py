"""Depth scaling: item F1 of a single agent against its turn budget.

The single-agent env (one agent with ``search`` and ``access``, no subagents) at 10, 20, 40 and
80 turns on the same tasks, tools and scorer as the width benchmark: the paper's comparison of
giving one agent more turns against giving a lead more subagents. By default the scripted
baseline on the embedded default world's test split. Per-budget runs (traces, resumable) go to
``benchmarks/results/tmp/depth_scaling/``; the table, records and plot to
``benchmarks/results/depth_scaling.{md,json,png}`` (plus ``.meta.json``).

    python benchmarks/depth_scaling.py
    python benchmarks/depth_scaling.py --limit 100 --turns 10,40

Every option of ``wideseek bench depth`` is accepted (``--help`` lists them).
"""

from __future__ import annotations

import sys
from pathlib import Path

from wideseek_env.bench import script_main

if __name__ == "__main__":
    sys.exit(script_main("depth", __doc__, Path(__file__).parent / "results"))
