"""A policy backed by any OpenAI-compatible ``/v1/chat/completions`` endpoint (vLLM, SGLang,
llama.cpp's server, OpenAI itself ...).

Two ways to call tools:

- ``tool_mode="native"``: the request carries ``tools`` and the server's own parser returns
  ``tool_calls`` (vLLM: ``--enable-auto-tool-choice --tool-call-parser hermes``). One valid call
  becomes the env's structured action ``{"name", "arguments"}``; anything else (several calls,
  arguments that are not JSON) is handed to the env as text in the ``<tool_call>`` protocol, so
  the env reports the mistake to the agent exactly as it would for a text completion. The env's
  transcripts hold tool calls as text, so for each request the conversation is rewritten into the
  OpenAI shape (assistant ``tool_calls`` with ids, tool messages with the matching
  ``tool_call_id``).
- ``tool_mode="text"``: the conversation is sent as it is, without ``tools`` (the env's system
  prompt lists the tools), and the raw completion is the action; the env parses it.

Every request asks for ``max_completion_tokens`` (``max_tokens`` is deprecated in the OpenAI API
and in vLLM) and, in native mode, ``parallel_tool_calls: false`` (the env reads one call per
turn). A reasoning parser's ``reasoning`` (or ``reasoning_content``) is kept: the action becomes
``<think>reasoning</think>`` followed by the answer or the call, as a model without a parser would
have written it, so the transcript holds it and the env strips it as usual. ``finish_reason`` is
recorded on every action (``"length"`` marks a completion cut by the token limit). Tool-call ids
are nine alphanumeric characters (``call00003``), the one shape every chat template accepts
(Mistral's requires it). :meth:`OpenAIPolicy.check_server` checks once that the model is served
and, in native mode, that the chat template renders ``tools`` at all (a template that ignores
them hides the tools from the model; it warns and names ``--tool-mode text``).

Requests of one batch run concurrently on a thread pool; request *i* goes to base URL
``i mod len(base_urls)`` (one server per GPU or machine), and a retry moves on to the next URL.
Connection errors, timeouts, 429 and 5xx are retried with exponential backoff (``Retry-After`` is
honoured); other 4xx answers are configuration errors and raise :class:`PolicyError` at once.
Token usage reported by the server is recorded on every action and summed in :attr:`usage`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Literal

import requests

from wideseek_env.env.profiles import profile_of_tools
from wideseek_env.env.protocol import (
    THINK_CLOSE,
    THINK_OPEN,
    ToolCall,
    format_tool_call,
    parse_action,
    strip_think,
)
from wideseek_env.http import RetryingClient
from wideseek_env.policies.base import AgentAction, AgentRequest

ToolMode = Literal["native", "text"]


class PolicyError(RuntimeError):
    """The endpoint could not produce a completion (bad configuration, or every retry failed)."""


@dataclass(frozen=True)
class Usage:
    """Totals over the policy's lifetime."""

    requests: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


def to_openai_messages(messages: Sequence[Mapping[str, Any]],
                       parse: Callable[[str], Any] = parse_action) -> list[dict[str, Any]]:
    """Rewrite an env transcript into the OpenAI tool-calling shape.

    An assistant message whose text is one valid ``<tool_call>`` becomes ``content`` (the text
    before the call, thinking removed) plus ``tool_calls`` with a fresh id; the tool message that
    follows gets that id as ``tool_call_id``. Other messages keep only ``role`` and ``content``.
    ``parse`` reads a call as the env's interface does (the paper's reads the first one).
    """
    out: list[dict[str, Any]] = []
    pending_id: str | None = None
    for i, msg in enumerate(messages):
        role = msg.get("role")
        content = msg.get("content") or ""
        if role == "assistant":
            parsed = parse(content)
            if isinstance(parsed, ToolCall):
                pending_id = tool_call_id(i)
                visible = strip_think(content)
                before = visible[: visible.find("<tool_call>")].strip()
                out.append({
                    "role": "assistant",
                    "content": before or None,
                    "tool_calls": [{
                        "id": pending_id,
                        "type": "function",
                        "function": {
                            "name": parsed.name,
                            "arguments": json.dumps(dict(parsed.arguments), ensure_ascii=False),
                        },
                    }],
                })
                continue
            pending_id = None
            out.append({"role": "assistant", "content": content})
        elif role == "tool":
            # A tool message after a malformed call has no call to answer; show it as user text.
            if pending_id is None:
                out.append({"role": "user", "content": content})
            else:
                out.append({"role": "tool", "content": content, "tool_call_id": pending_id})
        else:
            out.append({"role": str(role), "content": content})
    return out


def tool_call_id(index: int) -> str:
    """The id of the tool call in transcript message ``index``: nine alphanumeric characters."""
    return f"call{index:05d}" if index < 100_000 else f"c{index:08d}"


def reasoning_of(message: Mapping[str, Any]) -> str:
    """The reasoning a server's reasoning parser split off (``reasoning`` in vLLM 0.32,
    ``reasoning_content`` in older vLLM and other servers); ``""`` when none."""
    value = message.get("reasoning") or message.get("reasoning_content") or ""
    return value if isinstance(value, str) else ""


