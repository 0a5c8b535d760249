"""System prompts per role and the short texts the env writes into conversations, in English and
Chinese (chosen by the task's ``language``; anything that is not Chinese gets English).

Roles: ``lead`` (decomposes and delegates), ``subagent`` (searches, reads, reports) and
``single`` (the single-agent baseline, which searches itself and answers). When the env is built
with ``tools_in_prompt=True`` (the default) the system prompt also lists the role's tools as JSON
schemas inside ``<tools></tools>`` and explains the ``<tool_call>`` format, so any chat model can
play without the policy passing ``tools=`` to its chat template; a policy that does pass them
should build the env with ``tools_in_prompt=False`` to avoid listing them twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

_INTRO = {
    ("lead", "en"): (
        "You are the lead agent of a research team. The user asks for a table that needs many "
        "facts from many sources. Split the work into independent subtasks and hand them to "
        "subagents with the `delegate` tool: up to {width} subagents run in parallel per call, "
        "each in its own fresh context, and you get all their reports back together. You may "
        "delegate again to fill gaps or check doubtful cells. You have at most {turns} turns."
    ),
    ("lead", "zh"): (
        "你是一个研究团队的主智能体。用户要求一张需要从大量来源收集大量事实的表格。请把工作拆分成相互独立的"
        "子任务，并用 `delegate` 工具交给子智能体：每次调用最多并行运行 {width} 个子智能体，每个子智能体"
        "都有独立的全新上下文，它们全部完成后你会一起收到报告。你可以再次委派来补全缺失或核实可疑的单元格。"
        "你最多有 {turns} 轮。"
    ),
    ("subagent", "en"): (
        "You are a research subagent. Complete the subtask you are given by searching the web "
        "and reading pages. When you are done, reply without a tool call: that reply is your "
        "report to the lead agent, so state the facts you found precisely, with their sources, "
        "and say what you could not find. You have at most {turns} turns."
    ),
    ("subagent", "zh"): (
        "你是一个研究子智能体。通过搜索网络和阅读网页完成交给你的子任务。完成后请直接回复，不要调用工具："
        "这条回复就是你交给主智能体的报告，请准确写明你找到的事实及其来源，并说明哪些信息没有找到。"
        "你最多有 {turns} 轮。"
    ),
    ("single", "en"): (
        "You are a research agent. The user asks for a table that needs many facts from many "
        "sources. Search the web and read pages to find them. You have at most {turns} turns."
    ),
    ("single", "zh"): (
        "你是一个研究智能体。用户要求一张需要从大量来源收集大量事实的表格。请搜索网络并阅读网页来找到这些事实。"
        "你最多有 {turns} 轮。"
    ),
}

_ANSWER = {
    "en": (
        "When you have the answer, reply without a tool call and put the table in a markdown "
        "block (```markdown … ```), with exactly the columns the user asked for, one row per "
        "entity. That reply ends the task."
    ),
    "zh": (
        "得到答案后，请直接回复（不要调用工具），把表格放在 markdown 代码块（```markdown … ```）中，"
        "列与用户要求的完全一致，每个实体一行。这条回复即结束任务。"
    ),
}

_ANSWER_QA = {
    "en": (
        "The user may instead ask a question with a short answer. Then, when you have it, reply "
        "without a tool call and put the answer inside \\boxed{} (for example \\boxed{1987}). "
        "That reply ends the task."
    ),
    "zh": (
        "用户也可能提出一个答案简短的问题。此时，得到答案后请直接回复（不要调用工具），并把答案放在 "
        "\\boxed{} 中（例如 \\boxed{1987}）。这条回复即结束任务。"
    ),
}

_TOOLS = {
    "en": (
        "# Tools\n\nCall at most one tool per turn. The tools you can call are described by "
        "these JSON schemas:\n<tools>\n{schemas}\n</tools>\n\nTo call a tool, write one JSON "
        "object with the tool's name and arguments between the tags, like this:\n"
        '<tool_call>\n{{"name": "<tool name>", "arguments": {{...}}}}\n</tool_call>\n'
        "A reply without a tool call is your final message."
    ),
    "zh": (
        "# 工具\n\n每轮最多调用一个工具。你可以调用的工具由以下 JSON schema 描述：\n<tools>\n{schemas}\n"
        "</tools>\n\n调用工具时，在标签之间写一个包含工具名称和参数的 JSON 对象，例如：\n"
        '<tool_call>\n{{"name": "<工具名>", "arguments": {{...}}}}\n</tool_call>\n'
        "不包含工具调用的回复就是你的最终消息。"
    ),
}

# Short texts the env writes into tool messages.
TEXTS = {
    "en": {
        "results": "Results of {n} subtask(s):",
        "subtask": "## Subtask {i} ({agent}): {subtask}",
        "done": "Status: finished after {turns} turn(s). Report:",
        "failed": "Status: failed ({reason}).",
        "last_turn": "[This is your last turn: reply now with your final message, without a tool call.]",
        "out_of_turns": "ran out of turns ({turns})",
        "context": "exceeded context window ({used} > {limit} tokens)",
        "no_report": "(empty report)",
    },
    "zh": {
        "results": "{n} 个子任务的结果：",
        "subtask": "## 子任务 {i}（{agent}）：{subtask}",
        "done": "状态：{turns} 轮后完成。报告：",
        "failed": "状态：失败（{reason}）。",
        "last_turn": "[这是你的最后一轮：请立即给出最终消息，不要调用工具。]",
        "out_of_turns": "轮数用尽（{turns}）",
        "context": "超出上下文窗口（{used} > {limit} tokens）",
        "no_report": "（空报告）",
    },
}


def language_key(language: str) -> str:
    """``"zh"`` for any Chinese language tag (``zh``, ``zh-CN``, ``Chinese``), else ``"en"``."""
    low = language.lower()
    return "zh" if low.startswith("zh") or low.startswith("chinese") else "en"


def system_prompt(
    role: str,
    language: str,
    *,
    tools: Sequence[Mapping[str, Any]],
    max_turns: int,
    width: int,
    tools_in_prompt: bool,
    kind: str = "table",
) -> str:
    """The system prompt of ``role`` (``lead``, ``subagent`` or ``single``); a ``qa`` task's
    lead is told to box its answer."""
    lang = language_key(language)
    parts = [_INTRO[(role, lang)].format(width=width, turns=max_turns)]
    if role != "subagent":
        parts.append(_ANSWER_QA[lang] if kind == "qa" else _ANSWER[lang])
    if tools_in_prompt and tools:
        parts.append(tools_block(tools, lang))
    return "\n\n".join(parts)


def tools_block(tools: Sequence[Mapping[str, Any]], language: str) -> str:
    """The ``# Tools`` section: the schemas inside ``<tools></tools>`` and the call format."""
    schemas = "\n".join(json.dumps(t, ensure_ascii=False) for t in tools)
    return _TOOLS[language_key(language)].format(schemas=schemas)
