"""Real runs for the viewer tests: a small world, the scripted policy, and a policy that spoils
some final answers so that every kind of cell verdict occurs (wrong, missed, extra, duplicate)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wideseek_env.policies.base import AgentAction, AgentRequest
from wideseek_env.policies.scripted import ScriptedPolicy
from wideseek_env.runner.evaluate import EvalSpec, evaluate
from wideseek_env.viewer.data import unpack
from wideseek_env.worlds import World


def spoil(text: str) -> str:
    """A final answer with its first data row's second cell replaced, its last row dropped, a
    made-up row added and its first row repeated (tables of at least two rows)."""
    lines = text.split("\n")
    rows = [i for i, line in enumerate(lines) if line.startswith("|")][2:]
    if len(rows) < 2:
        return text
    first = lines[rows[0]].split("|")
    first[2] = " WRONG VALUE "
    width = len(first) - 2
    made_up = "| " + " | ".join(f"made up {j}" for j in range(width)) + " |"
    new = [*lines[: rows[0]], "|".join(first), *(lines[i] for i in rows[1:-1]), made_up,
           lines[rows[0]], *lines[rows[-1] + 1:]]
    return "\n".join(new)


class Spoiler:
    """The scripted policy, except that the lead's final answer is spoiled for ``tasks``."""

    def __init__(self, tasks: Sequence[str]) -> None:
        self.scripted = ScriptedPolicy()
        self.tasks = set(tasks)

    def act(self, requests: Sequence[AgentRequest]) -> list[AgentAction]:
        out = self.scripted.act(requests)
        return [AgentAction(r.key, spoil(a.action))
                if r.role == "lead" and r.key[0] in self.tasks and isinstance(a.action, str)
                and "```markdown" in a.action else a for r, a in zip(requests, out)]


def make_runs(world_path: Path, out: Path, widths: Sequence[int] = (1, 2),
              n_tasks: int = 6) -> list[Path]:
    """One eval run per width over ``n_tasks`` test tasks; the first two tasks' answers spoiled."""
    world = World.load(world_path)
    tasks = world.tasks("test")[:n_tasks]
    spoiled = [t.instance_id for t in tasks[:2]]
    runs = []
    for width in widths:
        run = out / f"width_{width}"
        evaluate(EvalSpec(width=width), tasks, world.backend(), Spoiler(spoiled), run,
                 policy_info={"name": "spoiler"},
                 world_info={"name": "small", "path": str(world_path), "split": "test",
                             "tasks": len(tasks)},
                 progress=False)
        runs.append(run)
    return runs


def read_page(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """``(META, INDEX, payloads)`` of a viewer page, read back as the page's script does."""
    text = path.read_text(encoding="utf-8")

    def block(name: str) -> str:
        m = re.search(rf'<script id="{name}" type="[^"]+">(.*?)</script>', text, re.DOTALL)
        assert m is not None, name
        return m.group(1)

    blobs = block("wsv-blobs")
    payloads = [unpack(b) for b in blobs.split("\n")] if blobs else []
    return json.loads(block("wsv-meta")), json.loads(block("wsv-index")), payloads
