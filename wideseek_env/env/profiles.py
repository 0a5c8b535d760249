"""Interface profiles: the tool names, argument schemas, limits, result texts and answer formats
an agent sees. The episode engine is the same under every profile; only what crosses the text
boundary changes.

- ``wideseek`` (the default): ``delegate {subtasks: [str]}``, ``search {queries: [str]}`` and
  ``access {urls: [str]}``; a malformed call is an ``Error:`` tool message (the turn counts);
  tables are read wherever they are in the answer (WideSearch's extraction).
- ``paper``: the interface WideSeek-R1 was trained on (DESIGN.md §2.5):
  ``create_sub_agents {sub_agents: [{prompt}]}`` (at most ``width`` per call, extra entries
  dropped), ``search {queries: [{query, count}]}`` (at most 5, ``count`` < 10, default 3) and
  ``access {urls: [{url, info_to_extract}]}`` (at most 5); the single agent calls
  ``search {query, count}`` and ``access {url, info_to_extract}`` one item at a time. Only the
  first ``<tool_call>`` of a turn is read, and a call that cannot be read (invalid JSON, an
  unknown tool, no usable item) counts as no call: the turn is the agent's final message, as in
  the reference implementation (it is still counted in ``format_errors``). Every user and tool
  message ends with a turn hint; results are laid out as the reference lays them out
  (``# Search query:`` / ``# Result:`` blocks, ``[Doc k](url):`` hits, ``# Subtask k:``
  reports); a table answer is read from the last ```` ```markdown ```` fence only and a QA
  answer from the last ``\\boxed{}``. Prompts follow the paper's structure in our own words
  (:mod:`.prompts_paper`), in English for every task as the reference's configurations run it.

Tool items are the same records under both profiles: a subtask string for ``delegate``,
:class:`SearchItem` and :class:`AccessItem`. Internal tool names (``delegate``, ``search``,
``access``) are what ``EnvConfig``, ``infos["tool_calls"]`` and the engine use; :meth:`Profile.
tool_name` is what the agent sees.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from wideseek_env.env import prompts_paper as P
from wideseek_env.env.config import INTERFACES, Interface
from wideseek_env.env.prompts import TEXTS, system_prompt, tools_block
from wideseek_env.env.protocol import FormatError, Parsed, ToolCall, parse_action
from wideseek_env.env.tools import (
    ToolLimits,
    check_arguments,
    format_page,
    format_search,
    tool_schema,
)
from wideseek_env.search.base import Page

#: ``search`` ``count`` under the paper profile: below 10 (its schema says so), at least 1.
MAX_SEARCH_COUNT = 9


@dataclass(frozen=True)
class SearchItem:
    """One query of a ``search`` call; ``count`` results (``None``: the env's ``search_top_k``)."""

    query: str
    count: int | None = None


@dataclass(frozen=True)
class AccessItem:
    """One page of an ``access`` call; ``info_to_extract`` is what a reader summarises it for."""

    url: str
    info_to_extract: str | None = None


Item = str | SearchItem | AccessItem


@dataclass(frozen=True)
class Report:
    """One subagent's outcome, as the lead is told: ``report`` is ``None`` when it failed."""

    index: int
    agent_id: str
    subtask: str
    turns: int
    report: str | None
    failure: str = ""


class Profile:
    """What one interface shows the agents (see the module docstring); the base is ``wideseek``."""

    name: Interface = "wideseek"
    #: A call that cannot be read ends the turn as a final message instead of an error message.
    bad_call_is_final = False

    def tool_name(self, tool: str) -> str:
        return tool

    def internal_name(self, name: str) -> str | None:
        return name if name in ("delegate", "search", "access") else None

    def schema(self, tool: str, limits: ToolLimits, role: str) -> dict[str, Any]:
        return tool_schema(tool, limits)

    def parse(self, text: str) -> Parsed:
        return parse_action(text)

    def read_call(self, call: ToolCall, tools: Sequence[str], role: str,
                  max_items: Mapping[str, int]) -> tuple[str, tuple[Item, ...]] | FormatError:
        if call.name not in tools:
            return FormatError("tool", f"unknown tool {call.name!r}; your tools are: "
                               f"{', '.join(tools)}.")
        items, reason = check_arguments(call.name, call.arguments, max_items[call.name])
        if reason is not None:
            return FormatError("arguments", reason)
        if call.name == "search":
            return "search", tuple(SearchItem(q) for q in items)
        if call.name == "access":
            return "access", tuple(AccessItem(u) for u in items)
        return call.name, items

    def call(self, tool: str, items: Sequence[Item], role: str = "") -> dict[str, Any]:
        """The ``{"name", "arguments"}`` of a call of ``tool`` with ``items`` in this profile."""
        key = {"delegate": "subtasks", "search": "queries", "access": "urls"}[tool]
        return {"name": tool, "arguments": {key: [_plain_item(i) for i in items]}}

    # -- texts ---------------------------------------------------------------------------------

    def search_text(self, items: Sequence[SearchItem], results: Sequence[Sequence[Any]]) -> str:
        return format_search([i.query for i in items], results)

    def search_error(self, error: str) -> str:
        return f"Error: search failed: {error}"

    def access_text(self, item: AccessItem, page: Page | str, summary: str | None) -> str:
        return format_page(item.url, page)

    def access_join(self, texts: Sequence[str]) -> str:
        return "\n\n---\n\n".join(texts)

    def system_prompt(self, role: str, language: str, kind: str, *,
                      tools: Sequence[Mapping[str, Any]], max_turns: int, width: int,
                      tools_in_prompt: bool) -> str:
        return system_prompt(role, language, tools=tools, max_turns=max_turns, width=width,
                             tools_in_prompt=tools_in_prompt, kind=kind)

    def first_user(self, role: str, text: str, main_task: str, max_turns: int) -> str:
        return text

    def reports_text(self, reports: Sequence[Report], lang: str) -> str:
        """The lead's tool message once every subagent of its call has finished."""
        t = TEXTS[lang]
        parts = [t["results"].format(n=len(reports))]
        for r in reports:
            head = t["subtask"].format(i=r.index, agent=r.agent_id, subtask=r.subtask)
            if r.report is not None:
                body = t["done"].format(turns=r.turns) + "\n" + (r.report or t["no_report"])
            else:
                body = t["failed"].format(reason=r.failure)
            parts.append(f"{head}\n{body}")
        return "\n\n".join(parts)

    def tool_tail(self, next_turn: int, max_turns: int, last_turn_text: str) -> str:
        """Text appended to a tool message that leads into turn ``next_turn``."""
        return "\n\n" + last_turn_text if next_turn == max_turns else ""

    def answer_text(self, response: str, kind: str) -> str:
        """What the scorer reads of a final answer (the whole answer: the scorer finds it)."""
        return response


def _plain_item(item: Item) -> str:
    if isinstance(item, SearchItem):
        return item.query
    if isinstance(item, AccessItem):
        return item.url
    return item


class PaperProfile(Profile):
    """WideSeek-R1's own interface (see the module docstring)."""

    name: Interface = "paper"
    bad_call_is_final = True
    _NAMES: ClassVar[dict[str, str]] = {"delegate": "create_sub_agents", "search": "search",
                                        "access": "access"}

    def tool_name(self, tool: str) -> str:
        return self._NAMES[tool]

    def internal_name(self, name: str) -> str | None:
        return {v: k for k, v in self._NAMES.items()}.get(name)

    def schema(self, tool: str, limits: ToolLimits, role: str) -> dict[str, Any]:
        return P.tool_schema(tool, limits, single=role == "single")

    def parse(self, text: str) -> Parsed:
        """The first ``<tool_call>…</tool_call>`` block only (text after it is ignored)."""
        from wideseek_env.env.protocol import TOOL_CLOSE, TOOL_OPEN, strip_think

        visible = strip_think(text)
        start = visible.find(TOOL_OPEN)
        end = visible.find(TOOL_CLOSE, start + 1) if start >= 0 else -1
        if start >= 0 and end > start:
            return parse_action(visible[: end + len(TOOL_CLOSE)])
        return parse_action(visible)

    def read_call(self, call: ToolCall, tools: Sequence[str], role: str,
                  max_items: Mapping[str, int]) -> tuple[str, tuple[Item, ...]] | FormatError:
        tool = self.internal_name(call.name)
        if tool is None or tool not in tools:
            names = ", ".join(self.tool_name(t) for t in tools)
            return FormatError("tool", f"unknown tool {call.name!r}; your tools are: {names}.")
        args = call.arguments
        limit = max_items[tool]
        if role == "single" and tool != "delegate":  # one item per call, at the top level
            raw: Any = [args]
        else:
            raw = args.get({"delegate": "sub_agents", "search": "queries", "access": "urls"}[tool])
        if not isinstance(raw, list):
            return FormatError("arguments", f"{call.name}: no list of items")
        items: list[Item] = []
        for entry in raw[:limit]:  # extra entries are dropped, invalid ones skipped
            item = _paper_item(tool, entry)
            if item is not None:
                items.append(item)
        if not items:
            return FormatError("arguments", f"{call.name}: no usable item")
        return tool, tuple(items)

    def call(self, tool: str, items: Sequence[Item], role: str = "") -> dict[str, Any]:
        name = self.tool_name(tool)
        if tool == "delegate":
            return {"name": name, "arguments": {"sub_agents": [{"prompt": str(i)} for i in items]}}
        entries = []
        for item in items:
            if tool == "search":
                q = item if isinstance(item, SearchItem) else SearchItem(str(item))
                entries.append({"query": q.query, **({"count": q.count} if q.count else {})})
            else:
                a = item if isinstance(item, AccessItem) else AccessItem(str(item))
                entries.append({"url": a.url, "info_to_extract": a.info_to_extract or ""})
        if role == "single":
            return {"name": name, "arguments": entries[0]}
        return {"name": name, "arguments": {"queries" if tool == "search" else "urls": entries}}

    # -- texts ---------------------------------------------------------------------------------

    def search_text(self, items: Sequence[SearchItem], results: Sequence[Sequence[Any]]) -> str:
        return "\n\n".join(P.search_block(i.query, hits) for i, hits in zip(items, results))

    def search_error(self, error: str) -> str:
        return P.SEARCH_FAILED.format(error=error)

    def access_text(self, item: AccessItem, page: Page | str, summary: str | None) -> str:
        return P.access_block(item.url, item.info_to_extract, page, summary)

    def access_join(self, texts: Sequence[str]) -> str:
        return "\n\n".join(texts)

    def system_prompt(self, role: str, language: str, kind: str, *,
                      tools: Sequence[Mapping[str, Any]], max_turns: int, width: int,
                      tools_in_prompt: bool) -> str:
        text = P.system_prompt(role, kind)
        return text + "\n\n" + tools_block(tools, "en") if tools_in_prompt and tools else text

    def first_user(self, role: str, text: str, main_task: str, max_turns: int) -> str:
        return P.user_message(role, text, main_task) + P.FIRST_TURN.format(turns=max_turns)

    def reports_text(self, reports: Sequence[Report], lang: str) -> str:
        return "\n\n".join(P.subtask_block(r.index, r.subtask, r.report) for r in reports)

    def tool_tail(self, next_turn: int, max_turns: int, last_turn_text: str) -> str:
        return P.NEXT_TURN.format(turn=next_turn, turns=max_turns)

    def answer_text(self, response: str, kind: str) -> str:
        if kind == "qa":
            return response
        blocks = re.findall(r"```markdown(.*?)```", response, re.DOTALL)
        return f"```markdown\n{blocks[-1].strip()}\n```" if blocks else ""


def _paper_item(tool: str, entry: Any) -> Item | None:
    if not isinstance(entry, Mapping):
        return None
    if tool == "delegate":
        prompt = entry.get("prompt")
        return prompt.strip() if isinstance(prompt, str) and prompt.strip() else None
    key = "query" if tool == "search" else "url"
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        return None
    if tool == "search":
        count = entry.get("count")
        ok = isinstance(count, int) and not isinstance(count, bool) and count > 0
        return SearchItem(value.strip(), min(count, MAX_SEARCH_COUNT) if ok else None)
    info = entry.get("info_to_extract")
    return AccessItem(value.strip(), info.strip() if isinstance(info, str) and info.strip() else None)


PROFILES: dict[str, Profile] = {"wideseek": Profile(), "paper": PaperProfile()}


def get_profile(name: str) -> Profile:
    """The profile called ``name`` (``wideseek`` or ``paper``)."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown interface {name!r}; choose one of {', '.join(INTERFACES)}") \
            from None


def profile_of_tools(tools: Sequence[Mapping[str, Any]]) -> Profile:
    """The profile whose schemas ``tools`` are (for policies that only see a request's tools):
    ``paper`` when a tool is ``create_sub_agents`` or ``search``/``access`` take objects."""
    for tool in tools:
        fn = tool.get("function", tool)
        if not isinstance(fn, Mapping):
            continue
        if fn.get("name") == "create_sub_agents":
            return PROFILES["paper"]
        props = (fn.get("parameters") or {}).get("properties") or {}
        if fn.get("name") in ("search", "access"):
            if "query" in props or "url" in props:
                return PROFILES["paper"]
            arr = props.get("queries") or props.get("urls") or {}
            if isinstance(arr, Mapping) and (arr.get("items") or {}).get("type") == "object":
                return PROFILES["paper"]
    return PROFILES["wideseek"]
