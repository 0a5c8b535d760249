"""wideseek_env: a multi-agent (lead + N subagents) search environment for width scaling.

No torch, transformers, vllm or accelerate are imported by this package (DESIGN.md §2).
Importing it registers the envs with PettingZoo (``pettingzoo.make("parallel",
"wideseek/WideSeek-v0")``) and Gymnasium (``gymnasium.make("WideSeek/SingleAgent-v0")``); the env
classes themselves are imported on first use.
"""

from __future__ import annotations

from typing import Any

from wideseek_env.registration import make, register_envs

__version__ = "0.1.0"

_LAZY = {
    "WideSeekEnv": "wideseek_env.env.parallel",
    "parallel_env": "wideseek_env.env.parallel",
    "WideSeekSingleAgentEnv": "wideseek_env.env.single_agent",
    "EnvConfig": "wideseek_env.env.config",
    "PRESETS": "wideseek_env.env.config",
}

__all__ = ["make", "register_envs", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'wideseek_env' has no attribute {name!r}")


register_envs()
