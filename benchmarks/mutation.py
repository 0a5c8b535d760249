"""Mutation testing of the core logic: does the test suite notice when the code is wrong?

For each module group (the scorer, the episode engine, the losses and advantages, the tool-call
protocol) every *mutant* is the module with one small change a programmer could make by mistake:

- a comparison flipped or loosened (``<`` / ``<=`` / ``>`` / ``>=`` / ``==`` / ``!=``,
  ``in`` / ``not in``, ``is`` / ``is not``);
- an arithmetic operator swapped (``+`` / ``-``, ``*`` / ``/``, ``//`` / ``/``, ``**`` / ``*``);
- ``and`` / ``or`` swapped, a ``not`` dropped, an ``if`` condition negated;
- a one-line ``x += …`` or call statement dropped (replaced by ``pass``), ``+=`` / ``-=`` swapped;
- a number changed (``n`` -> ``n + 1``; ``0`` -> ``1``; ``1.0`` -> ``2.0``), ``True`` / ``False``
  swapped.

``--per-module`` mutants per group are drawn with a fixed seed from all candidates (so a re-run
mutates the same places while the code is unchanged). Each mutant is written over the module,
the group's tests run (``pytest -x``, with a time limit: a mutant that hangs counts as killed),
and the original is put back (also on Ctrl-C). A mutant is *killed* when the tests fail.

Survivors are listed with their line. Some are *equivalent* (no input can tell them apart from
the original, e.g. ``x >= 0`` vs ``x > 0`` where ``x`` is never 0 by construction): those are
listed in ``EQUIVALENT`` below with the reason, keyed by the line's text and the change, and
reported apart. Results go to ``benchmarks/results/mutation.{json,md}``.

Usage::

    python benchmarks/mutation.py                 # all four groups, 60 mutants each
    python benchmarks/mutation.py --groups protocol --per-module 20
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import os
import random
import subprocess
import sys
import time
import tokenize
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"

# group -> (modules, tests that cover them)
GROUPS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "scorer": (("wideseek_env/scoring/scorer.py",),
               ("tests/env/test_scoring.py", "tests/env/test_scoring_widesearch.py",
                "tests/env/test_scoring_mutants.py", "tests/env/test_judge.py")),
    "engine": (("wideseek_env/env/core.py",),
               ("tests/env/test_env.py", "tests/env/test_env_api.py",
                "tests/env/test_env_budgets.py", "tests/env/test_single_agent.py",
                "tests/env/test_engine_mutants.py")),
    "losses": (("wideseek_rl/losses.py", "wideseek_rl/advantages.py"),
               ("tests/rl/test_losses.py", "tests/rl/test_advantages.py",
                "tests/rl/test_losses_mutants.py")),
    "protocol": (("wideseek_env/env/protocol.py",),
                 ("tests/env/test_protocol.py", "tests/env/test_env.py",
                  "tests/env/test_engine_mutants.py", "tests/env/test_protocol_mutants.py")),
}

# (module, stripped source line, change) -> why no test can kill it. Checked by reading the
# code; a line that changes drops out of this list by itself (its text no longer matches).
_SCORER, _CORE = "wideseek_env/scoring/scorer.py", "wideseek_env/env/core.py"
_LOSSES, _PROTOCOL = "wideseek_rl/losses.py", "wideseek_env/env/protocol.py"
EQUIVALENT: dict[tuple[str, str, str], str] = {
    (_SCORER, "if TYPE_CHECKING:", "TYPE_CHECKING -> not (TYPE_CHECKING)"):
        "a type-only import: importing the judge module at run time changes nothing",
    (_SCORER, "return 2 * precision * recall / (precision + recall) if precision + recall > "
              "1e-9 else 0.0", "1e-9 -> 2e-09"):
        "P + R is 0 or at least 1 / (rows x columns), far above either threshold",
    (_SCORER, "cell = [1.0] * n_pairs", "1.0 -> 2.0"):
        "every metric and the judge score in [0, 1], so the first min() gives the same cells",
    (_SCORER, "perfect = item_p == item_r == item_f == 1.0 and row_p == row_r == row_f == 1.0",
     "and -> or"):
        "all items right <=> all rows right, since a row scores the min of its cells",
    (_CORE, "self.done = False", "False -> True"):
        "the value set in __init__ is never read: step() refuses to run before reset()",
    (_CORE, "self.reward = 0.0", "0.0 -> 1.0"):
        "the reward is read only after the episode ended, when _end_episode has set it",
    (_CORE, "assert self.task is not None and self.score is not None", "and -> or"):
        "summary() runs only once both are set; the assert only guards programmer errors",
    (_LOSSES, "n_pairs = int(pair.max()) + 1 if len(pair) else 0", "0 -> 1"):
        "only for an empty batch, whose weights are empty either way",
    (_LOSSES, "objective = torch.where(advantages < 0, torch.maximum(objective, floor), "
              "objective)", "< -> <="):
        "at A = 0 the objective and the dual-clip floor are both 0",
    (_PROTOCOL, "if end < 0:", "< -> <="):
        "find() starts after '<tool_call>', so end is -1 or at least 11",
    (_PROTOCOL, "if end < 0:", "0 -> 1"):
        "find() starts after '<tool_call>', so end is -1 or at least 11",
}

_SWAPS = {
    "<": ("<=",), "<=": ("<",), ">": (">=",), ">=": (">",), "==": ("!=",), "!=": ("==",),
    "+": ("-",), "-": ("+",), "*": ("/",), "/": ("*",), "//": ("/",), "**": ("*",),
    "%": ("//",), "and": ("or",), "or": ("and",), "in": ("not in",), "is": ("is not",),
    "+=": ("-=",), "-=": ("+=",),
}


@dataclass(frozen=True)
class Mutant:
    """One change: replace ``old`` at ``line``:``col`` (1-based line, 0-based column) by ``new``."""

    module: str
    line: int
    col: int
    old: str
    new: str

    @property
    def change(self) -> str:
        return f"{self.old} -> {self.new}"


def _op_tokens(source: str) -> dict[tuple[int, int], str]:
    """Position -> text of every operator and keyword token that a mutation may replace."""
    out = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.OP or tok.string in ("and", "or", "in", "is", "not"):
            out[tok.start] = tok.string
    return out


def candidates(module: str) -> list[Mutant]:
    """Every mutant of ``module`` (docstrings, annotations and f-string text are left alone)."""
    source = (ROOT / module).read_text()
    tree = ast.parse(source)
    ops = _op_tokens(source)
    lines = source.splitlines()
    out: list[Mutant] = []

    def op_between(a: ast.AST, b: ast.AST, names: tuple[str, ...]) -> tuple[int, int, str] | None:
        for (line, col), text in sorted(ops.items()):
            after_a = (line, col) >= (a.end_lineno, a.end_col_offset)  # type: ignore[attr-defined]
            before_b = (line, col) < (b.lineno, b.col_offset)  # type: ignore[attr-defined]
            if after_a and before_b and text in names:
                return line, col, text
        return None

    skip: set[int] = set()  # ids of nodes inside annotations
    for node in ast.walk(tree):
        for ann in [getattr(node, "annotation", None), getattr(node, "returns", None)]:
            if ann is not None:
                skip.update(id(n) for n in ast.walk(ann))
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Compare):
            left = node.left
            for right in node.comparators:
                names = ("<", "<=", ">", ">=", "==", "!=", "in", "is", "not")
                found = op_between(left, right, names)
                if found:
                    line, col, text = found
                    if text == "not":  # "not in" / "is not": drop the "not"
                        text_line = lines[line - 1]
                        if text_line[col:].startswith("not in"):
                            out.append(Mutant(module, line, col, "not in", "in"))
                    elif text == "is" and lines[line - 1][col:].startswith("is not"):
                        out.append(Mutant(module, line, col, "is not", "is"))
                    else:
                        out += [Mutant(module, line, col, text, new) for new in _SWAPS[text]]
                left = right
        elif isinstance(node, ast.BinOp):
            found = op_between(node.left, node.right, tuple(_SWAPS))
            if found:
                line, col, text = found
                out += [Mutant(module, line, col, text, new) for new in _SWAPS.get(text, ())]
        elif isinstance(node, ast.BoolOp):
            for a, b in zip(node.values, node.values[1:]):
                found = op_between(a, b, ("and", "or"))
                if found:
                    line, col, text = found
                    out.append(Mutant(module, line, col, text, _SWAPS[text][0]))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            text = lines[node.lineno - 1][node.col_offset: node.col_offset + 4]
            if text == "not ":
                out.append(Mutant(module, node.lineno, node.col_offset, "not ", ""))
        elif isinstance(node, ast.AugAssign) and node.lineno == node.end_lineno:
            found = op_between(node.target, node.value, ("+=", "-="))
            if found:
                line, col, text = found
                out.append(Mutant(module, line, col, text, _SWAPS[text][0]))
            text = lines[node.lineno - 1][node.col_offset: node.end_col_offset]
            out.append(Mutant(module, node.lineno, node.col_offset, text, "pass"))
        elif (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
              and node.lineno == node.end_lineno):
            text = lines[node.lineno - 1][node.col_offset: node.end_col_offset]
            out.append(Mutant(module, node.lineno, node.col_offset, text, "pass"))
        elif isinstance(node, (ast.If, ast.While)) and node.test.lineno == node.test.end_lineno:
            t = node.test
            text = lines[t.lineno - 1][t.col_offset: t.end_col_offset]
            out.append(Mutant(module, t.lineno, t.col_offset, text, f"not ({text})"))
        elif isinstance(node, ast.Constant) and node.lineno == node.end_lineno:
            text = lines[node.lineno - 1][node.col_offset: node.end_col_offset]
            value = node.value
            if isinstance(value, bool):
                out.append(Mutant(module, node.lineno, node.col_offset, text, str(not value)))
            elif isinstance(value, int) and text.isdigit():
                out.append(Mutant(module, node.lineno, node.col_offset, text,
                                  str(value + 1) if value else "1"))
            elif isinstance(value, float) and text.replace(".", "").replace("e-", "").isdigit():
                out.append(Mutant(module, node.lineno, node.col_offset, text, repr(value * 2 or 1.0)))
    return sorted(set(out), key=lambda m: (m.line, m.col, m.new))


def apply(source: str, m: Mutant) -> str:
    lines = source.splitlines(keepends=True)
    line = lines[m.line - 1]
    assert line[m.col: m.col + len(m.old)] == m.old, (m, line)
    lines[m.line - 1] = line[: m.col] + m.new + line[m.col + len(m.old):]
    return "".join(lines)


def run_tests(tests: tuple[str, ...], timeout_s: float) -> tuple[bool, float]:
    """(tests passed, seconds) for the group's tests on the code as it is on disk now."""
    t0 = time.perf_counter()
    present = [t for t in tests if (ROOT / t).is_file()]
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--no-header",
           "-o", "addopts=", *present]
    try:
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, timeout=timeout_s,
                              env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        return done.returncode == 0, time.perf_counter() - t0
    except subprocess.TimeoutExpired:
        return False, time.perf_counter() - t0


