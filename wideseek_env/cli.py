"""The ``wideseek`` command line.

Each subcommand lives in its own module that defines ``configure(parser)`` and ``run(args) -> int``;
this file only lists them. Modules are imported when the parser is built, so they keep heavy
imports inside ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> (module, one-line help). Nested commands (``world build``) are handled by the module.
COMMANDS: dict[str, tuple[str, str]] = {
    "score": ("wideseek_env.scoring.cli", "score answers against gold tables (WideSearch metric)"),
    "eval": ("wideseek_env.runner.cli", "evaluate a policy on a world (traces, Avg/Max/Pass@N)"),
    "bench": ("wideseek_env.bench", "width or depth scaling benchmark (table, summary.json, plot)"),
    "trace": ("wideseek_env.trace", "show an episode trace as the agent tree"),
    "view": ("wideseek_env.viewer.cli", "write a run's episodes as one HTML page (or serve it live)"),
    "world": ("wideseek_env.worlds.cli", "build a world (corpus, tasks, index) or show its card"),
    "serve-search": ("wideseek_env.search.server", "serve a world's search index over HTTP"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wideseek",
        description="WideSeek: width scaling of LLM agents for broad information seeking.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.configure(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; user errors print one line (status 2), Ctrl-C a resume hint (130)."""
    from wideseek_env.errors import one_line, user_error_types

    args = build_parser().parse_args(argv)
    name = " ".join(str(getattr(args, a)) for a in ("command", "world_command", "bench_kind")
                    if getattr(args, a, None))
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        out = getattr(args, "out", None)
        hint = f"; re-run with the same --out ({out}) to resume" if out and name != "score" else ""
        print(f"\nwideseek {name}: interrupted{hint}", file=sys.stderr)
        return 130
    except user_error_types() as err:
        print(f"wideseek {name}: error: {one_line(err)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
