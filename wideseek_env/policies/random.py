"""A random policy for robustness runs: junk text, broken calls and valid-but-random tool calls.

Each action is drawn from a generator seeded by ``(seed, request key, conversation length)``, so a
run replays exactly whatever the batching or the order of requests. The words of random queries
and subtasks come from the agent's own conversation and random URLs from the URLs it has seen, so
valid calls do reach real pages now and then. Actions are a mix of:

- valid tool calls of the agent's tools, as protocol text or as structured dicts, in the
  interface profile the request's tool schemas belong to (``wideseek`` or ``paper``);
- final messages (for the lead, a markdown table of random words under random headers);
- junk (random characters, empty text, unclosed tags, bad JSON, unknown tools, wrong arguments,
  too many items, several calls in one turn).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from random import Random
from typing import Any

from wideseek_env.env.profiles import AccessItem, SearchItem, profile_of_tools
from wideseek_env.env.protocol import format_tool_call
from wideseek_env.policies.base import AgentAction, AgentRequest

_ARG = {"delegate": "subtasks", "search": "queries", "access": "urls"}
_URL = re.compile(r"https?://[^\s)\]>\"']+")
_WORD = re.compile(r"\w+")
_JUNK_CHARS = "abcxyz 0123456789{}[]<>\"':,|\n\t`#*-_/\\éß中文🙂\u200b"

KINDS: tuple[tuple[str, float], ...] = (
    ("call_text", 0.30),
    ("call_structured", 0.15),
    ("final", 0.15),
    ("junk", 0.08),
    ("empty", 0.04),
    ("bad_json", 0.06),
    ("unclosed", 0.04),
    ("unknown_tool", 0.05),
    ("bad_arguments", 0.05),
    ("too_many", 0.04),
    ("multiple", 0.04),
)


def _tool_names(tools: Sequence[Mapping[str, Any]]) -> list[str]:
    names = []
    for tool in tools:
        fn = tool.get("function", tool)
        if isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
            names.append(fn["name"])
    return names


class RandomPolicy:
    """Random actions for every agent; see the module docstring. ``weights`` overrides
    :data:`KINDS` (kind -> relative weight)."""

    def __init__(self, seed: int = 0, weights: Mapping[str, float] | None = None,
                 max_items: int = 6) -> None:
        table = dict(KINDS)
        if weights:
            unknown = set(weights) - set(table)
            if unknown:
                raise ValueError(f"RandomPolicy: unknown kinds {sorted(unknown)}; known: {sorted(table)}")
            table.update(weights)
        self.kinds = tuple(table)
        self.weights = tuple(table.values())
        if not any(w > 0 for w in self.weights):
            raise ValueError("RandomPolicy: at least one weight must be positive")
        self.seed = seed
        self.max_items = max_items

    def _rng(self, request: AgentRequest) -> Random:
        blob = json.dumps([self.seed, repr(request.key), len(request.messages)])
        return Random(int.from_bytes(hashlib.sha256(blob.encode()).digest()[:8], "big"))

    def act(self, requests: Sequence[AgentRequest]) -> list[AgentAction]:
        return [AgentAction(r.key, self._one(r)) for r in requests]

    def _one(self, request: AgentRequest) -> str | dict[str, Any]:
        rng = self._rng(request)
        text = " ".join(str(m.get("content") or "") for m in request.messages[1:])
        words = _WORD.findall(text)[:2000] or ["wideseek"]
        urls = sorted(set(_URL.findall(text))) or ["https://example.org/nowhere"]
        tools = _tool_names(request.tools)
        profile = profile_of_tools(request.tools)
        kind = rng.choices(self.kinds, self.weights)[0]
        if not tools and kind not in ("final", "junk", "empty"):
            kind = "final"

        def phrase(lo: int = 1, hi: int = 5) -> str:
            return " ".join(rng.choice(words) for _ in range(rng.randint(lo, hi)))

        def items(tool: str, n: int) -> list[str]:
            return [rng.choice(urls) if tool == "access" else phrase() for _ in range(n)]

        def valid_call() -> tuple[str, dict[str, Any]]:
            tool = rng.choice(tools)
            internal = profile.internal_name(tool)
            values = items(internal or tool, rng.randint(1, 3))
            if internal is None:
                return tool, {"input": values}
            if profile.name == "wideseek":
                return tool, {_ARG[internal]: values}
            wrapped: list[Any] = values
            if internal == "search":
                wrapped = [SearchItem(v) for v in values]
            elif internal == "access":
                wrapped = [AccessItem(v, phrase()) for v in values]
            call = profile.call(internal, wrapped, request.role)
            return call["name"], call["arguments"]

        if kind == "call_text":
            name, args = valid_call()
            prefix = rng.choice(["", "Let me look.\n", f"<think>{phrase()}</think>\n"])
            return prefix + format_tool_call(name, args)
        if kind == "call_structured":
            name, args = valid_call()
            return {"name": name, "arguments": args}
        if kind == "final":
            return self._final(rng, request.role, phrase)
        if kind == "junk":
            return "".join(rng.choice(_JUNK_CHARS) for _ in range(rng.randint(1, 200)))
        if kind == "empty":
            return rng.choice(["", " ", "\n"])
        if kind == "bad_json":
            name, args = valid_call()
            return format_tool_call(name, args).replace("}", "", 1)
        if kind == "unclosed":
            return "<tool_call>\n{\"name\": " + json.dumps(rng.choice(tools))
        if kind == "unknown_tool":
            return format_tool_call(rng.choice(["browse", "python", "answer", ""]), {"x": phrase()})
        if kind == "bad_arguments":
            tool = rng.choice(tools)
            bad = rng.choice([{}, {"q": phrase()}, {_ARG.get(tool, "x"): phrase()},
                              {_ARG.get(tool, "x"): [1, None]}, {_ARG.get(tool, "x"): []}])
            return format_tool_call(tool, bad)
        if kind == "too_many":
            tool = rng.choice(tools)
            return format_tool_call(tool, {_ARG.get(tool, "x"): items(tool, self.max_items + 10)})
        a, b = valid_call(), valid_call()
        return format_tool_call(*a) + "\n" + format_tool_call(*b)

    @staticmethod
    def _final(rng: Random, role: str, phrase: Any) -> str:
        if role == "subagent":
            return phrase(0, 30)
        n_cols = rng.randint(1, 4)
        header = [phrase(1, 2) for _ in range(n_cols)]
        rows = [[phrase(1, 3) for _ in range(n_cols)] for _ in range(rng.randint(0, 6))]
        lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * n_cols]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "```markdown\n" + "\n".join(lines) + "\n```"
