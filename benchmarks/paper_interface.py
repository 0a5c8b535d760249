"""The paper's interface beside ours: the scripted baseline on the same tasks under both profiles.

Under ``--interface paper`` the agents see WideSeek-R1's tools, limits, result layouts and turn
hints; the scripted baseline reads them through its translation (``policies/translate.py``) and
makes the same decisions, so its scores and turns should agree exactly; the price is the
translation and the longer texts. Both runs go side by side in one process (interfaces
alternating per batch of tasks, so machine load hits both alike), and the ratio of wall times is
reported. The world's QA task sets (counts, hops, answerability) are reported from its card.

    python benchmarks/paper_interface.py                       # default world, 100 test tasks
    python benchmarks/paper_interface.py --world worlds/hybridqa --limit 100

Results: ``benchmarks/results/paper_interface.{json,md}``.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import tyro

RESULTS = Path(__file__).parent / "results"


@dataclass(frozen=True)
class Args:
    """Options of the benchmark."""

    world: str = "default"
    """A built world folder, or 'default' (the embedded default world)."""
    split: str = "test"
    """Task split."""
    limit: int = 100
    """Tasks, spread evenly over the split."""
    width: int = 8
    """Subagents per call."""
    batch: int = 10
    """Tasks per alternation between the two interfaces."""
    name: str = "paper_interface"
    """Stem of the result files in benchmarks/results/."""


def main(args: Args) -> None:
    from wideseek_env.policies.scripted import ScriptedPolicy
    from wideseek_env.runner import EvalSpec, evaluate
    from wideseek_env.runner.cli import spread
    from wideseek_env.runner.evaluate import environment_info, summarize
    from wideseek_env.runner.loop import slim
    from wideseek_env.trace import read_traces
    from wideseek_env.worlds import World, resolve_world

    world = World.load(resolve_world(args.world))
    tasks = spread(world.tasks(args.split), args.limit)
    backend = world.backend()
    wall = {"wideseek": 0.0, "paper": 0.0}
    out = Path(tempfile.mkdtemp(prefix="paper-interface-"))
    records: dict[str, list] = {"wideseek": [], "paper": []}
    for start in range(0, len(tasks), args.batch):
        for iface in ("wideseek", "paper") if start // args.batch % 2 == 0 else ("paper", "wideseek"):
            t0 = time.perf_counter()
            folder = out / iface / str(start)
            evaluate(EvalSpec(width=args.width, interface=iface),
                     tasks[start : start + args.batch], backend, ScriptedPolicy(), folder,
                     progress=False, explain=False)
            wall[iface] += time.perf_counter() - t0
            records[iface] += [slim(r) for r in read_traces(folder / "episodes.jsonl")]
    summaries = {iface: summarize(rs) for iface, rs in records.items()}
    rows = {}
    for iface, s in summaries.items():
        c = s["cost_per_episode"]
        rows[iface] = {"item_f1": s["scores"]["item_f1"], "row_f1": s["scores"]["row_f1"],
                       "success": s["scores"]["success"], "total_turns": c["total_turns"],
                       "critical_path_turns": c["critical_path_turns"],
                       "tokens": c["generated_tokens"], "wall_s": round(wall[iface], 2)}
    same = summaries["paper"]["scores"] == summaries["wideseek"]["scores"]
    qa = {k: world.card.get("qa", {}).get(k) for k in ("train", "test")}
    data = {"world": world.name, "split": args.split, "tasks": len(tasks), "width": args.width,
            "interfaces": rows, "scores_identical": same,
            "wall_ratio_paper_over_wideseek": round(wall["paper"] / wall["wideseek"], 3),
            "world_qa": qa, "environment": environment_info()}
    lines = [f"# The paper's interface beside ours ({world.name}, {args.split}, {len(tasks)} "
             f"tasks, width {args.width}, scripted baseline)", "",
             "| interface | item F1 | row F1 | success | total turns | critical-path turns | "
             "tokens (~) | wall s |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for iface, r in rows.items():
        lines.append(f"| {iface} | {r['item_f1']:.4f} | {r['row_f1']:.4f} | {r['success']:.4f} | "
                     f"{r['total_turns']:.1f} | {r['critical_path_turns']:.1f} | "
                     f"{r['tokens']:,.0f} | {r['wall_s']} |")
    lines += ["", f"Scores identical under both interfaces: **{same}**. Wall time paper / "
              f"wideseek: **{data['wall_ratio_paper_over_wideseek']}** (side by side, "
              f"alternating every {args.batch} tasks; the scripted policy re-reads the whole "
              "conversation each turn, so the translation is paid per turn). Tokens are the "
              "scripted actions' length estimated from their text: the paper's calls are longer "
              "(objects per item, and every page is asked for with the agent's task as its "
              "info_to_extract).", "",
              "QA task sets of the world (from its card): "
              + "; ".join(f"{k}: {v['tasks']} tasks, hops {v['by_hops']}, answerable "
                          f"{v['task_rate']:.0%}" for k, v in qa.items() if v), "",
              f"Machine: {data['environment']['platform']}, {data['environment']['cpu_count']} "
              f"CPUs, load average {data['environment']['load_average']} at the end. Command: "
              f"`{data['environment']['command']}`.", ""]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(data, indent=1) + "\n")
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main(tyro.cli(Args))
