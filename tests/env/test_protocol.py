"""The text protocol: reading completions exactly as the env, the policies and the learner do."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wideseek_env.env.protocol import (
    FinalMessage,
    FormatError,
    ToolCall,
    format_tool_call,
    parse_action,
    parse_structured,
    strip_think,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain answer", "plain answer"),
        ("<think>hmm</think>\nanswer", "answer"),
        ("<think>a</think>x<think>b</think>y", "xy"),
        ("reasoning whose opening tag was in the prompt</think> answer", "answer"),
        ("answer <think>cut off while thinki", "answer"),
        ("  \n", ""),
    ],
)
def test_strip_think(text: str, expected: str) -> None:
    assert strip_think(text) == expected


def test_tool_call_is_parsed_with_reasoning_around_it() -> None:
    text = ('<think>I should search</think>Let me look.\n<tool_call>\n'
            '{"name": "search", "arguments": {"queries": ["rivers of Veloria"]}}\n</tool_call>')
    assert parse_action(text) == ToolCall("search", {"queries": ["rivers of Veloria"]})


def test_text_without_tool_call_is_a_final_message_with_think_stripped() -> None:
    assert parse_action("<think>done</think>\n| a |\n| 1 |") == FinalMessage("| a |\n| 1 |")


def test_tool_call_inside_think_does_not_count() -> None:
    text = '<think><tool_call>{"name": "search", "arguments": {}}</tool_call></think>final'
    assert parse_action(text) == FinalMessage("final")


@pytest.mark.parametrize(
    ("text", "call"),
    [
        ('<tool_call>{"name": "access", "arguments": {"urls": ["u"]}}', ToolCall("access", {"urls": ["u"]})),
        ('<tool_call>```json\n{"name": "access", "arguments": {"urls": ["u"]}}\n```</tool_call>',
         ToolCall("access", {"urls": ["u"]})),
        ('<tool_call>{"name": "search", "arguments": "{\\"queries\\": [\\"q\\"]}"}</tool_call>',
         ToolCall("search", {"queries": ["q"]})),
        ('<tool_call>{"name": "search"}</tool_call>', ToolCall("search", {})),
    ],
)
def test_lenient_forms(text: str, call: ToolCall) -> None:
    assert parse_action(text) == call


@pytest.mark.parametrize(
    ("text", "kind", "fragment"),
    [
        ('<tool_call>{"name": "search", "arguments": {</tool_call>', "json", "not valid JSON"),
        ("<tool_call>   </tool_call>", "json", "empty"),
        ('<tool_call>["search"]</tool_call>', "shape", "got list"),
        ('<tool_call>{"arguments": {}}</tool_call>', "shape", '"name"'),
        ('<tool_call>{"name": "search", "arguments": [1]}</tool_call>', "shape", "JSON object"),
        ('<tool_call>{"name": "search", "arguments": "{oops"}</tool_call>', "json", "string"),
        ('<tool_call>{"name": "a"}</tool_call><tool_call>{"name": "b"}</tool_call>', "multiple",
         "exactly one"),
        ('{"name": "a"}</tool_call>', "tags", "without"),
        ('</tool_call><tool_call>{"name": "a"}', "tags", "before"),
        ('<tool_call>{"name": "a"}</tool_call></tool_call>', "tags", "more than one"),
    ],
)
def test_format_errors_say_what_is_wrong(text: str, kind: str, fragment: str) -> None:
    parsed = parse_action(text)
    assert isinstance(parsed, FormatError)
    assert parsed.kind == kind
    assert fragment in parsed.reason


def test_structured_actions() -> None:
    assert parse_structured({"name": "delegate", "arguments": {"subtasks": ["a"]}}) == ToolCall(
        "delegate", {"subtasks": ["a"]})
    assert isinstance(parse_structured({"name": 3}), FormatError)
    assert isinstance(parse_structured(["x"]), FormatError)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(name=st.text(min_size=1).filter(lambda s: s.strip() == s and s),
       args=st.dictionaries(st.text(), _json_values, max_size=4))
def test_format_then_parse_round_trips(name: str, args: dict) -> None:
    text = format_tool_call(name, args)
    if "<tool_call>" in json.dumps([name, args], ensure_ascii=False) or "</tool_call>" in text[11:-12]:
        return  # a tag inside a string value is ambiguous by construction
    if "<think>" in text or "</think>" in text:
        return
    assert parse_action(text) == ToolCall(name, args)


_FRAGMENTS = ["<tool_call>", "</tool_call>", "<think>", "</think>", "{", "}", "[", "]", '"', ":",
              ",", '"name"', '"arguments"', '"search"', "```json", "```", "\\", "\n"]
_texts = st.lists(st.sampled_from(_FRAGMENTS) | st.text(max_size=6), max_size=30).map("".join)


@settings(max_examples=400, deadline=None)
@given(_texts)
def test_parse_action_never_raises(text: str) -> None:
    assert isinstance(parse_action(text), (ToolCall, FinalMessage, FormatError))