def action_from_message(message: Mapping[str, Any]) -> str | dict[str, Any]:
    """The env action for one returned ``choices[0].message`` (reasoning kept as ``<think>``)."""
    reasoning = reasoning_of(message)
    action = _action(message)
    if not reasoning.strip():
        return action
    if isinstance(action, dict):
        action = format_tool_call(action["name"], action["arguments"])
    return f"{THINK_OPEN}{reasoning}{THINK_CLOSE}\n{action}"


def _action(message: Mapping[str, Any]) -> str | dict[str, Any]:
    content = message.get("content") or ""
    calls = message.get("tool_calls") or []
    if not calls:
        return content
    if len(calls) == 1:
        fn = calls[0].get("function") or {}
        name, raw = fn.get("name"), fn.get("arguments", "{}")
        try:
            args = json.loads(raw) if isinstance(raw, str) else raw
        except json.JSONDecodeError:
            args = None
        if isinstance(name, str) and name and isinstance(args, dict) and not isinstance(
            parse_action(content), ToolCall
        ):
            return {"name": name, "arguments": args}
    # Anything else is written back as protocol text so the env explains the mistake.
    parts = [content] if content else []
    for call in calls:
        fn = call.get("function") or {}
        raw = fn.get("arguments", "{}")
        try:
            parts.append(format_tool_call(str(fn.get("name", "")), json.loads(raw)))
        except (json.JSONDecodeError, TypeError):
            parts.append(f'<tool_call>\n{{"name": {json.dumps(fn.get("name"))}, "arguments": {raw}}}\n</tool_call>')
    return "\n".join(parts)


