"""Command-line options shared by ``wideseek eval`` and ``wideseek bench`` for what the paper
adds: task files from anywhere (``--tasks``), a world's task sets (``--task-set``), the
interface profile (``--interface``), the reward and the access-summary reader (``--reader-*``).

``--tasks FILE`` reads any supported task file (:func:`wideseek_env.taskfiles.load_task_file`:
WideSearch, and WideSeek-R1's width, depth, hybrid and test records); the corpus is then a
retrieval server (``--search-url``) or a world's local index (``--world``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from wideseek_env.errors import ConfigError

TASK_SETS = ("width", "depth", "hybrid")


def add_task_args(g: argparse._ArgumentGroup) -> None:
    """``--tasks``, ``--gold-dir`` and ``--task-set`` (added to the world group)."""
    g.add_argument("--tasks", type=Path, default=None, metavar="FILE",
                   help="tasks from a file instead of the world's split: WideSearch JSONL (gold "
                        "CSVs beside it or --gold-dir) or WideSeek-R1's released records (width, "
                        "depth, hybrid, test; .json, .jsonl, .gz); the corpus is --search-url or "
                        "--world")
    g.add_argument("--gold-dir", type=Path, default=None,
                   help="with --tasks: the gold CSV folder of a WideSearch file")
    g.add_argument("--task-set", choices=TASK_SETS, default="width",
                   help="the world's tasks to use: width (tables, default), depth (QA) or "
                        "hybrid (both)")


def add_interface_args(p: argparse.ArgumentParser) -> None:
    """``--interface``, ``--reward`` and the access-summary reader's options."""
    g = p.add_argument_group("interface (docs/paper.md)")
    g.add_argument("--interface", choices=("wideseek", "paper"), default="wideseek",
                   help="what the agents see: wideseek (default) or paper (WideSeek-R1's tool "
                        "names, schemas, limits, turn hints and answer formats)")
    g.add_argument("--reward", choices=("score", "paper"), default="score",
                   help="the reward recorded per episode (scores do not depend on it)")
    r = p.add_argument_group("access summaries (needs --interface paper)")
    r.add_argument("--reader-url", default=None,
                   help="OpenAI-compatible endpoint of a reader model: access then returns its "
                        "summary of each page for info_to_extract (default: raw page text)")
    r.add_argument("--reader-model", default=None, help="the reader's model name")
    r.add_argument("--reader-api-key-env", default=None, metavar="NAME",
                   help="environment variable holding the reader's bearer token")
    r.add_argument("--reader-timeout-s", type=float, default=120.0, help="per request")
    r.add_argument("--reader-max-retries", type=int, default=3)


def build_reader(args: argparse.Namespace) -> Any:
    """The :class:`~wideseek_env.search.reader.PageReader` of the options, or None."""
    url, model = getattr(args, "reader_url", None), getattr(args, "reader_model", None)
    if (url is None) != (model is None):
        raise ConfigError("--reader-url and --reader-model go together")
    if url is None:
        return None
    if args.interface != "paper":
        raise ConfigError("--reader-url needs --interface paper (only the paper's access calls "
                          "say what to extract from a page)")
    from wideseek_env.search.reader import PageReader

    return PageReader(url, model, api_key_env=args.reader_api_key_env,
                      timeout_s=args.reader_timeout_s, max_retries=args.reader_max_retries)


def load_task_source(args: argparse.Namespace) -> tuple[list[Any], Any, dict[str, Any]]:
    """Tasks from ``--tasks`` and the search backend from ``--search-url`` or ``--world``."""
    from wideseek_env.runner.cli import resolve_world, spread
    from wideseek_env.taskfiles import load_task_file

    tasks = load_task_file(args.tasks, args.gold_dir)  # a bad record: file, line and field
    if args.task_id:
        by_id = {t.instance_id: t for t in tasks}
        missing = [t for t in args.task_id if t not in by_id]
        if missing:
            raise ConfigError(f"--task-id {missing[0]!r} is not in {args.tasks}")
        tasks = [by_id[t] for t in args.task_id]
    tasks = spread(tasks, args.limit)
    info: dict[str, Any] = {"tasks_file": str(args.tasks), "tasks": len(tasks),
                            "split": args.tasks.name}
    if args.search_url:
        from wideseek_env.search.http import HttpSearchBackend

        backend: Any = HttpSearchBackend(args.search_url, coalesce=args.search_coalesce)
        info.update(name="search-server", search_url=backend.base_url)
    else:
        from wideseek_env.worlds import World

        world = World.load(resolve_world(args.world, progress=not args.no_progress))
        backend = world.backend()
        info.update(name=world.name, world_id=world.card.get("world_id"), path=str(world.path),
                    source=world.card.get("source"))
    return tasks, backend, info
