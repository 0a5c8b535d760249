"""Load a world folder, and build or find the embedded default world.

``World.load(path)`` reads ``world.json``; tasks are read per split on first use and the search
backend is opened lazily (once, under a lock), so a ``World`` is cheap to create and safe to share
between threads. HybridQA's ``dev`` split is stored as ``test`` and reachable under both names.

``default_world()`` builds the default world on first use into a cache folder versioned by the
builder version and seed; concurrent first uses from several processes are safe because the build
happens in a private temporary folder that is renamed into place (the loser of the race just
uses the winner's world).
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Any

from wideseek_env.search.base import SearchBackend
from wideseek_env.tasks import Task
from wideseek_env.worlds.integrity import IntegrityReport, Verify, read_card, require_intact
from wideseek_env.worlds.layout import CARD_FILE, read_tasks

SPLIT_ALIASES = {"train": "train", "test": "test", "dev": "test", "validation": "test"}


class World:
    """A built world: ``path``, ``card`` (``world.json``), ``tasks(split)`` and ``backend()``."""

    def __init__(self, path: Path, card: dict[str, Any]) -> None:
        self.path = path
        self.card = card
        self._tasks: dict[str, list[Task]] = {}
        self._backend: SearchBackend | None = None
        self._lock = threading.Lock()
        self.integrity: IntegrityReport | None = None  # set by load()

    @classmethod
    def load(cls, path: str | Path, *, verify: Verify = "full") -> World:
        """Load the world at ``path``, checked to depth ``verify`` (see
        :mod:`~wideseek_env.worlds.integrity`); a damaged one raises ``DamagedWorldError``."""
        path = Path(path)
        card_file = path / CARD_FILE
        if not card_file.is_file():
            raise FileNotFoundError(f"{path} is not a world folder (no {CARD_FILE}); build one "
                                    f"with `wideseek world build`")
        card = read_card(path)
        world = cls(path, card)
        world.integrity = require_intact(path, card, verify)
        return world

    @property
    def name(self) -> str:
        return str(self.card.get("name", self.path.name))

    def tasks(self, split: str = "train") -> list[Task]:
        """The tasks of ``split`` (``train``, ``test``; ``dev`` is an alias of ``test``)."""
        if split not in SPLIT_ALIASES:
            raise ValueError(f"unknown split {split!r}; one of {sorted(SPLIT_ALIASES)}")
        real = SPLIT_ALIASES[split]
        with self._lock:
            if real not in self._tasks:
                self._tasks[real] = read_tasks(self.path, real)
            return self._tasks[real]

    def backend(self, engine: str | None = None) -> SearchBackend:
        """The local search backend over this world (opened on first call, then shared)."""
        from wideseek_env.search.local import LocalSearchBackend

        with self._lock:
            if engine is not None and engine != self.card.get("default_engine", "tantivy"):
                return LocalSearchBackend.open(self.path, engine)  # type: ignore[arg-type]
            if self._backend is None:
                self._backend = LocalSearchBackend.open(
                    self.path, self.card.get("default_engine", "tantivy"))
            return self._backend

    def __repr__(self) -> str:
        counts = self.card.get("counts", {})
        return (f"World({self.name!r}, path={str(self.path)!r}, pages={counts.get('pages')}, "
                f"tasks={counts.get('tasks')})")


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """``cache_dir``, else ``$WIDESEEK_CACHE``, else ``~/.cache/wideseek``."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("WIDESEEK_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "wideseek"


def build_default_world(out_dir: str | Path, *, seed: int = 0,
                        max_entities_per_domain: int | None = None,
                        tasks_scale: float = 1.0, max_other_pages: int | None = None,
                        engines: tuple[str, ...] = ("tantivy",), overwrite: bool = False,
                        progress: bool = True) -> Path:
    """Build the embedded default world (PyPI data packages) at ``out_dir``."""
    from wideseek_env.worlds.builder import build_world
    from wideseek_env.worlds.sources_default import default_tables, other_pages, package_versions

    tables = default_tables(max_entities_per_domain)
    taken = {r[0] for t in tables for r in t.rows}
    card = {
        "source": "default",
        "sources": package_versions(),
        "licence_note": "Page text is generated from the packages' data; see docs/worlds.md.",
        "domains": {t.id: {"split": t.split, "entities": len(t.rows),
                           "attribute_columns": [c.name for c in t.columns]} for t in tables},
        "options": {"max_entities_per_domain": max_entities_per_domain,
                    "tasks_scale": tasks_scale, "max_other_pages": max_other_pages},
    }
    return build_world(tables, out_dir, name="default" if max_entities_per_domain is None
                       else "small", seed=seed,
                       other_pages=other_pages(taken, limit=max_other_pages),
                       engines=engines, card=card, overwrite=overwrite,  # type: ignore[arg-type]
                       progress=progress, tasks_scale=tasks_scale)


def build_small_world(out_dir: str | Path, seed: int = 0, *, overwrite: bool = False,
                      progress: bool = False) -> Path:
    """A tiny default world for tests: 60 entities per domain, ~10 tasks each, 300 other pages;
    builds in well under 5 s."""
    return build_default_world(out_dir, seed=seed, max_entities_per_domain=60,
                               tasks_scale=0.03, max_other_pages=300, overwrite=overwrite,
                               progress=progress)


def default_world(cache_dir: str | Path | None = None, *, seed: int = 0,
                  progress: bool = True) -> Path:
    """The path of the default world, building it into the cache on first use."""
    from wideseek_env.worlds.builder import BUILDER_VERSION

    path = cache_root(cache_dir) / f"default-v{BUILDER_VERSION}-seed{seed}"
    if (path / CARD_FILE).is_file():
        return path
    with contextlib.suppress(FileExistsError):  # another process finished first
        build_default_world(path, seed=seed, progress=progress)
    if not (path / CARD_FILE).is_file():
        raise RuntimeError(f"building the default world into {path} did not produce {CARD_FILE}")
    return path
