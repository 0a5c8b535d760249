"""Width scaling: item F1 of a policy against the number of subagents per ``delegate`` call.

The multi-agent env at widths 1, 2, 4, 8, 16 with every other budget fixed (lead 10 turns,
subagents 20 turns, 32k tokens of context each), on a world's test split; by default the scripted
baseline on the embedded default world. Per-width runs (traces, resumable) go to
``benchmarks/results/tmp/width_scaling/``; the table, records and plot to
``benchmarks/results/width_scaling.{md,json,png}`` (plus ``.meta.json``: machine, versions,
command line, wall time).

    python benchmarks/width_scaling.py                               # scripted, default world
    python benchmarks/width_scaling.py --limit 100 --widths 1,4,16   # quicker
    python benchmarks/width_scaling.py --policy openai --base-url http://gpu0:8000/v1 --model M

Every option of ``wideseek bench width`` is accepted (``--help`` lists them).
"""

from __future__ import annotations

import sys
from pathlib import Path

from wideseek_env.bench import script_main

if __name__ == "__main__":
    sys.exit(script_main("width", __doc__, Path(__file__).parent / "results"))
