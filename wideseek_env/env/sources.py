"""Where an env's tasks and search backend come from (explicit objects, a world, or the default
world), and which task a reset picks.

``tasks=`` and ``backend=`` win when given; whatever is missing comes from ``world=`` (a
:class:`~wideseek_env.worlds.World` or a path to a built one), and without a world from the
embedded default world, built and cached on first use. The worlds package is only imported when
it is needed, so an env over explicit tasks and backend never touches it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from wideseek_env.search.base import SearchBackend
from wideseek_env.tasks import Task


def resolve_sources(
    world: Any, split: str, tasks: Sequence[Task] | None, backend: SearchBackend | None
) -> tuple[tuple[Task, ...], SearchBackend]:
    """Return ``(tasks, backend)`` for an env; raise ``ValueError`` if there are no tasks."""
    if tasks is None or backend is None:
        from wideseek_env.worlds import World, default_world

        if world is None:
            world = default_world()
        if not isinstance(world, World):
            if not isinstance(world, (str, os.PathLike)):
                raise TypeError(f"world= must be a World, a path or None, got {type(world).__name__}")
            world = World.load(world)
        if tasks is None:
            tasks = world.tasks(split)
        if backend is None:
            backend = world.backend()
    tasks = tuple(tasks)
    if not tasks:
        raise ValueError(f"the env has no tasks (world={world!r}, split={split!r})")
    for i, task in enumerate(tasks):
        if not isinstance(task, Task):
            raise TypeError(f"tasks[{i}] must be a wideseek_env.tasks.Task, got {type(task).__name__}")
    return tasks, backend


def pick_task(tasks: Sequence[Task], options: Mapping[str, Any] | None, index: int) -> Task:
    """The task of a reset: ``options["task"]`` / ``["task_id"]`` / ``["task_index"]``, else
    ``tasks[index]`` (the env draws ``index`` from its seeded generator)."""
    options = options or {}
    if "task" in options:
        task = options["task"]
        if not isinstance(task, Task):
            raise TypeError(f'options["task"] must be a Task, got {type(task).__name__}')
        return task
    if "task_id" in options:
        for task in tasks:
            if task.instance_id == options["task_id"]:
                return task
        raise KeyError(f'options["task_id"]={options["task_id"]!r} is not among the env\'s {len(tasks)} tasks')
    if "task_index" in options:
        i = options["task_index"]
        if isinstance(i, bool) or not isinstance(i, int) or not -len(tasks) <= i < len(tasks):
            raise ValueError(f'options["task_index"]={i!r} is not an index into the env\'s '
                             f"{len(tasks)} tasks (0 … {len(tasks) - 1})")
        return tasks[i]
    return tasks[index]
