"""``wideseek bench width`` and ``wideseek bench depth``: scaling curves of a policy.

- **width**: the multi-agent env at several widths N (subagents per ``delegate`` call), every
  other budget fixed (lead 10 turns, subagents 20 turns by default);
- **depth**: the single-agent env at several turn budgets.

Each point is one :func:`~wideseek_env.runner.evaluate` run in ``<out>/width_<N>`` (or
``turns_<T>``), so an interrupted benchmark resumes where it stopped. The results are printed as a
table and written to ``<out>/summary.json`` (a list of records with ``width`` or ``turns``,
``item_f1``, ``row_f1``, ``success``, ``critical_path_turns``, ``total_turns``, ``tokens``),
``<out>/results.md`` and ``<out>/scaling.png`` (item and row F1 against width or turns, and the
turns spent). Each point's episodes are also written as a viewer page (``wideseek view``,
``<out>/width_<N>/view.html``), linked from its row of ``results.md`` (``--no-view`` skips them). Scores are Avg@N over ``--repeats``; ``tokens`` are generated tokens per episode
(estimated from the text when the policy does not report them, marked ``~`` in the table).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

Kind = Literal["width", "depth"]
X_KEY = {"width": "width", "depth": "turns"}
COLUMNS = ("item_f1", "row_f1", "success", "critical_path_turns", "total_turns", "tokens")


def point_record(kind: Kind, x: int, summary: Mapping[str, Any]) -> dict[str, Any]:
    """One row of the results: scores (Avg@N) and mean cost per episode at one width/turns."""
    c = summary["cost_per_episode"]
    s = summary["scores"] or dict.fromkeys(  # a run of QA tasks only has no table scores
        ("item_f1_avg@n", "row_f1_avg@n", "success_avg@n", "item_f1_max@n", "success_pass@n"))
    qa = summary.get("qa_scores") or {}
    return {
        X_KEY[kind]: x,
        "item_f1": s["item_f1_avg@n"],
        "row_f1": s["row_f1_avg@n"],
        "success": s["success_avg@n"],
        "qa_accuracy": qa.get("accuracy_avg@n"),
        "critical_path_turns": c["critical_path_turns"],
        "total_turns": c["total_turns"],
        "tokens": c["generated_tokens"],
        "tokens_estimated": bool(c.get("tokens_estimated")),
        "item_f1_max@n": s["item_f1_max@n"],
        "success_pass@n": s["success_pass@n"],
        "subagents_used": c.get("subagents_used"),
        "policy_calls": c["policy_calls"],
        "episodes": summary["episodes"],
        "wall_time_s": summary["wall_time_s_now"],
        "view": None,
    }


def markdown_table(kind: Kind, records: Sequence[Mapping[str, Any]],
                   links: Sequence[str | None] | None = None) -> str:
    """The results table; with ``links`` (one per record), a last column links each row's
    viewer page."""
    x = X_KEY[kind]
    head = [x, "item F1", "row F1", "success", "critical-path turns", "total turns", "tokens"]
    if any(r.get("qa_accuracy") is not None for r in records):
        head.append("QA accuracy")
    if links is not None:
        head.append("episodes")
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for k, r in enumerate(records):
        tokens = f"{'~' if r['tokens_estimated'] else ''}{r['tokens']:,.0f}"
        scores = " | ".join("–" if r[k] is None else f"{r[k]:.4f}"
                            for k in ("item_f1", "row_f1", "success"))
        line = (f"| {r[x]} | {scores} | "
                f"{r['critical_path_turns']:.1f} | {r['total_turns']:.1f} | {tokens} |")
        if any(q.get("qa_accuracy") is not None for q in records):
            line += f" {_fmt(r.get('qa_accuracy'))} |"
        if links is not None:
            line += f" [view]({links[k]}) |" if links[k] else " |"
        lines.append(line)
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def view_links(records: Sequence[Mapping[str, Any]], runs_dir: Path, md_dir: Path,
               ) -> list[str | None] | None:
    """Links from ``md_dir`` to each record's viewer page (``view``, relative to ``runs_dir``),
    or None when no record has a page."""
    if not any(r.get("view") for r in records):
        return None
    return [Path(os.path.relpath(runs_dir / r["view"], md_dir)).as_posix() if r.get("view")
            else None for r in records]


def plot(kind: Kind, records: Sequence[Mapping[str, Any]], path: Path, title: str) -> None:
    """Item/row F1 (left) and turns (right) against width or turns, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_key = X_KEY[kind]
    xs = [r[x_key] for r in records]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    if all(r["item_f1"] is not None for r in records):
        ax1.plot(xs, [r["item_f1"] for r in records], "o-", label="item F1")
        ax1.plot(xs, [r["row_f1"] for r in records], "s--", label="row F1")
    if all(r.get("qa_accuracy") is not None for r in records):
        ax1.plot(xs, [r["qa_accuracy"] for r in records], "^:", label="QA accuracy")
    ax1.set_ylim(0, 1.02)
    ax1.set_ylabel("score (Avg@N)")
    ax2.plot(xs, [r["critical_path_turns"] for r in records], "o-", label="critical-path turns")
    ax2.plot(xs, [r["total_turns"] for r in records], "s--", label="total turns")
    ax2.set_ylabel("turns per episode")
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs)
        ax.set_xticklabels([str(x) for x in xs])
        ax.set_xlabel("subagents per delegate call (width)" if kind == "width" else "turn budget")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_bench(kind: Kind, values: Sequence[int], args: argparse.Namespace, out: Path,
              ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Evaluate every width (or turn budget) into ``out/<width|turns>_<value>``, write the results
    files into ``out`` and return the records and the run's description."""
    from wideseek_env.policies.openai import PolicyError
    from wideseek_env.runner.cli import (
        build_judge,
        build_policy,
        checking_inputs,
        load_world,
        resumable,
        tools_in_prompt,
    )
    from wideseek_env.runner.evaluate import EvalSpec, environment_info, evaluate
    from wideseek_env.runner.sources import build_reader
    from wideseek_env.scoring.judge import JudgeError

    with checking_inputs():  # a bad setting is one line, before anything is written
        tasks, backend, world_info = load_world(args)
        judge = build_judge(args)
        reader = build_reader(args)
        policy, policy_info = build_policy(args)
    records = []
    t0 = time.perf_counter()
    try:
        for value in values:
            spec = EvalSpec(
                mode="multi" if kind == "width" else "single",
                width=value if kind == "width" else 10,
                lead_max_turns=args.lead_turns, subagent_max_turns=args.subagent_turns,
                max_turns=value if kind == "depth" else 50,
                max_context_tokens=args.max_context_tokens, tools_in_prompt=tools_in_prompt(args),
                repeats=args.repeats, seed=args.seed, interface=args.interface,
                reward=args.reward)
            sub = out / f"{X_KEY[kind]}_{value}"
            try:
                summary = evaluate(spec, tasks, backend, policy, sub, policy_info=policy_info,
                                   world_info=world_info, judge=judge,
                                   episodes_at_once=args.episodes_at_once,
                                   progress=not args.no_progress, explain=not args.no_explain,
                                   reader=reader)
            except (JudgeError, PolicyError) as err:  # a server failed mid-run
                raise resumable(err, out) from err
            record = point_record(kind, value, summary)
            if not args.no_view:
                from wideseek_env.viewer import write_view

                page = write_view([sub], sub / "view.html")
                record["view"] = page.path.relative_to(out).as_posix()
            records.append(record)
    finally:
        if hasattr(policy, "close"):
            policy.close()
    meta = {
        "benchmark": kind, "world": world_info, "policy": policy_info,
        "repeats": args.repeats, "seed": args.seed,
        "budgets": ({"lead_max_turns": args.lead_turns, "subagent_max_turns": args.subagent_turns}
                    if kind == "width" else {}) | {"max_context_tokens": args.max_context_tokens},
        "wall_time_s": round(time.perf_counter() - t0, 2),
        "environment": environment_info(),
    }
    write_results(kind, records, meta, out)
    return records, meta


def write_results(kind: Kind, records: Sequence[Mapping[str, Any]], meta: Mapping[str, Any],
                  out: Path, stem: str = "", runs_dir: Path | None = None) -> None:
    """``summary.json`` (records), ``results.md`` (table + how it was made), ``scaling.png``.
    With ``stem``, the files are ``<stem>.json``, ``<stem>.md`` and ``<stem>.png`` instead.
    ``runs_dir`` is the benchmark folder the records' viewer pages are in (default ``out``)."""
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / (f"{stem}.json" if stem else "summary.json")
    md_path = out / (f"{stem}.md" if stem else "results.md")
    png_path = out / (f"{stem}.png" if stem else "scaling.png")
    json_path.write_text(json.dumps(list(records), indent=1), encoding="utf-8")
    (out / (f"{stem}.meta.json" if stem else "meta.json")).write_text(
        json.dumps(meta, indent=1, ensure_ascii=False), encoding="utf-8")
    w, env = meta["world"], meta["environment"]
    what = "width scaling (lead + subagents)" if kind == "width" else "depth scaling (single agent)"
    title = f"{meta['policy'].get('name')} policy, {w.get('name')} world ({w.get('split')}, {w.get('tasks')} tasks)"
    md = [
        f"# {what.capitalize()}: {title}", "",
        markdown_table(kind, records, view_links(records, runs_dir or out, out)), "",
        f"Scores are Avg@{meta['repeats']} over {w.get('tasks')} tasks; turns and tokens are "
        "means per episode (tokens: generated; `~` = estimated from the text).",
        f"Budgets: {json.dumps(meta['budgets'])}. Policy: `{json.dumps(meta['policy'])}`.",
        f"Machine: {env['platform']}, {env['cpu_count']} CPUs (load average {env.get('load_average')} "
        f"at the end), Python {env['python']}; "
        f"packages {json.dumps(env['versions'])}.",
        f"Command: `{env['command']}` ({meta['wall_time_s']} s).", "",
    ]
    md_path.write_text("\n".join(md), encoding="utf-8")
    plot(kind, records, png_path, f"{what}: {title}")


# ------------------------------------------------------------------------------ CLI


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from err
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def configure_kind(p: argparse.ArgumentParser, kind: Kind, default_out: Path) -> None:
    """The options of one benchmark kind (shared by the CLI and the scripts in benchmarks/)."""
    from wideseek_env.runner.cli import add_policy_args, add_run_args, add_world_args

    if kind == "width":
        p.add_argument("--widths", type=_int_list, default=[1, 2, 4, 8, 16],
                       help="comma-separated widths (default 1,2,4,8,16)")
    else:
        p.add_argument("--turns", type=_int_list, default=[10, 20, 40, 80],
                       help="comma-separated turn budgets (default 10,20,40,80)")
    p.add_argument("--out", type=Path, default=default_out,
                   help=f"output folder (default {default_out}); re-running resumes")
    p.add_argument("--no-view", action="store_true",
                   help="do not write a viewer page (view.html) per width / turn budget")
    add_world_args(p)
    add_policy_args(p)
    add_run_args(p)


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench_kind", metavar="KIND", required=True)
    for kind, help_text in (("width", "item F1 against the number of subagents per call"),
                            ("depth", "item F1 against the single agent's turn budget")):
        p = sub.add_parser(kind, help=help_text, description=help_text)
        configure_kind(p, kind, Path("runs") / f"bench-{kind}")  # type: ignore[arg-type]


def run(args: argparse.Namespace) -> int:
    kind: Kind = args.bench_kind
    values = args.widths if kind == "width" else args.turns
    records, _ = run_bench(kind, values, args, args.out)
    print(markdown_table(kind, records))
    print(f"\nresults: {args.out / 'summary.json'}  table: {args.out / 'results.md'}  "
          f"plot: {args.out / 'scaling.png'}")
    if not args.no_view:
        print(f"episodes in a browser: {args.out}/{X_KEY[kind]}_<N>/view.html "
              f"(all in one page: wideseek view {args.out})")
    return 0


def script_main(kind: Kind, doc: str, results_dir: Path, argv: Sequence[str] | None = None) -> int:
    """The body of `benchmarks/{width,depth}_scaling.py`: every option of `wideseek bench KIND`,
    plus where the result files go (`results_dir/{kind}_scaling.{md,json,png}`)."""
    name = f"{kind}_scaling"
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    configure_kind(parser, kind, results_dir / "tmp" / name)
    parser.add_argument("--results-dir", type=Path, default=results_dir,
                        help=f"where the result files go (default {results_dir})")
    parser.add_argument("--name", default=name, help=f"stem of the result files (default {name})")
    args = parser.parse_args(argv)
    values = args.widths if kind == "width" else args.turns
    records, meta = run_bench(kind, values, args, args.out)
    write_results(kind, records, meta, args.results_dir, stem=args.name, runs_dir=args.out)
    print(markdown_table(kind, records))
    print(f"\nwritten: {args.results_dir / args.name}.md (.json, .png, .meta.json)")
    return 0
