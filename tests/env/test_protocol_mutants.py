"""Tool-call protocol cases that mutation testing found unguarded (benchmarks/mutation.py, group
"protocol"): think tags at the very start of a completion, and non-ASCII text in calls."""

from __future__ import annotations

import pytest

from wideseek_env.env.protocol import (
    FinalMessage,
    FormatError,
    ToolCall,
    format_tool_call,
    parse_action,
    parse_structured,
    strip_think,
)


@pytest.mark.parametrize("text,visible", [
    # a completion cut mid-thought that starts with <think>: nothing of it is a final message
    ("<think>I should first search for the list of", ""),
    ("<think>", ""),
    # the opening tag was in the prompt (Qwen3's template): the closing tag at position 0
    ("</think>The answer.", "The answer."),
    ("</think><think>again", ""),
    ("<think>a</think>b<think>c", "b"),
    ("answer <think>cut", "answer"),
])
def test_think_tags_at_the_very_start(text: str, visible: str) -> None:
    assert strip_think(text) == visible
    parsed = parse_action(text)
    assert parsed == FinalMessage(visible)


def test_a_call_after_thinking_that_starts_the_completion() -> None:
    call = format_tool_call("search", {"queries": ["x"]})
    assert parse_action("<think>plan</think>" + call) == ToolCall("search", {"queries": ["x"]})
    assert parse_action("</think>" + call) == ToolCall("search", {"queries": ["x"]})
    assert parse_action("<think>" + call) == FinalMessage("")  # the call is still in thought


def test_non_ascii_calls_stay_readable() -> None:
    text = format_tool_call("search", {"queries": ["Zürich", "東京"]})
    assert "Zürich" in text and "東京" in text and "\\u" not in text
    assert parse_action(text) == ToolCall("search", {"queries": ["Zürich", "東京"]})


def test_structured_objects_pass_through() -> None:
    call = ToolCall("access", {"urls": ["u"]})
    assert parse_structured(call) is call
    assert parse_structured(FinalMessage("done")) == FinalMessage("done")
    error = parse_structured(["not", "a", "call"])
    assert isinstance(error, FormatError) and error.kind == "shape"


def test_parsed_actions_are_read_only() -> None:
    import dataclasses

    for parsed in (ToolCall("search", {}), FinalMessage("x"), FormatError("json", "bad")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            parsed.kind = "other"  # type: ignore[union-attr]
