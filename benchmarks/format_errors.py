"""Which turns are format errors, by role and by kind, counted over runs' episodes.

A format error is a turn whose action the env could not read or refused (bad JSON, an unknown
tool or argument, more subtasks than the width allows …); the env counts them per agent
(`format_errors`) and, in the WideSeek interface, answers each with a tool message named
`error` whose first line says what was wrong. This report reads any run folder with
`episodes.jsonl` (`wideseek eval`, `python -m wideseek_rl.evaluate`, a trace folder) and gives,
per run:

- turns and format errors of the leads and of the subagents, and their share;
- the kinds of error, most frequent first: the error message's first line with its details
  (a parenthesis, numbers) folded, so "Found 2 tool calls" and "Found 6 tool calls" are one
  kind. Errors the env counted without an error message (a broken call on an agent's last
  turn, which ends it; the paper interface, where a call it cannot read ends the agent) are
  the kind "counted without a message".

Results: ``benchmarks/results/format_errors_<label>.{json,md}``, one section per run.

Usage::

    python benchmarks/format_errors.py runs/eval/sft/w4 runs/eval/grpo/w4 --names sft grpo \\
        --label nano_w4
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from wideseek_env.trace import read_traces

RESULTS = Path(__file__).resolve().parent / "results"
ROLES = ("lead", "subagent")
NO_MESSAGE = "counted without a message"


def error_kind(message: str) -> str:
    """The kind of a format-error message: its first line, details folded."""
    line = message.strip().splitlines()[0] if message.strip() else ""
    line = re.sub(r"^Error:\s*", "", line)
    line = re.sub(r"\s*\([^)]*\)", "", line)  # "(Unterminated string … column 43)"
    line = re.sub(r"\d+", "N", line)
    return line.strip() or "(empty message)"


def count(records: Iterable[Mapping[str, Any]], source: str = "records") -> dict[str, Any]:
    """Turns, format errors and error kinds by role over `records` (trace records)."""
    turns: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    kinds: Counter[tuple[str, str]] = Counter()
    episodes = 0
    for i, rec in enumerate(records):
        episodes += 1
        for agent in rec.get("agents") or []:
            role = agent.get("role")
            if role not in ROLES:
                continue
            if "format_errors" not in agent or "turns" not in agent:
                raise ValueError(f"{source}: episode {i + 1}, agent {agent.get('id')!r}: no "
                                 "'turns' or 'format_errors' (is this a WideSeek trace?)")
            n = int(agent["format_errors"])
            turns[role] += int(agent["turns"])
            errors[role] += n
            seen = 0
            for m in agent.get("messages") or []:
                if m.get("role") == "tool" and m.get("name") == "error":
                    kinds[(role, error_kind(m.get("content") or ""))] += 1
                    seen += 1
            if n > seen:
                kinds[(role, NO_MESSAGE)] += n - seen
    roles = {r: {"turns": turns[r], "format_errors": errors[r],
                 "share": errors[r] / turns[r] if turns[r] else None} for r in ROLES}
    total_turns, total_errors = sum(turns.values()), sum(errors.values())
    return {
        "episodes": episodes,
        "turns": total_turns,
        "format_errors": total_errors,
        "share": total_errors / total_turns if total_turns else None,
        "roles": roles,
        "kinds": [{"role": r, "kind": k, "n": n} for (r, k), n in kinds.most_common()],
    }


def read_run(path: Path) -> list[dict[str, Any]]:
    f = path / "episodes.jsonl" if path.is_dir() else path
    if not f.exists():
        raise FileNotFoundError(f"{path}: no episodes.jsonl")
    return read_traces(f)


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def markdown(runs: Mapping[str, Mapping[str, Any]], top: int = 8) -> str:
    labels = list(runs)
    lines = ["# Format errors: which turns the env could not read", "",
             "| | " + " | ".join(f"`{x}`" for x in labels) + " |",
             "|---|" + "---:|" * len(labels),
             "| episodes | " + " | ".join(str(runs[x]["episodes"]) for x in labels) + " |",
             "| all turns | " + " | ".join(
                 f"{_pct(runs[x]['share'])} ({runs[x]['format_errors']}/{runs[x]['turns']})"
                 for x in labels) + " |"]
    for role in ROLES:
        lines.append(f"| {role} turns | " + " | ".join(
            f"{_pct(runs[x]['roles'][role]['share'])} ({runs[x]['roles'][role]['format_errors']}"
            f"/{runs[x]['roles'][role]['turns']})" for x in labels) + " |")
    for x in labels:
        lines += ["", f"## `{x}`: the {top} most frequent kinds", "", "| role | kind | turns |",
                  "|---|---|---:|"]
        lines += [f"| {k['role']} | {k['kind'].replace('|', '/')} | {k['n']} |"
                  for k in runs[x]["kinds"][:top]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run folders (or episodes.jsonl files)")
    ap.add_argument("--names", nargs="+", help="a column name per run (default: the folders)")
    ap.add_argument("--label", required=True, help="results file name: format_errors_<label>")
    ap.add_argument("--top", type=int, default=8, help="kinds listed per run")
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    names = args.names or [str(p) for p in args.runs]
    if len(names) != len(args.runs):
        ap.error(f"{len(args.runs)} runs but {len(names)} names")
    runs = {name: count(read_run(p), str(p)) for name, p in zip(names, args.runs)}
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / f"format_errors_{args.label}"
    out.with_suffix(".json").write_text(json.dumps(
        {"runs": {n: {"path": str(p), **runs[n]} for n, p in zip(names, args.runs)}}, indent=1))
    md = markdown(runs, args.top)
    out.with_suffix(".md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