class OpenAIPolicy:
    """Act through an OpenAI-compatible chat-completions endpoint; see the module docstring.

    ``base_urls`` are server roots such as ``http://host:8000/v1`` (a trailing ``/v1`` is added
    when missing). ``extra_body`` is merged into every request (for example
    ``{"chat_template_kwargs": {"enable_thinking": False}}`` for Qwen3 on vLLM).
    """

    def __init__(
        self,
        base_urls: str | Sequence[str],
        model: str,
        *,
        api_key: str | None = None,
        tool_mode: ToolMode = "native",
        temperature: float = 0.7,
        top_p: float = 1.0,
        max_tokens: int = 2048,
        seed: int | None = None,
        timeout_s: float = 600.0,
        max_retries: int = 5,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        concurrency: int = 32,
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        urls = [base_urls] if isinstance(base_urls, str) else list(base_urls)
        if not urls:
            raise ValueError("OpenAIPolicy: give at least one base URL")
        if tool_mode not in ("native", "text"):
            raise ValueError(f"OpenAIPolicy: tool_mode must be 'native' or 'text', got {tool_mode!r}")
        if concurrency < 1 or max_retries < 0:
            raise ValueError("OpenAIPolicy: concurrency must be >= 1 and max_retries >= 0")
        self.endpoints = [self._endpoint(u) for u in urls]
        self.model = model
        self.api_key = api_key
        self.tool_mode: ToolMode = tool_mode
        self.sampling = {"temperature": temperature, "top_p": top_p,
                         "max_completion_tokens": max_tokens}
        self.seed = seed
        self.concurrency = concurrency
        self.extra_body = dict(extra_body or {})
        self._next_slot = 0
        self._lock = threading.Lock()
        self.http = RetryingClient(
            self.endpoints, api_key=api_key, timeout_s=timeout_s, max_retries=max_retries,
            backoff_s=backoff_s, max_backoff_s=max_backoff_s, error=PolicyError,
            prefix="OpenAIPolicy: ", on_retry=self._count_retry)
        self._usage = Usage()
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="wideseek-openai")

    @staticmethod
    def _endpoint(url: str) -> str:
        url = url.strip().rstrip("/")
        if "://" not in url:  # a bare host:port
            url = "http://" + url
        if url.endswith("/chat/completions"):
            return url
        if not url.endswith("/v1"):
            url += "/v1"
        return url + "/chat/completions"

    @property
    def usage(self) -> Usage:
        """Requests, retries and tokens so far (a snapshot)."""
        with self._lock:
            return self._usage

    def act(self, requests_: Sequence[AgentRequest]) -> list[AgentAction]:
        """One completion per request, concurrently; same order as ``requests_``."""
        start = self._next_slot
        self._next_slot += len(requests_)
        futures = [
            self._pool.submit(self._complete, req, start + i) for i, req in enumerate(requests_)
        ]
        return [f.result() for f in futures]

    def payload(self, request: AgentRequest) -> dict[str, Any]:
        """The JSON body sent for ``request`` (public so tests and users can inspect it)."""
        body: dict[str, Any] = {"model": self.model, **self.sampling}
        if self.tool_mode == "native":
            body["messages"] = to_openai_messages(request.messages,
                                                  profile_of_tools(request.tools).parse)
            if request.tools:
                body["tools"] = [dict(t) for t in request.tools]
                body["tool_choice"] = "auto"
                body["parallel_tool_calls"] = False
        else:
            body["messages"] = [
                {"role": m["role"], "content": m.get("content") or ""} for m in request.messages
            ]
        if self.seed is not None:
            body["seed"] = self.seed
        body.update(self.extra_body)
        return body

    def check_server(self) -> list[str]:
        """Check once, before a run, what a wrong setting would otherwise hide; return warnings.

        Raises :class:`PolicyError` when a server cannot be reached or does not serve
        :attr:`model` (listed by ``GET /models``). In native mode it sends one tiny request with
        and one without ``tools`` to the first server and compares the prompt tokens it reports:
        equal counts mean the chat template ignores ``tools`` and the model would never see them.
        """
        warnings: list[str] = []
        for endpoint in self.endpoints:
            root = endpoint[: -len("/chat/completions")]
            try:
                resp = self.http.session().get(root + "/models", timeout=30)
            except requests.RequestException as err:
                raise PolicyError(f"OpenAIPolicy: cannot reach {root} ({type(err).__name__}: "
                                  f"{err})") from None
            served = _model_ids(resp)
            if served is not None and self.model not in served:
                raise PolicyError(f"OpenAIPolicy: model {self.model!r} is not served at {root} "
                                  f"(it serves {sorted(served)}); check --model")
        if self.tool_mode == "native":
            probe = AgentRequest(key="probe", role="check", messages=[
                {"role": "user", "content": "Say hi."}], tools=[_PROBE_TOOL])
            counts = []
            for tools in (True, False):
                body = self.payload(probe if tools else replace(probe, tools=()))
                body.update(max_completion_tokens=1, temperature=0.0)
                _, resp = self.http.request("POST", "", 0, body)
                counts.append((resp.json().get("usage") or {}).get("prompt_tokens"))
            if None in counts:
                warnings.append(f"{self.endpoints[0]} reports no prompt tokens; cannot check that "
                                "its chat template renders tools (native tool mode)")
            elif counts[0] <= counts[1]:
                warnings.append(
                    f"the chat template of {self.model!r} at {self.endpoints[0]} ignores `tools` "
                    f"(the prompt is {counts[1]} tokens with and without them): in native tool "
                    "mode the model would never see its tools; use --tool-mode text")
        return warnings

    def _count_retry(self) -> None:
        with self._lock:
            self._usage = _add(self._usage, retries=1)

    def _complete(self, request: AgentRequest, slot: int) -> AgentAction:
        url, resp = self.http.request("POST", "", slot, self.payload(request))
        return self._action(request, resp, url)

    def _action(self, request: AgentRequest, resp: requests.Response, url: str) -> AgentAction:
        try:
            data = resp.json()
            choice = data["choices"][0]
            message = choice["message"]
        except (ValueError, KeyError, IndexError, TypeError) as err:
            raise PolicyError(
                f"OpenAIPolicy: malformed response from {url}: {resp.text[:500]}"
            ) from err
        usage = data.get("usage") or {}
        prompt = usage.get("prompt_tokens")
        completion = usage.get("completion_tokens")
        with self._lock:
            self._usage = _add(
                self._usage, requests=1, prompt_tokens=prompt or 0, completion_tokens=completion or 0
            )
        if self.tool_mode == "native":
            action: str | dict[str, Any] = action_from_message(message)
        else:  # the env parses the text; a reasoning parser's share is put back in front
            reasoning = reasoning_of(message)
            action = message.get("content") or ""
            if reasoning.strip():
                action = f"{THINK_OPEN}{reasoning}{THINK_CLOSE}\n{action}"
        finish = choice.get("finish_reason") if isinstance(choice, Mapping) else None
        return AgentAction(request.key, action, completion_tokens=completion, prompt_tokens=prompt,
                           finish_reason=finish if isinstance(finish, str) else None)

    def close(self) -> None:
        """Stop the worker threads."""
        self._pool.shutdown(wait=True)

    def __enter__(self) -> OpenAIPolicy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_PROBE_TOOL = {"type": "function", "function": {
    "name": "lookup_probe", "description": "Look a word up (a probe of the chat template).",
    "parameters": {"type": "object", "properties": {"word": {"type": "string"}},
                   "required": ["word"]}}}


def _model_ids(resp: requests.Response) -> set[str] | None:
    """The model ids of a ``GET /models`` answer (None when the server has no such list)."""
    try:
        data = resp.json()["data"] if resp.status_code == 200 else None
        return {str(m["id"]) for m in data} if isinstance(data, list) else None
    except (ValueError, KeyError, TypeError):
        return None


def _add(usage: Usage, **deltas: int) -> Usage:
    return Usage(**{k: getattr(usage, k) + deltas.get(k, 0) for k in Usage.__dataclass_fields__})


__all__ = ["OpenAIPolicy", "PolicyError", "Usage", "action_from_message",
           "to_openai_messages"]
