"""The text protocol between an LLM and the env: one tool call per turn, Hermes/Qwen style.

An agent's turn is free text. It is a *tool call* when it contains exactly one block::

    <tool_call>{"name": "search", "arguments": {"queries": ["..."]}}</tool_call>

(the convention that Qwen/Hermes chat templates and vLLM's ``hermes`` tool parser use), and a
*final message* (a subagent's report, the lead's answer) when it contains none. Reasoning inside
``<think>…</think>`` is ignored when parsing and stripped from whatever is passed between agents.

Only syntax is checked here; whether the tool exists for the agent's role and whether its
arguments are right is :mod:`wideseek_env.env.tools`' business. The policies and the learner reuse
this module to read completions exactly as the env does.

Lenient on purpose (each is a common small-model habit that carries no ambiguity): a missing
``</tool_call>`` at the very end of the text, a ```` ```json ```` fence inside the block, and
``arguments`` given as a JSON string that encodes an object. Everything else is a
:class:`FormatError` whose ``reason`` is written to be shown to the model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

TOOL_OPEN = "<tool_call>"
TOOL_CLOSE = "</tool_call>"
THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"

_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL)
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


@dataclass(frozen=True)
class ToolCall:
    """A syntactically valid tool call: a tool name and its arguments (a JSON object)."""

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FinalMessage:
    """A turn without a tool call: the agent's final message, thinking already stripped."""

    text: str


@dataclass(frozen=True)
class FormatError:
    """A turn that tried to call a tool but could not be read.

    ``kind`` is a short machine label (``json``, ``shape``, ``multiple``, ``tags``, ``tool``,
    ``arguments``); ``reason`` is the sentence shown to the agent.
    """

    kind: str
    reason: str


Parsed = ToolCall | FinalMessage | FormatError


def strip_think(text: str) -> str:
    """Remove reasoning from a completion and trim it.

    Closed ``<think>…</think>`` blocks are removed. A stray ``</think>`` (the opening tag was part
    of the prompt, as with Qwen3's template) drops everything before it; an unclosed ``<think>``
    (generation stopped while thinking) drops everything after it.
    """
    if THINK_OPEN not in text and THINK_CLOSE not in text:
        return text.strip()
    text = _THINK_BLOCK.sub("", text)
    close = text.rfind(THINK_CLOSE)
    if close >= 0:
        text = text[close + len(THINK_CLOSE) :]
    open_ = text.find(THINK_OPEN)
    if open_ >= 0:
        text = text[:open_]
    return text.strip()


def parse_action(text: str) -> Parsed:
    """Read one completion: a :class:`ToolCall`, a :class:`FinalMessage` or a :class:`FormatError`."""
    visible = strip_think(text)
    n_open = visible.count(TOOL_OPEN)
    if n_open == 0:
        if TOOL_CLOSE in visible:
            return FormatError("tags", f"Found {TOOL_CLOSE} without a matching {TOOL_OPEN}.")
        return FinalMessage(visible)
    if n_open > 1:
        return FormatError(
            "multiple", f"Found {n_open} tool calls; call exactly one tool per turn."
        )
    start = visible.index(TOOL_OPEN) + len(TOOL_OPEN)
    end = visible.find(TOOL_CLOSE, start)
    if end < 0:
        if visible.count(TOOL_CLOSE):
            return FormatError("tags", f"{TOOL_CLOSE} appears before {TOOL_OPEN}.")
        body = visible[start:]
    else:
        if visible.count(TOOL_CLOSE) > 1:
            return FormatError("tags", f"Found more than one {TOOL_CLOSE}.")
        body = visible[start:end]
    return _parse_body(body.strip())


def _parse_body(body: str) -> Parsed:
    if body.startswith("```"):
        fenced = _FENCE.match(body)
        if fenced:
            body = fenced.group(1)
    if not body:
        return FormatError("json", f"The {TOOL_OPEN} block is empty.")
    try:
        obj = json.loads(body)
    except json.JSONDecodeError as err:
        return FormatError(
            "json",
            f"The tool call is not valid JSON ({err.msg} at line {err.lineno}, column {err.colno}).",
        )
    return parse_structured(obj)


def parse_structured(obj: Any) -> Parsed:
    """Validate an already-parsed tool call ``{"name": str, "arguments": {...}}``.

    Used for JSON decoded from text and for structured actions of non-LLM policies.
    """
    if type(obj) is not dict:  # the common case (decoded JSON) skips the slower checks
        if isinstance(obj, (ToolCall, FinalMessage, FormatError)):
            return obj
        if not isinstance(obj, Mapping):
            return FormatError(
                "shape",
                'A tool call must be a JSON object {"name": ..., "arguments": {...}}, '
                f"got {type(obj).__name__}.",
            )
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        return FormatError("shape", 'The tool call needs a "name" (a non-empty string).')
    args = obj.get("arguments", {})
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError as err:
            return FormatError("json", f'"arguments" is a string that is not valid JSON ({err.msg}).')
    if not isinstance(args, Mapping):
        return FormatError(
            "shape", f'"arguments" must be a JSON object, got {type(args).__name__}.'
        )
    return ToolCall(name, args)


def format_tool_call(name: str, arguments: Mapping[str, Any]) -> str:
    """The canonical text of a tool call, as the env writes structured actions into transcripts."""
    payload = json.dumps({"name": name, "arguments": dict(arguments)}, ensure_ascii=False)
    return f"{TOOL_OPEN}\n{payload}\n{TOOL_CLOSE}"
