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

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from wideseek_env.bench import configure_kind, markdown_table, run_bench, write_results

RESULTS = Path(__file__).parent / "results"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    configure_kind(parser, "width", RESULTS / "tmp" / "width_scaling")
    parser.add_argument("--results-dir", type=Path, default=RESULTS,
                        help="where the result files go (default benchmarks/results)")
    parser.add_argument("--name", default="width_scaling",
                        help="stem of the result files (default width_scaling)")
    args = parser.parse_args(argv)
    records, meta = run_bench("width", args.widths, args, args.out)
    write_results("width", records, meta, args.results_dir, stem=args.name)
    print(markdown_table("width", records))
    print(f"\nwritten: {args.results_dir / args.name}.md (.json, .png, .meta.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
