"""Registration of the envs with PettingZoo's and Gymnasium's registries (run on import).

- PettingZoo (>= 1.27 has a registry): ``pettingzoo.make("parallel", "wideseek/WideSeek-v0")``
  and every preset of :data:`~wideseek_env.env.config.PRESETS` (``wideseek/WideSeek-w4-v0`` …).
- Gymnasium: ``gymnasium.make("WideSeek/SingleAgent-v0")``.

Neither library discovers third-party envs by itself (no plugin entry points), so
``import wideseek_env`` must run first; ``gymnasium.make("wideseek_env:WideSeek/SingleAgent-v0")``
does that import for you. :func:`make` is a shortcut to the PettingZoo registry.
"""

from __future__ import annotations

from typing import Any

PARALLEL_ENTRY_POINT = "wideseek_env.env.parallel:parallel_env"
SINGLE_AGENT_ID = "WideSeek/SingleAgent-v0"
NAMESPACE = "wideseek"


def register_envs() -> None:
    """Register every preset (idempotent: already registered ids are left alone)."""
    import gymnasium
    import pettingzoo

    from wideseek_env.env.config import PRESETS

    for name, kwargs in PRESETS.items():
        env_id = f"{NAMESPACE}/{name}"
        if env_id not in pettingzoo.parallel_registry:
            pettingzoo.register("parallel", env_id, entry_point=PARALLEL_ENTRY_POINT,
                                kwargs=dict(kwargs))
    if SINGLE_AGENT_ID not in gymnasium.registry:
        gymnasium.register(
            id=SINGLE_AGENT_ID,
            entry_point="wideseek_env.env.single_agent:WideSeekSingleAgentEnv",
        )


def make(env_id: str = f"{NAMESPACE}/WideSeek-v0", **kwargs: Any) -> Any:
    """``pettingzoo.make("parallel", env_id, **kwargs)``."""
    import pettingzoo

    return pettingzoo.make("parallel", env_id, **kwargs)
