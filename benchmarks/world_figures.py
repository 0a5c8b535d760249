"""The world-card figures of several built worlds side by side, with WideSearch's.

Builds (or reuses) the default world of both tiers and, when the HybridQA data is there, the
HybridQA world of both tiers; then writes one table per split with every figure of
``wideseek world info`` (the targets of the worlds-v2 issue in the last column) and the build
cost of each world:

    python benchmarks/world_figures.py                       # default v2 + easy (+ HybridQA)
    python benchmarks/world_figures.py --world a=/path/to/world --world b=/other

Results: ``benchmarks/results/world_figures.{md,json}`` and each world's card as
``benchmarks/results/world_card_<name>.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from wideseek_env.worlds import World, build_default_world, default_world_path
from wideseek_env.worlds.cli import FIGURES, _fmt, _get
from wideseek_env.worlds.sources_hybridqa import shared_dir

RESULTS = Path(__file__).resolve().parent / "results"


def _build(name: str, out: Path, rebuild: bool) -> Path:
    if out.is_dir() and (out / "world.json").is_file() and not rebuild:
        return out
    if out.exists():
        shutil.rmtree(out)
    t0 = time.perf_counter()
    if name == "default-v2":
        build_default_world(out, tier="v2")
    elif name == "default-easy":
        build_default_world(out, tier="easy")
    elif name == "hybridqa-v2":
        from wideseek_env.worlds.v2.hybridqa import build_hybridqa_v2_world

        build_hybridqa_v2_world(shared_dir() / "hybridqa", out)
    elif name == "hybridqa-easy":
        from wideseek_env.worlds.sources_hybridqa import build_hybridqa_world

        build_hybridqa_world(shared_dir() / "hybridqa", out)
    print(f"built {name} in {time.perf_counter() - t0:.0f} s")
    return out


def table(cards: dict[str, dict], split: str) -> str:
    names = list(cards)
    ws = next((c["figures"]["widesearch"] for c in cards.values()
               if isinstance(c.get("figures", {}).get("widesearch"), dict)), None)
    head = ["figure", "WideSearch (200)", *names, "target (v2, test)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, path, fmt, target in FIGURES:
        kind, key = path.split(".", 1)
        row = [label, _fmt(ws.get(key) if ws and kind == "tasks" else None, fmt)]
        row += [_fmt(_get(c.get("figures", {}), f"{kind}.{split}.{key}"), fmt)
                for c in cards.values()]
        lines.append("| " + " | ".join([*row, target]) + " |")
    cf = [_fmt((c.get("counterfactual") or {}).get("share_differs"), "{:.0%}")
          for c in cards.values()]
    lines.append("| test facts that differ from the source | — | " + " | ".join(cf) + " | "
                 "most |")
    build = [f"{c['build']['seconds_total']:.0f} s, {c['build']['peak_rss_mib']:.0f} MiB"
             for c in cards.values()]
    lines.append("| build (wall, peak RSS) | — | " + " | ".join(build) + " | "
                 "default: <= 2 min, <= 1 GiB |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--world", action="append", default=None,
                   help="NAME=PATH of a built world (repeatable); default: build the standard ones")
    p.add_argument("--cache", type=Path, default=RESULTS / "tmp" / "worlds",
                   help="where the standard worlds are built")
    p.add_argument("--rebuild", action="store_true", help="rebuild the standard worlds")
    p.add_argument("--results-dir", type=Path, default=RESULTS)
    args = p.parse_args()
    worlds: dict[str, Path] = {}
    if args.world:
        for spec in args.world:
            name, _, path = spec.partition("=")
            worlds[name] = Path(path)
    else:
        names = ["default-v2", "default-easy"]
        if (shared_dir() / "hybridqa" / "tables.jsonl.gz").is_file():
            names += ["hybridqa-v2", "hybridqa-easy"]
        for name in names:
            cached = default_world_path(tier="v2" if name == "default-v2" else "easy")
            if name.startswith("default") and (cached / "world.json").is_file() and \
                    not args.rebuild:
                worlds[name] = cached
            else:
                worlds[name] = _build(name, args.cache / name, args.rebuild)
    cards = {name: World.load(path).card for name, path in worlds.items()}
    args.results_dir.mkdir(parents=True, exist_ok=True)
    md = ["# World figures side by side", "",
          "Every figure is printed by `wideseek world info` and kept in each world's "
          "`world.json`; WideSearch's are computed on its 200 tasks (task figures only: it has "
          "no corpus). Made by `python benchmarks/world_figures.py`.", ""]
    for split in ("test", "train"):
        md += [f"## {split} split", "", table(cards, split), ""]
    (args.results_dir / "world_figures.md").write_text("\n".join(md), encoding="utf-8")
    (args.results_dir / "world_figures.json").write_text(
        json.dumps({n: {"figures": c.get("figures"), "counterfactual": c.get("counterfactual"),
                        "build": c.get("build"), "answerability": c.get("answerability"),
                        "tier": c.get("tier", "easy")} for n, c in cards.items()},
                   indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    for name, card in cards.items():
        (args.results_dir / f"world_card_{name}.json").write_text(
            json.dumps(card, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
