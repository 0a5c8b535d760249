"""Policies that act for batches of agents (no torch here).

- :class:`~wideseek_env.policies.scripted.ScriptedPolicy`: the heuristic baseline (no LLM);
- :class:`~wideseek_env.policies.random.RandomPolicy`: junk and random calls, for robustness runs;
- :class:`~wideseek_env.policies.openai.OpenAIPolicy`: any OpenAI-compatible chat endpoint.

They are imported on first use (``from wideseek_env.policies import ScriptedPolicy`` works).
"""

from __future__ import annotations

from typing import Any

from wideseek_env.policies.base import AgentAction, AgentRequest, Policy

_LAZY = {
    "ScriptedPolicy": "wideseek_env.policies.scripted",
    "RandomPolicy": "wideseek_env.policies.random",
    "OpenAIPolicy": "wideseek_env.policies.openai",
}

__all__ = ["AgentAction", "AgentRequest", "Policy", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'wideseek_env.policies' has no attribute {name!r}")
