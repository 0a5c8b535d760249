"""A thin translation that lets a policy written for the ``wideseek`` interface play under any
profile (:mod:`wideseek_env.env.profiles`).

:func:`wideseek_view` rewrites a request whose tools are another profile's (the ``paper``
profile's ``create_sub_agents``, object-valued ``search``/``access``) into the request the same
agent would have seen under ``wideseek``: the task or subtask without the ``# Task`` frame and
turn hints, its past calls as ``delegate``/``search``/``access`` calls, and its tool results in
``wideseek``'s layout (``Results for "q":`` hits, ``Page:``/``URL:`` pages, ``## Subtask k``
reports). :func:`profile_action` turns the ``wideseek``-shaped action the policy then decides
on into the profile's call (the single agent's one-item calls take the first item; pages are
asked for with the agent's task as ``info_to_extract``). The policy's own logic is untouched.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from wideseek_env.env import prompts_paper as P
from wideseek_env.env.messages import ReadOnlyDict
from wideseek_env.env.profiles import (
    AccessItem,
    Profile,
    SearchItem,
    get_profile,
    profile_of_tools,
)
from wideseek_env.env.protocol import ToolCall, format_tool_call
from wideseek_env.env.tools import ToolLimits
from wideseek_env.policies.base import AgentRequest

_HINTS = (re.compile(re.escape(P.FIRST_TURN).replace(r"\{turns\}", r"\d+") + r"$"),
          re.compile(re.escape(P.NEXT_TURN).replace(r"\{turn\}", r"\d+")
                     .replace(r"\{turns\}", r"\d+") + r"$"))
_KEY = {"delegate": "subtasks", "search": "queries", "access": "urls"}
_NO_LIMIT = {"delegate": 1 << 20, "search": 1 << 20, "access": 1 << 20}


def _unhinted(text: str) -> str:
    for hint in _HINTS:
        text = hint.sub("", text)
    return text


def _task_of(role: str, text: str) -> str:
    """The question or subtask inside the paper's first user message."""
    text = _unhinted(text)
    if role == "subagent":
        _, sep, sub = text.partition("\n\nYour subtask:\n")
        return sub if sep else text
    if role == "single":
        m = re.match(r"# Task\nYour task: (.*?)\n\n# Instructions\n", text, re.DOTALL)
        return m.group(1) if m else text
    return text.removeprefix("# Task\nYour task:\n")


def _blocks(text: str, head: str) -> list[tuple[str, str]]:
    """``(title, body)`` of each ``head`` block (``# Search query:`` ... ``# Result:``)."""
    parts = re.split(r"(?:^|\n\n)" + re.escape(head) + r"\n", text)
    out = []
    for part in parts[1:]:
        title, _, body = part.partition("\n# Result:\n")
        out.append((title.split("\n# Info to extract:\n")[0], body))
    return out


def _search_result(text: str) -> str:
    out = []
    for query, body in _blocks(text, "# Search query:"):
        hits = re.findall(r"\[Doc (\d+)\]\((.*?)\):\n(.*?)(?:\n(.*?))?(?=\n\n\[Doc \d+\]\(|\Z)",
                          body, re.DOTALL)
        if not hits:
            out.append(f'No results for "{query}".')
            continue
        lines = [f'Results for "{query}":']
        lines += [f"[{k}] {title}\nURL: {url}\n{snippet}" for k, url, title, snippet in hits]
        out.append("\n".join(lines))
    return "\n\n".join(out) if out else text


def _access_result(text: str) -> str:
    out = []
    for url, body in _blocks(text, "# Access URL:"):
        if body.startswith("Error: "):
            out.append(f"URL: {url}\n{body}")
            continue
        title, _, rest = body.partition("\n\n")
        out.append(f"Page: {title}\nURL: {url}\n\n{rest}")
    return "\n\n---\n\n".join(out) if out else text


def _reports(text: str) -> str:
    """The lead's ``# Subtask k:`` blocks as ``wideseek``'s ``## Subtask k`` blocks."""
    blocks = re.split(r"(?:^|\n\n)# Subtask (\d+):\n", text)
    out = []
    for k in range(1, len(blocks) - 1, 2):
        subtask, _, body = blocks[k + 1].partition("\n# Result:\n")
        out.append(f"## Subtask {blocks[k]} (sub): {subtask}\n{body}")
    return "\n\n".join(out) if out else text


def _call_text(profile: Profile, role: str, content: str) -> str:
    """An assistant message in ``wideseek``'s call format."""
    parsed = profile.parse(content)
    if not isinstance(parsed, ToolCall):
        return content
    tools = ("delegate",) if role == "lead" else ("search", "access")
    read = profile.read_call(parsed, tools, role, _NO_LIMIT)
    if isinstance(read, tuple):
        tool, items = read
        plain = [i.query if isinstance(i, SearchItem) else i.url if isinstance(i, AccessItem)
                 else i for i in items]
        return format_tool_call(tool, {_KEY[tool]: plain})
    return content


def wideseek_view(request: AgentRequest) -> tuple[AgentRequest, Profile]:
    """The request as the ``wideseek`` interface would show it, and the request's profile."""
    profile = profile_of_tools(request.tools)
    if profile.name == "wideseek":
        return request, profile
    messages: list[Mapping[str, Any]] = []
    first_user = True
    for msg in request.messages:
        role, content = msg.get("role"), str(msg.get("content") or "")
        if role == "user" and first_user:
            first_user = False
            content = _task_of(request.role, content)
        elif role == "assistant":
            content = _call_text(profile, request.role, content)
        elif role == "tool":
            content = _unhinted(content)
            internal = profile.internal_name(str(msg.get("name")))
            if internal == "search":
                content = _search_result(content)
            elif internal == "access":
                content = _access_result(content)
            elif internal == "delegate":
                content = _reports(content)
            messages.append(ReadOnlyDict(role="tool", name=internal or msg.get("name"),
                                         content=content))
            continue
        messages.append(ReadOnlyDict(role=role, content=content))
    limits = ToolLimits(*(_limit(request.tools, k) for k in ("sub_agents", "queries", "urls")))
    wideseek = get_profile("wideseek")
    tools = [wideseek.schema(t, limits, request.role) for t in
             (["delegate"] if request.role == "lead" else ["search", "access"])]
    return replace(request, messages=messages, tools=tools), profile


def _limit(tools: Sequence[Mapping[str, Any]], key: str) -> int:
    for tool in tools:
        props = (tool.get("function", tool).get("parameters") or {}).get("properties") or {}
        if isinstance(props.get(key), Mapping) and "maxItems" in props[key]:
            return int(props[key]["maxItems"])
    return 1 if key != "sub_agents" else 10


def profile_action(action: str | Mapping[str, Any], profile: Profile, role: str,
                   task: str = "") -> str | dict[str, Any]:
    """A ``wideseek``-shaped action as ``profile``'s (final texts pass through)."""
    if isinstance(action, str) or profile.name == "wideseek":
        return action if isinstance(action, str) else dict(action)
    tool = str(action["name"])
    values = list(action["arguments"][_KEY[tool]])
    if role == "single":
        values = values[:1]
    items: list[Any] = values
    if tool == "search":
        items = [SearchItem(q) for q in values]
    elif tool == "access":
        items = [AccessItem(u, task[:300] or "everything on the page") for u in values]
    return profile.call(tool, items, role)
