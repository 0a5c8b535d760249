"""The policy protocol: act for a *batch* of agents at once.

The runner gathers every agent that needs an action, across every running episode, and calls
``policy.act`` once, so an engine (vLLM, an HTTP server, a HF model) can batch generation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class AgentRequest:
    """What a policy sees for one agent that needs to act.

    ``key`` identifies the agent across the batch (for example ``(episode_index, agent_id)``) and
    is handed back unchanged. ``messages`` is the agent's whole conversation so far (OpenAI chat
    shape); ``tools`` are the JSON schemas of the tools this agent may call.
    """

    key: Any
    role: str
    messages: Sequence[Mapping[str, Any]]
    tools: Sequence[Mapping[str, Any]]
    info: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AgentAction:
    """A policy's answer for one agent: raw completion text, or an already-parsed tool call
    (``{"name": ..., "arguments": {...}}``), plus optional cost accounting and why generation
    stopped (``finish_reason``: ``"stop"``, ``"tool_calls"``, or ``"length"`` for a completion cut
    by the token limit; ``None`` when the policy does not know)."""

    key: Any
    action: str | Mapping[str, Any]
    completion_tokens: int | None = None
    prompt_tokens: int | None = None
    finish_reason: str | None = None


@runtime_checkable
class Policy(Protocol):
    """Anything that can act for a batch of agents. Return one action per request, same order."""

    def act(self, requests: Sequence[AgentRequest]) -> list[AgentAction]: ...
