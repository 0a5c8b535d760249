"""Where do a model's episodes break? The steps of a table answer, counted over a run's episodes.

A WideSeek answer scores above 0 only when every step before it worked: the lead delegates the
query's entities by name, each subagent searches for its entity, reads a page and reports on its
entity, and the lead writes a table with the required columns and the entities' rows. An item F1
of 0 says none of that; this funnel says which step the episodes stop at. It reads any run folder
with `episodes.jsonl` (`wideseek eval`, `python -m wideseek_rl.evaluate`, a trace folder) and the
world the tasks come from (for the entity names: the gold key cells of each task):

| step | of | counted when |
|---|---|---|
| delegated | episodes | the lead started at least one subagent |
| names delegated | the entity names written in the query | the name is in a lead reply before its last |
| subagent searched its entity | subagents whose subtask names an entity | its first search call names it |
| subagent read a page | subagents | an `access` call returned a page (not an error) |
| subagent reported its entity | subagents whose subtask names an entity | its last reply names it |
| answer has a table | episodes | the lead's last reply has a markdown table row (a line starting `|`) |
| answer parsed | episodes | the scorer found a table with the required columns (`parse_ok`) |
| item F1 above 0 | episodes | at least one cell matched |
| fact in a page read | the gold facts (non-key cells) of the entities the subtasks name | the value, as a whole token, is in a page the entity's subagent read |
| fact in its report | the same facts | the value is in that subagent's last reply |
| fact in the answer | the same facts | the answer's cell for it is right (the scorer's verdict) |

The three fact steps say where the facts a wider team could add are lost: not found, found and
not reported, or reported and not carried into the table.

Results: ``benchmarks/results/episode_funnel_<label>.{json,md}``, one column per run.

Usage::

    python benchmarks/episode_funnel.py --world runs/nano_recipe/world \\
        runs/nano_recipe/eval/scripted/w4 runs/nano_recipe/eval/sft/w4 --names teacher sft \\
        --label nano_w4
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
STEPS = ("delegated", "names_delegated", "subagent_searched_its_entity", "subagent_read_a_page",
         "subagent_reported_its_entity", "answer_has_table", "answer_parsed", "item_f1_above_0",
         "fact_in_a_page_read", "fact_in_its_report", "fact_in_the_answer")
FACT_STEPS = STEPS[-3:]


def _has(text: str, value: str) -> bool:
    """`value` in `text` (already `norm_text`-ed) as a whole token, case and spacing aside (the
    world card's rule: "12" is not found in "2012", nor "2440" in "2,440.3")."""
    from wideseek_env.worlds.stats import bounded, norm_text

    return bounded(norm_text(value)).search(text) is not None


def _facts(sub: Mapping[str, Any], task: Any, rec: Mapping[str, Any]) -> Iterable[tuple[bool, ...]]:
    """For every gold fact (a non-key cell) of each row whose key cells the subagent's subtask
    names: is it in a page the subagent read, in its last reply, right in the answer?"""
    from wideseek_env.tasks.records import norm_column
    from wideseek_env.worlds.stats import norm_text

    # Each text normalised once, not once per fact.
    asked = norm_text(next((m.get("content") or "" for m in sub.get("messages", [])
                            if m.get("role") == "user"), ""))
    pages = norm_text(" \n".join(r for _, r in _calls(sub, "access")
                                  if not r.startswith("Error")))
    replies = _replies(sub)
    report = norm_text(replies[-1] if replies else "")
    gidx = {norm_column(c): i for i, c in enumerate(task.gold.columns)}
    answer = {row.get("gold_row"): row.get("cells") or []
              for row in (rec.get("explanation") or {}).get("rows") or []}
    for g, row in enumerate(task.gold.rows):
        if not all(_has(asked, str(row[gidx[k]])) for k in task.unique_columns):
            continue
        for j, col in enumerate(task.required):
            value = str(row[gidx[col]]).strip() if gidx[col] < len(row) else ""
            if col in task.unique_columns or not value:
                continue
            cells = answer.get(g) or []
            yield (_has(pages, value), _has(report, value),
                   j < len(cells) and cells[j].get("verdict") in ("correct", "partial"))


def _replies(agent: Mapping[str, Any]) -> list[str]:
    return [m.get("content") or "" for m in agent.get("messages", []) if m.get("role") == "assistant"]


def _calls(agent: Mapping[str, Any], tool: str) -> list[tuple[str, str]]:
    """(the reply that called `tool`, the tool's result) for each call, in order."""
    out, last = [], ""
    for m in agent.get("messages", []):
        if m.get("role") == "assistant":
            last = m.get("content") or ""
        elif m.get("role") == "tool" and m.get("name") == tool:
            out.append((last, m.get("content") or ""))
    return out


def funnel(records: Iterable[Mapping[str, Any]], keys: Mapping[str, list[str]],
           tasks: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Counts and shares of every step (`STEPS`) over `records`; `keys` maps a task id to its
    entity names, `tasks` to its task (for the fact steps, left out without it). A record whose
    task is not in `keys` is an error (the wrong world)."""
    n = {s: 0 for s in STEPS}
    of = {s: 0 for s in STEPS}
    f1 = []
    for rec in records:
        task = rec.get("task_id")
        if task not in keys:
            raise KeyError(f"task {task!r} of the run is not in the world's tasks "
                           "(is --world the world the run was made in?)")
        names = keys[task]
        agents = rec.get("agents") or []
        lead = next((a for a in agents if a.get("role") == "lead"), None)
        subs = [a for a in agents if a.get("role") == "subagent"]
        replies = _replies(lead) if lead else []
        for step in ("delegated", "answer_has_table", "answer_parsed", "item_f1_above_0"):
            of[step] += 1
        metrics = rec.get("metrics") or {}
        n["delegated"] += bool(subs)
        last = replies[-1] if replies else ""
        n["answer_has_table"] += any(line.lstrip().startswith("|") for line in last.splitlines())
        n["answer_parsed"] += bool(metrics.get("parse_ok"))
        n["item_f1_above_0"] += float(metrics.get("item_f1") or 0.0) > 0
        f1.append(float(metrics.get("item_f1") or 0.0))
        query = next((m.get("content") or "" for m in (lead or {}).get("messages", [])
                      if m.get("role") == "user"), "")
        for name in (x for x in names if x in query):  # the names a lead can copy
            of["names_delegated"] += 1
            n["names_delegated"] += any(name in r for r in replies[:-1])
        for sub in subs:
            of["subagent_read_a_page"] += 1
            n["subagent_read_a_page"] += any(not result.startswith("Error")
                                             for _, result in _calls(sub, "access"))
            task_text = next((m.get("content") or "" for m in sub.get("messages", [])
                              if m.get("role") == "user"), "")
            if tasks is not None:
                for found in _facts(sub, tasks[task], rec):
                    for step, hit in zip(FACT_STEPS, found):
                        of[step] += 1
                        n[step] += hit
            own = [name for name in names if name in task_text]
            if not own:
                continue
            for step in ("subagent_searched_its_entity", "subagent_reported_its_entity"):
                of[step] += 1
            searches = _calls(sub, "search")
            n["subagent_searched_its_entity"] += bool(searches) and any(
                name in searches[0][0] for name in own)
            sub_replies = _replies(sub)
            n["subagent_reported_its_entity"] += bool(sub_replies) and any(
                name in sub_replies[-1] for name in own)
    return {"episodes": len(f1), "item_f1": sum(f1) / len(f1) if f1 else float("nan"),
            "steps": {s: {"n": n[s], "of": of[s], "share": n[s] / of[s] if of[s] else None}
                      for s in STEPS}}


def world_tasks(world: Path) -> dict[str, Any]:
    """Task id → task, for every task of a built world."""
    from wideseek_env.worlds import World

    w = World.load(world)
    return {t.instance_id: t for split in ("train", "test") for t in w.tasks(split)}


def world_keys(world: Path | Mapping[str, Any]) -> dict[str, list[str]]:
    """Task id → entity names (the gold key cells) of every task of a built world (a path, or
    its `world_tasks`)."""
    from wideseek_env.tasks.records import norm_column

    out: dict[str, list[str]] = {}
    for t in (world_tasks(world) if isinstance(world, Path) else world).values():
        key = [i for i, c in enumerate(t.gold.columns)
               if norm_column(c) in t.unique_columns] or [0]
        out[t.instance_id] = [str(row[i]) for row in t.gold.rows for i in key]
    return out


def markdown(runs: dict[str, dict[str, Any]]) -> str:
    labels = list(runs)
    lines = ["# Episode funnel: where the episodes stop", "",
             "| step | " + " | ".join(f"`{x}`" for x in labels) + " |",
             "|---|" + "---:|" * len(labels)]
    for s in STEPS:
        cells = []
        for x in labels:
            c = runs[x]["steps"][s]
            cells.append("–" if c["share"] is None else f"{c['share']:.2f} ({c['n']}/{c['of']})")
        lines.append(f"| {s.replace('_', ' ')} | " + " | ".join(cells) + " |")
    lines.append("| item F1 (mean) | " + " | ".join(f"{runs[x]['item_f1']:.3f}" for x in labels)
                 + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from wideseek_env.trace import read_traces

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run folders (or episodes.jsonl files)")
    ap.add_argument("--world", type=Path, required=True, help="the world the runs were made in")
    ap.add_argument("--names", nargs="+", default=None,
                    help="a column name for each run (default: the run's path)")
    ap.add_argument("--label", required=True, help="results name")
    ap.add_argument("--results", type=Path, default=RESULTS, help="results folder")
    a = ap.parse_args(argv)
    for path in (a.world, *a.runs):
        if not path.exists():
            ap.error(f"{path} does not exist")
    names = a.names or [str(run) for run in a.runs]
    if len(names) != len(a.runs) or len(set(names)) != len(names):
        ap.error(f"--names: give {len(a.runs)} different names, one per run (got {names})")
    tasks = world_tasks(a.world)
    keys = world_keys(tasks)
    out = {}
    for name, run in zip(names, a.runs):
        path = run / "episodes.jsonl" if run.is_dir() else run
        out[name] = {"run": str(run), **funnel(read_traces(path), keys, tasks)}
    a.results.mkdir(parents=True, exist_ok=True)
    stem = a.results / f"episode_funnel_{a.label}"
    stem.with_suffix(".json").write_text(json.dumps({"world": str(a.world), "runs": out},
                                                    indent=1) + "\n")
    text = markdown(out)
    stem.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
