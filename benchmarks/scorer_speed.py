"""Scorer speed: scored gold cells per second over the 200 WideSearch tasks, without a judge.

Two answer sets, both prepared before the clock starts:

- ``gold``: every gold table rendered as a markdown answer (every row joins, every cell is
  compared: the most work per task);
- ``perturbed``: the gold answers with a fifth of the rows dropped, one cell in ten edited and the
  rows shuffled (seeded), i.e. a realistic imperfect answer.

Each set is scored ``cold`` (the memoised gold preparation and the per-value caches emptied
first, as in a fresh process) and ``warm`` (caches kept, as on the RL hot path where tasks come
back). The process is pinned to one core; CPU time (``time.process_time``) is the figure of
merit, wall time is reported beside it. Target: all 200 tasks (~89.5k gold cells) in under
2 s on one core. Results go to ``benchmarks/results/scorer_speed.{json,md}``.

    python benchmarks/scorer_speed.py
    python benchmarks/scorer_speed.py --repeats 5
"""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Literal

import tyro
from tqdm import tqdm

from wideseek_env.scoring import (
    dates,
    extract_table,
    gold,
    metrics,
    render_markdown_table,
    score_response,
)
from wideseek_env.tasks import Task, load_widesearch

RESULTS = Path(__file__).resolve().parent / "results"
SHARED = Path(os.environ.get("WIDESEEK_SHARED", Path(__file__).resolve().parents[2] / "shared"))
TARGET_S = 2.0


@dataclass
class Args:
    data: Path = field(default_factory=lambda: SHARED / "widesearch")
    """Folder with widesearch.jsonl and widesearch_gold/."""
    repeats: int = 3
    """Timed passes per (answer set, cache state); the median is reported."""
    seed: int = 0
    """Seed of the perturbations."""
    core: int = 0
    """CPU core to pin the process to (-1: do not pin)."""
    out: Path = field(default_factory=lambda: RESULTS / "scorer_speed")
    """Output path stem (``.json`` and ``.md`` are written)."""


def gold_rows(task: Task) -> tuple[list[str], list[list[str]]]:
    index = gold.gold_column_index(task.gold.columns)
    columns = [task.gold.columns[index[c]] for c in task.required]
    return columns, [[row[index[c]] for c in task.required] for row in task.gold.rows]


def perturbed_answer(task: Task, rng: random.Random) -> str:
    columns, rows = gold_rows(task)
    rows = [list(r) for r in rows if rng.random() >= 0.2]
    for row in rows:
        for j in range(len(row)):
            if rng.random() < 0.1:
                row[j] = rng.choice(["", "unknown", row[j] + " (approx.)", row[j].upper()])
    rng.shuffle(rows)
    return "Here is the table.\n\n" + render_markdown_table(columns, rows)


def clear_caches() -> None:
    gold._cache.clear()
    for fn in (
        metrics.norm_str,
        metrics.extract_number,
        metrics.norm_date,
        metrics._hosts,
        dates.parse_date,
    ):
        fn.cache_clear()


def time_pass(tasks: list[Task], answers: list[str], cold: bool) -> tuple[float, float, float]:
    if cold:
        clear_caches()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    total_f1 = 0.0
    for task, answer in zip(tasks, answers):
        total_f1 += score_response(task, answer).item_f1
    return time.process_time() - cpu0, time.perf_counter() - wall0, total_f1 / len(tasks)


def machine() -> dict[str, object]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": model,
        "cpus": os.cpu_count(),
        "wideseek": metadata.version("wideseek"),
    }


def main(args: Args) -> int:
    if args.core >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.core})
    tasks = load_widesearch(args.data / "widesearch.jsonl", args.data / "widesearch_gold")
    n_cells = sum(len(t.gold.rows) * len(t.required) for t in tasks)
    rng = random.Random(args.seed)
    sets: dict[str, list[str]] = {
        "gold": [render_markdown_table(*gold_rows(t)) for t in tasks],
        "perturbed": [perturbed_answer(t, rng) for t in tasks],
    }
    answer_cells = {}
    for name, answers in sets.items():
        tables = [extract_table(a) for a in answers]
        answer_cells[name] = sum(len(t[0]) * len(t[1]) for t in tables if t is not None)
    rows = []
    states: tuple[Literal["cold", "warm"], ...] = ("cold", "warm")
    jobs = [(name, state) for name in sets for state in states]
    for name, state in tqdm(jobs, desc="scoring passes"):
        if state == "warm":
            time_pass(tasks, sets[name], cold=False)  # fill the caches
        passes = [time_pass(tasks, sets[name], cold=state == "cold") for _ in range(args.repeats)]
        cpu = statistics.median(p[0] for p in passes)
        wall = statistics.median(p[1] for p in passes)
        rows.append({
            "answers": name,
            "caches": state,
            "tasks": len(tasks),
            "gold_cells": n_cells,
            "answer_cells": answer_cells[name],
            "cpu_s": round(cpu, 4),
            "wall_s": round(wall, 4),
            "gold_cells_per_cpu_s": round(n_cells / cpu),
            "ms_per_task": round(1000 * cpu / len(tasks), 3),
            "mean_item_f1": round(passes[0][2], 4),
            "meets_target": cpu < TARGET_S,
        })  # fmt: skip
    meta = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "args": {k: str(v) for k, v in asdict(args).items()},
        "machine": machine(),
        "target": f"all {len(tasks)} tasks in < {TARGET_S} s CPU on one core",
        "pinned_core": args.core if args.core >= 0 else None,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.json").write_text(
        json.dumps({"meta": meta, "results": rows}, indent=2) + "\n"
    )
    header = "| answers | caches | CPU s (200 tasks) | wall s | gold cells / CPU s | ms / task | mean item F1 | < 2 s |"
    lines = [
        "# Scorer speed (no judge)",
        "",
        f"{len(tasks)} WideSearch tasks, {n_cells:,} gold cells; median of {args.repeats} passes; "
        f"process pinned to core {args.core}.",
        "",
        header,
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['answers']} | {r['caches']} | {r['cpu_s']:.3f} | {r['wall_s']:.3f} | "
            f"{r['gold_cells_per_cpu_s']:,} | {r['ms_per_task']:.2f} | {r['mean_item_f1']:.4f} | "
            f"{'yes' if r['meets_target'] else 'NO'} |"
        )
    m = meta["machine"]
    lines += [
        "",
        f"Machine: {m['cpu']} ({m['cpus']} CPUs), {m['platform']}, Python {m['python']}, "
        f"wideseek {m['wideseek']}.",
        f"Command: `{meta['command']}`",
        "",
    ]
    Path(f"{args.out}.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0 if all(r["meets_target"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(tyro.cli(Args)))
