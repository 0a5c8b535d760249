"""OpenAIPolicy against real HTTP servers on 127.0.0.1 that answer with scripted completions."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from wideseek_env.env.protocol import format_tool_call, parse_action
from wideseek_env.policies import AgentRequest
from wideseek_env.policies.openai import OpenAIPolicy, PolicyError, to_openai_messages

Reply = tuple[int, dict[str, Any] | str, dict[str, str]]


class FakeServer:
    """A chat-completions server whose answer to each request is computed by ``reply(body)``."""

    def __init__(self, reply: Callable[[dict[str, Any]], Reply]) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.bodies.append(body)
                outer.paths.append(self.path)
                outer.auth = self.headers.get("Authorization")
                status, payload, headers = reply(body)
                data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (the timeout test)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.01,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def completion(message: dict[str, Any], prompt: int = 11, gen: int = 7) -> Reply:
    return 200, {
        "id": "x",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": gen},
    }, {}


SEARCH_TOOL = {"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}


def request(key: Any, text: str = "find the capital of France") -> AgentRequest:
    return AgentRequest(
        key=key,
        role="subagent",
        messages=[{"role": "system", "content": "sys"}, {"role": "user", "content": text}],
        tools=[SEARCH_TOOL],
    )


@pytest.fixture
def servers():
    made: list[FakeServer] = []
    yield lambda reply: made.append(FakeServer(reply)) or made[-1]
    for s in made:
        s.close()


def free_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


def test_native_tool_call_becomes_structured_action_and_usage_is_recorded(servers):
    def reply(body):
        user = body["messages"][-1]["content"]
        if "France" in user:
            call = {"id": "c1", "type": "function",
                    "function": {"name": "search", "arguments": json.dumps({"queries": [user]})}}
            return completion({"content": None, "tool_calls": [call]})
        return completion({"content": "The answer is 42."}, prompt=5, gen=3)

    srv = servers(reply)
    with OpenAIPolicy(srv.url, "m", api_key="k", temperature=0.0, seed=3) as policy:
        out = policy.act([request(("e0", "sub_0")), request(("e1", "sub_1"), "what is 6*7")])
        assert [a.key for a in out] == [("e0", "sub_0"), ("e1", "sub_1")]
        assert out[0].action == {"name": "search", "arguments": {"queries": ["find the capital of France"]}}
        assert out[1].action == "The answer is 42."
        assert (out[0].prompt_tokens, out[0].completion_tokens) == (11, 7)
        assert (out[1].prompt_tokens, out[1].completion_tokens) == (5, 3)
        usage = policy.usage
        assert (usage.requests, usage.prompt_tokens, usage.completion_tokens) == (2, 16, 10)
    body = srv.bodies[0]
    assert srv.paths[0] == "/v1/chat/completions"
    assert srv.auth == "Bearer k"
    assert body["model"] == "m" and body["tools"] == [SEARCH_TOOL] and body["seed"] == 3
    assert body["temperature"] == 0.0


def test_malformed_native_calls_are_passed_as_text_for_the_env_to_reject(servers):
    def reply(body):
        calls = [
            {"id": "a", "type": "function", "function": {"name": "search", "arguments": '{"queries": ["x"]}'}},
            {"id": "b", "type": "function", "function": {"name": "access", "arguments": '{"urls": ["u"]}'}},
        ]
        if body["messages"][-1]["content"] == "bad json":
            calls = [{"id": "a", "type": "function", "function": {"name": "search", "arguments": "{oops"}}]
        return completion({"content": "", "tool_calls": calls})

    srv = servers(reply)
    with OpenAIPolicy(srv.url, "m") as policy:
        two, bad = policy.act([request(0, "two"), request(1, "bad json")])
    assert isinstance(two.action, str) and parse_action(two.action).kind == "multiple"
    assert isinstance(bad.action, str) and parse_action(bad.action).kind == "json"


def test_text_mode_sends_transcript_unchanged_and_returns_raw_completion(servers):
    raw = "<think>hmm</think>\n" + format_tool_call("search", {"queries": ["a"]})
    srv = servers(lambda body: completion({"content": raw}))
    with OpenAIPolicy(srv.url, "m", tool_mode="text") as policy:
        (out,) = policy.act([request(0)])
    assert out.action == raw
    assert "tools" not in srv.bodies[0]
    assert srv.bodies[0]["messages"] == [
        {"role": "system", "content": "sys"}, {"role": "user", "content": "find the capital of France"}
    ]


def test_transcript_rewritten_to_openai_tool_shape():
    call = "I will search.\n" + format_tool_call("search", {"queries": ["x"]})
    msgs = [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "u"},
        {"role": "assistant", "content": call},
        {"role": "tool", "content": "results"},
        {"role": "assistant", "content": "<tool_call>{bad</tool_call>"},
        {"role": "tool", "content": "Error: not JSON"},
    ]
    out = to_openai_messages(msgs)
    assert out[2]["content"] == "I will search."
    assert out[2]["tool_calls"][0]["function"] == {"name": "search", "arguments": '{"queries": ["x"]}'}
    assert out[3] == {"role": "tool", "content": "results", "tool_call_id": out[2]["tool_calls"][0]["id"]}
    assert out[4] == {"role": "assistant", "content": "<tool_call>{bad</tool_call>"}
    assert out[5] == {"role": "user", "content": "Error: not JSON"}


def test_round_robin_over_base_urls(servers):
    a = servers(lambda body: completion({"content": "A"}))
    b = servers(lambda body: completion({"content": "B"}))
    with OpenAIPolicy([a.url, b.url], "m", concurrency=4) as policy:
        first = policy.act([request(i) for i in range(5)])
        second = policy.act([request(i) for i in range(3)])
    assert [x.action for x in first] == ["A", "B", "A", "B", "A"]
    # The next batch continues the rotation instead of restarting on the first server.
    assert [x.action for x in second] == ["B", "A", "B"]
    assert (len(a.bodies), len(b.bodies)) == (4, 4)


def test_retries_on_5xx_and_429_then_succeeds(servers):
    answers = iter([
        (503, "overloaded", {}),
        (429, {"error": "slow down"}, {"Retry-After": "0"}),
        completion({"content": "ok"}),
    ])
    srv = servers(lambda body: next(answers))
    with OpenAIPolicy(srv.url, "m", backoff_s=0.01, max_retries=3) as policy:
        (out,) = policy.act([request(0)])
        assert out.action == "ok"
        assert policy.usage.retries == 2 and policy.usage.requests == 1
    assert len(srv.bodies) == 3


def test_connection_error_fails_over_to_next_url(servers):
    good = servers(lambda body: completion({"content": "ok"}))
    with OpenAIPolicy([free_port_url(), good.url], "m", backoff_s=0.01) as policy:
        out = policy.act([request(0), request(1)])
    assert [x.action for x in out] == ["ok", "ok"]


def test_client_error_raises_at_once_and_exhausted_retries_raise(servers):
    bad = servers(lambda body: (400, {"error": "model 'm' not found"}, {}))
    with OpenAIPolicy(bad.url, "m", backoff_s=0.01) as policy, pytest.raises(PolicyError, match="not found"):
        policy.act([request(0)])
    assert len(bad.bodies) == 1
    down = servers(lambda body: (500, "boom", {}))
    with OpenAIPolicy(down.url, "m", backoff_s=0.001, max_retries=2) as policy, \
            pytest.raises(PolicyError, match="3 attempt"):
        policy.act([request(0)])
    assert len(down.bodies) == 3


def test_timeout_is_retried(servers):
    import time

    calls = []

    def reply(body):
        calls.append(1)
        if len(calls) == 1:
            time.sleep(0.5)
        return completion({"content": "late but fine"})

    srv = servers(reply)
    with OpenAIPolicy(srv.url, "m", timeout_s=0.2, backoff_s=0.01) as policy:
        (out,) = policy.act([request(0)])
    assert out.action == "late but fine" and len(calls) == 2


def test_requests_run_concurrently(servers):
    barrier = threading.Barrier(4, timeout=5)

    def reply(body):
        barrier.wait()  # only returns if 4 requests are in flight at once
        return completion({"content": "x"})

    srv = servers(reply)
    with OpenAIPolicy(srv.url, "m", concurrency=4, max_retries=0) as policy:
        out = policy.act([request(i) for i in range(4)])
    assert len(out) == 4
