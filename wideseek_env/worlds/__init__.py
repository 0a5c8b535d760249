"""Offline worlds: a document corpus plus WideSearch-shaped tasks answerable from it.

Public API: :class:`World` (``World.load(path)``, ``.tasks(split)``, ``.backend()``),
:func:`default_world` (build-once cache of the embedded default world),
:func:`build_default_world`, :func:`build_small_world` (tiny, for tests),
:func:`build_hybridqa_world`. The pipeline itself is :func:`wideseek_env.worlds.builder.build_world`.
"""

from wideseek_env.worlds.world import (
    TIERS,
    World,
    build_default_world,
    build_small_world,
    cache_root,
    default_world,
    default_world_path,
    resolve_world,
)


def build_hybridqa_world(*args, **kwargs):
    """See :func:`wideseek_env.worlds.sources_hybridqa.build_hybridqa_world`."""
    from wideseek_env.worlds.sources_hybridqa import build_hybridqa_world as build

    return build(*args, **kwargs)


__all__ = ["TIERS", "World", "build_default_world", "build_hybridqa_world", "build_small_world",
           "cache_root", "default_world", "default_world_path", "resolve_world"]
