"""Compare models evaluated on the same tasks: item F1 by width, paired differences, format errors.

Each run is an evaluation folder of `python -m wideseek_rl.evaluate --out DIR` (one `wN/`
folder of `episodes.jsonl` per width). For every run and width the report gives item F1 with
its 95 % CI, the share of turns that were format errors, the subagents used per episode, the
facts found (correct non-key cells per episode: what width can add, where item F1 also counts
the entity names) and the entities delegated (the share of the task's gold rows whose key some
subtask that ran names, as a whole token; the world is the one the evaluation's `run.json`
names, or `--world`); then, paired by task (the same tasks, else an error naming run and
width), each run minus the baseline at every width, and each run's widest width minus its
narrowest (does width pay?), in item F1 and in facts found.
A plot shows item F1 against width per run.

Results: ``benchmarks/results/compare_<label>.{json,md,png}``.

Usage::

    python benchmarks/compare_evals.py runs/ev_sft runs/ev_grpo --names sft grpo \\
        --label nano_grpo
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from wideseek_env.tasks.records import Task
from wideseek_env.trace import read_traces
from wideseek_env.worlds import World
from wideseek_env.worlds.stats import bounded, entity_keys, norm_text
from wideseek_rl.evaluate import episode_table, mean_ci

RESULTS = Path(__file__).resolve().parent / "results"


def read_episodes(path: Path) -> list[dict[str, Any]]:
    f = path / "episodes.jsonl"
    if not f.exists():
        raise FileNotFoundError(f"{f}: not found")
    return read_traces(f)


def world_tasks(path: Path, override: Path | None = None) -> dict[str, Task] | None:
    """Task id → task of the world an evaluation folder ran on: ``override``, else the one
    its `wN/run.json` names (None when it names none: the entity figure is then left out)."""
    where: Path | str | None = override
    for run_json in [] if override else sorted(path.glob("w*/run.json")):
        where = (json.loads(run_json.read_text()).get("world") or {}).get("path")
        if where and not Path(where).is_dir():
            raise FileNotFoundError(f"{run_json}: its world {where} is not there (pass --world)")
        if where:
            break
    if not where:
        return None
    world = World.load(where, verify="none")
    return {t.instance_id: t for split in ("train", "test") for t in world.tasks(split)}


def entities_delegated(records: Sequence[Mapping[str, Any]],
                       tasks: Mapping[str, Task]) -> float:
    """Mean over episodes of the share of the task's entities (its gold rows' key cells) that
    some subagent's subtask names, case-insensitively: how much of the table the lead handed
    out. A subtask that never ran (a rejected call) hands out nothing."""
    shares = []
    for r in records:
        task = tasks.get(r["task_id"])
        if task is None:
            raise ValueError(f"task {r['task_id']!r} is not in the world the run names "
                             "(pass --world)")
        asked = norm_text(" \n".join(a["messages"][1]["content"] for a in r["agents"]
                                      if a["role"] != "lead" and len(a["messages"]) > 1))
        keys = entity_keys(task)
        shares.append(sum(all(bounded(norm_text(str(c))).search(asked) for c in k)
                          for k in keys) / max(len(keys), 1))
    return sum(shares) / max(len(shares), 1)


def facts(record: Mapping[str, Any]) -> float:
    """The answer's correct non-key cells (their scores summed, from the scorer's explanation):
    the facts the team found, as against the entity names item F1 also counts (a key cell is
    right whenever the answer lists the entity)."""
    return sum(float(c.get("score") or 0.0)
               for row in (record.get("explanation") or {}).get("rows") or []
               if row.get("gold_row") is not None
               for c in row.get("cells") or [] if c.get("verdict") in ("correct", "partial"))


def load_run(path: Path) -> dict[int, list[dict[str, Any]]]:
    """Width → episodes of an evaluation folder (its `wN/` subfolders)."""
    widths = sorted(int(p.name[1:]) for p in path.glob("w*") if p.name[1:].isdigit())
    if not widths:
        raise FileNotFoundError(f"{path}: no wN/ folders (is it `python -m "
                                "wideseek_rl.evaluate --out` output?)")
    return {w: read_episodes(path / f"w{w}") for w in widths}


def item_f1(record: Mapping[str, Any]) -> float:
    return float((record.get("metrics") or {}).get("item_f1") or 0.0)


def paired(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]], what: str,
           value: Callable[[Mapping[str, Any]], float] = item_f1) -> tuple[float, float]:
    """Mean and 95 % CI of ``value`` (item F1) of b minus a, task by task (the task sets must
    match)."""
    fa, fb = ({r["task_id"]: value(r) for r in side} for side in (a, b))
    if fa.keys() != fb.keys() or len(fa) != len(a) or len(fb) != len(b):
        raise ValueError(f"{what}: the two sides do not hold the same tasks once each "
                         f"({len(fa.keys() & fb.keys())} shared of {len(a)} and {len(b)})")
    return mean_ci([fb[t] - fa[t] for t in fa])


def compare(runs: Mapping[str, Mapping[int, list[dict[str, Any]]]], baseline: str,
            tasks: Mapping[str, Mapping[str, Task] | None] | None = None) -> dict[str, Any]:
    if baseline not in runs:
        raise ValueError(f"baseline {baseline!r} is not one of the runs {list(runs)}")
    out: dict[str, Any] = {"baseline": baseline, "runs": {}}
    for name, by_width in runs.items():
        widths = sorted(by_width)
        row: dict[str, Any] = {"widths": {w: episode_table(by_width[w]) for w in widths}}
        for w in widths:
            row["widths"][w]["facts_found"] = mean_ci([facts(r) for r in by_width[w]])[0]
        known = (tasks or {}).get(name)
        if known is not None:
            for w in widths:
                row["widths"][w]["entities_delegated"] = entities_delegated(by_width[w], known)
        if name != baseline:
            row["minus_baseline"] = {
                w: paired(runs[baseline][w], by_width[w], f"{name} − {baseline}, width {w}")
                for w in widths if w in runs[baseline]}
        if len(widths) > 1:
            row["facts_widest_minus_narrowest"] = paired(
                by_width[widths[0]], by_width[widths[-1]],
                f"{name}, width {widths[-1]} − {widths[0]}", facts)
            row["widest_minus_narrowest"] = paired(by_width[widths[0]], by_width[widths[-1]],
                                                   f"{name}, width {widths[-1]} − {widths[0]}")
        out["runs"][name] = row
    return out


def _pm(x: Sequence[float]) -> str:
    return f"{x[0]:+.4f} ± {x[1]:.4f}"


def markdown(d: Mapping[str, Any]) -> str:
    runs, base = d["runs"], d["baseline"]
    widths = sorted({w for r in runs.values() for w in r["widths"]})
    lines = ["# Evaluations compared on the same tasks", "",
             "Item F1 (95 % CI) · format errors (share of turns) · subagents per episode · "
             "facts found (correct non-key cells per episode) · entities delegated (share of "
             "the task's rows named in a subtask that ran)", "",
             "| run | " + " | ".join(f"width {w}" for w in widths) + " |",
             "|---|" + "---|" * len(widths)]
    for name, r in runs.items():
        cells = []
        for w in widths:
            s = r["widths"].get(w)
            cells.append("–" if s is None else
                         f"{s['item_f1']:.4f} ± {s['item_f1_ci95']:.4f} · "
                         f"{100 * s['format_error_rate']:.1f} % · {s['subagents_used']:.2f} · "
                         f"{s['facts_found']:.2f}"
                         + (f" · {100 * s['entities_delegated']:.0f} %"
                            if "entities_delegated" in s else ""))
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    lines += ["", f"Paired by task: item F1 of each run minus `{base}`, and its widest width "
              "minus its narrowest, in item F1 and in facts found.", "",
              "| run | " + " | ".join(f"− {base}, width {w}" for w in widths)
              + " | widest − narrowest | facts: widest − narrowest |",
              "|---|" + "---|" * (len(widths) + 2)]
    for name, r in runs.items():
        diff = r.get("minus_baseline") or {}
        cells = [_pm(diff[w]) if w in diff else "–" for w in widths]
        cells += [_pm(r[k]) if r.get(k) else "–"
                  for k in ("widest_minus_narrowest", "facts_widest_minus_narrowest")]
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(d: Mapping[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    for name, r in d["runs"].items():
        ws = sorted(r["widths"])
        ax[0].errorbar(ws, [r["widths"][w]["item_f1"] for w in ws],
                       yerr=[r["widths"][w]["item_f1_ci95"] for w in ws], marker="o", capsize=3,
                       label=name)
        ax[1].plot(ws, [100 * r["widths"][w]["format_error_rate"] for w in ws], marker="o",
                   label=name)
    ax[0].set(title="Test item F1 by width (95 % CI)", xlabel="width", xscale="log")
    ax[1].set(title="Format errors (% of turns)", xlabel="width", xscale="log")
    widths = sorted({w for r in d["runs"].values() for w in r["widths"]})
    for a in ax:  # the widths themselves as ticks, not powers of ten
        a.set_xticks(widths, [str(w) for w in widths])
        a.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax[1].axhline(10, color="grey", linestyle=":", linewidth=1)
    ax[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="evaluation folders (with wN/ inside)")
    ap.add_argument("--names", nargs="+", help="a name per run (default: the folders' names)")
    ap.add_argument("--baseline", help="the run the others are compared with (default: first)")
    ap.add_argument("--label", required=True, help="results file name: compare_<label>")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--world", type=Path,
                    help="the world the runs were evaluated on (default: the one in run.json)")
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args(argv)
    names = args.names or [p.name for p in args.runs]
    if len(names) != len(args.runs) or len(set(names)) != len(names):
        ap.error(f"give one distinct name per run ({len(args.runs)} runs, names {names})")
    try:
        d = compare({n: load_run(p) for n, p in zip(names, args.runs)},
                    args.baseline or names[0],
                    {n: world_tasks(p, args.world) for n, p in zip(names, args.runs)})
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    d["paths"] = {n: str(p) for n, p in zip(names, args.runs)}
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / f"compare_{args.label}"
    out.with_suffix(".json").write_text(json.dumps(d, indent=1))
    md = markdown(d)
    if not args.no_plot:
        plot(d, out.with_suffix(".png"))
        md += f"\n![item F1 and format errors by width]({out.with_suffix('.png').name})\n"
    out.with_suffix(".md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
