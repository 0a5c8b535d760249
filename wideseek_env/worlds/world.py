"""Load a world folder, and build or find the embedded default world.

``World.load(path)`` reads ``world.json``; tasks are read per split on first use and the search
backend is opened lazily (once, under a lock), so a ``World`` is cheap to create and safe to share
between threads. HybridQA's ``dev`` split is stored as ``test`` and reachable under both names.

``default_world()`` builds the default world on first use into a cache folder versioned by the
tier, the world version and the seed; concurrent first uses from several processes are safe
because the build happens in a private temporary folder that is renamed into place (the loser of
the race just uses the winner's world).

Two tiers of the default world exist (``world.json`` records ``tier`` and ``world_version``):

- ``v2`` (the default, :mod:`wideseek_env.worlds.v2`): WideSearch-shaped tasks over
  counterfactual test facts, pages whose wording and formats differ from the query's, lists to
  assemble, multi-hop columns;
- ``easy`` (the first generator, :mod:`wideseek_env.worlds.builder`): one templated page per
  entity that states every attribute in the query's own words; kept for smoke tests and
  regression. ``--world default-easy`` selects it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Any, Literal

from wideseek_env.search.base import SearchBackend
from wideseek_env.tasks import Task
from wideseek_env.worlds.integrity import IntegrityReport, Verify, read_card, require_intact
from wideseek_env.worlds.layout import CARD_FILE, read_tasks

SPLIT_ALIASES = {"train": "train", "test": "test", "dev": "test", "validation": "test"}
Tier = Literal["v2", "easy"]
TIERS: tuple[Tier, ...] = ("v2", "easy")
#: What ``--world`` accepts besides a folder: the default world's tiers.
WORLD_NAMES = {"default": "v2", "default-v2": "v2", "default-easy": "easy"}


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

    def tasks(self, split: str = "train", task_set: str = "width") -> list[Task]:
        """The tasks of ``split`` (``train``, ``test``; ``dev`` is an alias of ``test``):
        ``task_set`` ``width`` (tables, the default), ``depth`` (QA tasks, ``tasks/<split>_qa
        .jsonl``, :mod:`wideseek_env.worlds.v2.qa`) or ``hybrid`` (both, tables first)."""
        if split not in SPLIT_ALIASES:
            raise ValueError(f"unknown split {split!r}; one of {sorted(SPLIT_ALIASES)}")
        if task_set not in ("width", "depth", "hybrid"):
            raise ValueError(f"unknown task set {task_set!r}; one of width, depth, hybrid")
        real = SPLIT_ALIASES[split]
        if task_set != "width":
            from wideseek_env.worlds.v2.qa import read_world_qa

            with self._lock:
                if real + "_qa" not in self._tasks:
                    self._tasks[real + "_qa"] = read_world_qa(self.path, real)
            if task_set == "depth":
                return self._tasks[real + "_qa"]
            return self.tasks(split) + self._tasks[real + "_qa"]
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


def build_default_world(out_dir: str | Path, *, seed: int = 0, tier: Tier = "v2",
                        max_entities_per_domain: int | None = None,
                        tasks_scale: float = 1.0, max_other_pages: int | None = None,
                        rows: tuple[int, int] | None = None, holdout: str = "domains",
                        engines: tuple[str, ...] = ("tantivy",), overwrite: bool = False,
                        progress: bool = True) -> Path:
    """Build the embedded default world (PyPI data packages) at ``out_dir``: tier ``v2`` (the
    default) or ``easy`` (the templated first generator; ``max_entities_per_domain``,
    ``tasks_scale`` and ``max_other_pages`` make a smaller one, ``rows`` = (min, max) rows per
    task instead of 5-50; ``holdout="entities"`` puts every domain in both splits and asks
    about a quarter of each domain's entities only in test tasks, instead of holding out whole
    domains)."""
    if tier == "v2":
        from wideseek_env.worlds.v2.default import build_default_v2_world

        if rows is not None or holdout != "domains":
            raise ValueError("rows and holdout are options of the easy tier; the v2 tier sizes "
                             "its own tasks and holds out domains")
        return build_default_v2_world(out_dir, seed=seed, engines=engines, overwrite=overwrite,
                                      progress=progress)
    if tier != "easy":
        raise ValueError(f"unknown tier {tier!r}; one of {TIERS}")
    from wideseek_env.worlds.builder import build_world
    from wideseek_env.worlds.sources_default import default_tables, other_pages, package_versions

    tables = default_tables(max_entities_per_domain)
    taken = {r[0] for t in tables for r in t.rows}
    card = {
        "source": "default",
        "sources": package_versions(),
        "licence_note": "Page text is generated from the packages' data; see docs/worlds.md.",
        "domains": {t.id: {"split": t.split if holdout == "domains" else "train and test",
                           "entities": len(t.rows),
                           "attribute_columns": [c.name for c in t.columns]} for t in tables},
        "options": {"max_entities_per_domain": max_entities_per_domain,
                    "tasks_scale": tasks_scale, "max_other_pages": max_other_pages,
                    **({"rows": list(rows)} if rows is not None else {}),
                    **({"holdout": holdout} if holdout != "domains" else {})},
    }
    return build_world(tables, out_dir, name="default-easy" if max_entities_per_domain is None
                       else "small", seed=seed,
                       other_pages=other_pages(taken, limit=max_other_pages),
                       engines=engines, card=card, overwrite=overwrite,  # type: ignore[arg-type]
                       progress=progress, tasks_scale=tasks_scale, rows=rows, holdout=holdout)


def build_small_world(out_dir: str | Path, seed: int = 0, *, tier: Tier = "easy",
                      overwrite: bool = False, progress: bool = False) -> Path:
    """A small default world for tests. ``easy``: 60 entities per domain, ~10 tasks each, 300
    other pages (a few seconds). ``v2``: a dozen counties per state, 40 elements, a few hundred
    cities and airports, 60 tasks per split (about ten seconds)."""
    if tier == "v2":
        from wideseek_env.worlds.v2.default import build_default_v2_world

        return build_default_v2_world(out_dir, seed=seed, small=True, overwrite=overwrite,
                                      progress=progress)
    return build_default_world(out_dir, seed=seed, tier="easy", max_entities_per_domain=60,
                               tasks_scale=0.03, max_other_pages=300, overwrite=overwrite,
                               progress=progress)


def default_world_path(cache_dir: str | Path | None = None, *, seed: int = 0,
                       tier: Tier = "v2") -> Path:
    """Where :func:`default_world` keeps the default world of ``tier`` and ``seed``."""
    from wideseek_env.worlds.builder import BUILDER_VERSION
    from wideseek_env.worlds.v2.build import WORLD_VERSION

    version = WORLD_VERSION if tier == "v2" else BUILDER_VERSION
    return cache_root(cache_dir) / f"default-{tier}-w{version}-seed{seed}"


def default_world(cache_dir: str | Path | None = None, *, seed: int = 0, tier: Tier = "v2",
                  progress: bool = True) -> Path:
    """The path of the default world (tier ``v2`` unless asked), building it into the cache on
    first use."""
    path = default_world_path(cache_dir, seed=seed, tier=tier)
    if (path / CARD_FILE).is_file():
        return path
    with contextlib.suppress(FileExistsError):  # another process finished first
        build_default_world(path, seed=seed, tier=tier, progress=progress)
    if not (path / CARD_FILE).is_file():
        raise RuntimeError(f"building the default world into {path} did not produce {CARD_FILE}")
    return path


def resolve_world(spec: str | Path, *, progress: bool = True) -> Path:
    """A world folder from what a user typed: ``default`` (the v2 default world, built into the
    cache on first use), ``default-easy`` (the easy tier), or a folder."""
    if str(spec) in WORLD_NAMES:
        return default_world(tier=WORLD_NAMES[str(spec)], progress=progress)  # type: ignore[arg-type]
    return Path(spec)
