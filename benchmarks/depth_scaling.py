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

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from wideseek_env.bench import configure_kind, markdown_table, run_bench, write_results

RESULTS = Path(__file__).parent / "results"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    configure_kind(parser, "depth", RESULTS / "tmp" / "depth_scaling")
    parser.add_argument("--results-dir", type=Path, default=RESULTS,
                        help="where the result files go (default benchmarks/results)")
    parser.add_argument("--name", default="depth_scaling",
                        help="stem of the result files (default depth_scaling)")
    args = parser.parse_args(argv)
    records, meta = run_bench("depth", args.turns, args, args.out)
    write_results("depth", records, meta, args.results_dir, stem=args.name)
    print(markdown_table("depth", records))
    print(f"\nwritten: {args.results_dir / args.name}.md (.json, .png, .meta.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