def main() -> int:
    global ROOT
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--groups", default=",".join(GROUPS), help=f"of {', '.join(GROUPS)}")
    ap.add_argument("--per-module", type=int, default=60, help="mutants per group")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout-s", type=float, default=300.0, help="per test run")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--root", type=Path, default=ROOT,
                    help="the checkout to mutate (a copy keeps the working tree usable meanwhile)")
    args = ap.parse_args()
    ROOT = args.root.resolve()
    groups = [g.strip() for g in args.groups.split(",") if g.strip()]
    report: dict[str, dict] = {}
    for group in groups:
        modules, tests = GROUPS[group]
        ok, seconds = run_tests(tests, args.timeout_s)
        if not ok:
            raise SystemExit(f"{group}: the tests fail on the unmutated code; fix that first")
        pool = [m for module in modules for m in candidates(module)]
        chosen = sorted(random.Random(f"{args.seed}:{group}").sample(
            pool, min(args.per_module, len(pool))), key=lambda m: (m.module, m.line, m.col))
        originals = {module: (ROOT / module).read_text() for module in modules}
        survivors, equivalent, killed = [], [], 0
        print(f"[{group}] {len(chosen)} of {len(pool)} mutants; tests take {seconds:.1f} s",
              flush=True)
        try:
            for i, m in enumerate(chosen, 1):
                source = originals[m.module]
                (ROOT / m.module).write_text(apply(source, m))
                passed, _ = run_tests(tests, args.timeout_s)
                (ROOT / m.module).write_text(source)
                text = source.splitlines()[m.line - 1].strip()
                if not passed:
                    killed += 1
                    continue
                entry = {**asdict(m), "source_line": text}
                reason = EQUIVALENT.get((m.module, text, m.change))
                if reason:
                    equivalent.append({**entry, "why_equivalent": reason})
                else:
                    survivors.append(entry)
                print(f"[{group}] {i}/{len(chosen)} survived: {m.module}:{m.line}: "
                      f"{m.change} in `{text}`", flush=True)
        finally:
            for module, source in originals.items():
                (ROOT / module).write_text(source)
        n = len(chosen)
        report[group] = {
            "modules": list(modules), "tests": list(tests), "candidates": len(pool),
            "mutants": n, "killed": killed, "survived": n - killed,
            "equivalent": len(equivalent),
            "kill_rate": round(killed / n, 4) if n else None,
            "kill_rate_non_equivalent": round(killed / (n - len(equivalent)), 4)
            if n - len(equivalent) else None,
            "survivors": survivors, "equivalent_survivors": equivalent}
        print(f"[{group}] killed {killed}/{n}; equivalent {len(equivalent)}; "
              f"non-equivalent kill rate {report[group]['kill_rate_non_equivalent']}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": "mutation", "seed": args.seed, "per_module": args.per_module,
              "groups": report, "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
              "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    (args.out / "mutation.json").write_text(json.dumps(result, indent=1) + "\n")
    md = ["# Mutation testing of the core logic", "",
          f"`{result['command']}` — {result['date']}; {args.per_module} mutants per group drawn "
          f"with seed {args.seed} (see benchmarks/mutation.py).", "",
          "| group | modules | mutants | killed | equivalent | kill rate | non-equivalent |",
          "|---|---|---:|---:|---:|---:|---:|"]
    for group, r in report.items():
        md.append(f"| {group} | {', '.join(r['modules'])} | {r['mutants']} | {r['killed']} | "
                  f"{r['equivalent']} | {r['kill_rate']:.1%} | "
                  f"**{r['kill_rate_non_equivalent']:.1%}** |")
    md += ["", "Survivors:", ""]
    for group, r in report.items():
        for s in r["survivors"]:
            md.append(f"- {group}: `{s['module']}:{s['line']}` {s['old']} -> {s['new']} in "
                      f"`{s['source_line']}`")
        for s in r["equivalent_survivors"]:
            md.append(f"- {group} (equivalent): `{s['module']}:{s['line']}` {s['old']} -> "
                      f"{s['new']} in `{s['source_line']}`: {s['why_equivalent']}")
    (args.out / "mutation.md").write_text("\n".join(md) + "\n")
    print(f"wrote {args.out / 'mutation.json'} and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
