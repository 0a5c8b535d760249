"""Observation and action spaces of the env (Gymnasium ``Space`` subclasses).

Gymnasium's ``spaces.Text`` only admits a fixed character set, while agents read and write any
Unicode, so the env defines its own:

- :class:`ConversationSpace`: a list of chat messages (mappings with a ``role`` among
  ``system/user/assistant/tool`` and a ``content`` string).
- :class:`ActionSpace`: a completion text or a structured tool call (a mapping). Its ``sample()``
  writes plausible *and* broken actions for the role (valid calls, final messages, bad JSON,
  unknown tools, wrong arguments, too many items, several calls in one turn), so that PettingZoo's
  and Gymnasium's random-action checks exercise the whole protocol instead of only the error path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from gymnasium import spaces

from wideseek_env.env.protocol import format_tool_call

ROLES = frozenset({"system", "user", "assistant", "tool"})

_WORDS = (
    "alpha", "beta", "river", "capital", "population", "airport", "元素", "城市", "année", "Zürich",
    "1987", "list", "mountain", "élément", "数据", "código", "tower", "🙂", "km", "founded",
)


class ConversationSpace(spaces.Space[list]):
    """A conversation: a list of chat messages in the OpenAI shape."""

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(shape=None, dtype=None, seed=seed)

    @property
    def is_np_flattenable(self) -> bool:
        return False

    def contains(self, x: Any) -> bool:
        return isinstance(x, list) and all(
            isinstance(m, Mapping) and m.get("role") in ROLES and isinstance(m.get("content"), str)
            for m in x
        )

    def sample(self, mask: Any | None = None, probability: Any | None = None) -> list:
        rng = self.np_random
        n = int(rng.integers(1, 5))
        roles = ("system", "user", "assistant", "tool")
        return [
            {"role": roles[min(i, 3)], "content": " ".join(rng.choice(_WORDS, size=4).tolist())}
            for i in range(n)
        ]

    def __repr__(self) -> str:
        return "ConversationSpace()"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ConversationSpace)

    def __hash__(self) -> int:
        return hash(ConversationSpace)


class ActionSpace(spaces.Space[Any]):
    """An agent's action: completion text (``str``) or a structured tool call (a mapping)."""

    def __init__(
        self,
        role: str,
        tools: Sequence[str],
        *,
        max_items: Mapping[str, int],
        seed: int | None = None,
        profile: Any = None,
    ) -> None:
        from wideseek_env.env.profiles import get_profile

        super().__init__(shape=None, dtype=None, seed=seed)
        self.role = role
        self.tools = tuple(tools)
        self.max_items = dict(max_items)
        self.profile = profile if profile is not None else get_profile("wideseek")

    @property
    def is_np_flattenable(self) -> bool:
        return False

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) or (isinstance(x, Mapping) and isinstance(x.get("name"), str))

    def __repr__(self) -> str:
        return (f"ActionSpace(role={self.role!r}, tools={self.tools!r}, "
                f"interface={self.profile.name!r})")

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ActionSpace)
            and (self.role, self.tools, self.max_items, self.profile.name)
            == (other.role, other.tools, other.max_items, other.profile.name)
        )

    def __hash__(self) -> int:
        return hash((self.role, self.tools))

    def _words(self, lo: int, hi: int) -> str:
        rng = self.np_random
        return " ".join(rng.choice(_WORDS, size=int(rng.integers(lo, hi + 1))).tolist())

    def _items(self, tool: str, n: int) -> list[Any]:
        from wideseek_env.env.profiles import AccessItem, SearchItem

        if tool == "access":
            return [AccessItem(f"https://example.org/{self._words(1, 1)}", self._words(1, 4))
                    for _ in range(n)]
        if tool == "search":
            return [SearchItem(self._words(1, 5)) for _ in range(n)]
        return [self._words(1, 5) for _ in range(n)]

    def _call(self, tool: str, n: int) -> tuple[str, dict[str, Any]]:
        call = self.profile.call(tool, self._items(tool, n), self.role)
        return call["name"], call["arguments"]

    def _valid_call(self) -> tuple[str, dict[str, Any]]:
        rng = self.np_random
        tool = self.tools[int(rng.integers(len(self.tools)))]
        n = 1 if self.role == "single" and tool != "delegate" else \
            int(rng.integers(1, self.max_items[tool] + 1))
        return self._call(tool, n)

    def _final(self) -> str:
        if self.role == "subagent":
            return self._words(0, 12)
        rows = "\n".join(f"| {self._words(1, 2)} | {self._words(1, 2)} |" for _ in range(3))
        return f"```markdown\n| name | value |\n| --- | --- |\n{rows}\n```"

    def sample(self, mask: Any | None = None, probability: Any | None = None) -> Any:
        rng = self.np_random
        kinds = ("call", "call", "call", "structured", "final", "final", "think_final",
                 "bad_json", "unknown", "bad_args", "too_many", "multiple")
        kind = kinds[int(rng.integers(len(kinds)))] if self.tools else "final"
        if kind == "final":
            return self._final()
        if kind == "think_final":
            return f"<think>{self._words(2, 6)}</think>\n{self._final()}"
        if kind == "structured":
            name, args = self._valid_call()
            return {"name": name, "arguments": args}
        if kind == "call":
            name, args = self._valid_call()
            return f"<think>{self._words(0, 4)}</think>{self._words(0, 3)}\n{format_tool_call(name, args)}"
        if kind == "bad_json":
            name, args = self._valid_call()
            return format_tool_call(name, args)[:-20] + "</tool_call>"
        if kind == "unknown":
            return format_tool_call("teleport", {"to": self._words(1, 2)})
        if kind == "bad_args":
            name, _ = self._valid_call()
            return "<tool_call>" + json.dumps({"name": name, "arguments": {"x": 1}}) + "</tool_call>"
        if kind == "too_many":
            tool = self.tools[int(rng.integers(len(self.tools)))]
            return format_tool_call(*self._call(tool, self.max_items[tool] + 1))
        a, b = self._valid_call(), self._valid_call()
        return format_tool_call(*a) + "\n" + format_tool_call(*b)
