"""WidthMixEnv: one ParallelEnv whose episodes each play at a width named by the reset.

Training at one width teaches that width's behaviour: a lead trained at width 1 learns to
delegate one subtask per call and keeps doing so at width 8, and one trained at width 4 sends
several subtasks where the width allows one. `WidthMixEnv` holds a `WideSeekEnv` per width
(same tasks, backend and budgets, `width` apart) and plays each episode in the one that
`reset(options={"width": w, ...})` names; the remaining options pick the task as usual. Every
infos entry carries the episode's `width`. Everything else (`agents`, `step`, `tool_schemas`,
`render`, …) is the active env's.

A reset without a width, or with one the mix does not hold, is an error that names the widths.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any


class WidthMixEnv:
    """One `WideSeekEnv` per width; each reset picks one by `options["width"]`."""

    def __init__(self, widths: Sequence[int], make: Callable[[int], Any]):
        if not widths or len(set(widths)) != len(widths):
            raise ValueError(f"WidthMixEnv needs distinct widths, got {list(widths)!r}")
        self.widths = tuple(widths)
        self.envs = {w: make(w) for w in self.widths}
        self.width = self.widths[0]
        widest = self.envs[max(self.widths)]
        self.possible_agents = list(widest.possible_agents)
        self.metadata = widest.metadata

    @property
    def env(self) -> Any:
        """The env of the current episode."""
        return self.envs[self.width]

    def __getattr__(self, name: str) -> Any:
        if name == "envs":  # not set yet (during __init__): no recursion
            raise AttributeError(name)
        return getattr(self.envs[self.width], name)

    def reset(self, seed: int | None = None,
              options: Mapping[str, Any] | None = None) -> tuple[dict, dict]:
        options = dict(options or {})
        if "width" not in options:
            raise ValueError(f'WidthMixEnv.reset: options["width"] must name one of the widths '
                             f"{list(self.widths)}")
        width = options.pop("width")
        if width not in self.envs:
            raise ValueError(f'WidthMixEnv.reset: options["width"]={width!r} is not one of the '
                             f"widths {list(self.widths)}")
        self.width = width
        obs, infos = self.env.reset(seed=seed, options=options)
        return obs, self._tag(infos)

    def step(self, actions: Mapping[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        obs, rewards, terms, truncs, infos = self.env.step(actions)
        return obs, rewards, terms, truncs, self._tag(infos)

    def _tag(self, infos: Mapping[str, Any]) -> dict[str, Any]:
        return {a: {**i, "width": self.width} for a, i in infos.items()}

    def close(self) -> None:
        for env in self.envs.values():
            env.close()
