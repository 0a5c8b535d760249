"""Build a v2 world folder from its content (pages, tasks with provenance): the answerability
proof, the index, and a card with every figure of :mod:`wideseek_env.worlds.stats`.

Content is the default world's domains (:class:`DomainContent`) or HybridQA's tables and
passages (:mod:`.hybridqa`).

The folder has the v1 layout (so the env, runner, learner and server read both tiers unchanged)
plus ``tasks/<split>_provenance.jsonl.gz``, and QA tasks with their provenance when the content
makes them (``tasks/<split>_qa.jsonl``, :mod:`.qa`). ``world.json`` records ``tier`` (``v2``) and
``world_version`` (3: QA tasks added; pages and table tasks are those of version 2). The build
fails (and leaves nothing behind) when the checker cannot re-derive every gold cell, or re-read
every QA task's answer, from the pages.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from tqdm import tqdm

from wideseek_env.search.docstore import DocStore, DocStoreWriter, StoredPage
from wideseek_env.search.engines import EngineName, open_engine
from wideseek_env.tasks import Task
from wideseek_env.worlds.builder import (
    build_cost,
    index_engines,
    publish,
    recall_at_k,
)
from wideseek_env.worlds.layout import write_tasks
from wideseek_env.worlds.v2.lists import ListWriter
from wideseek_env.worlds.v2.model import Domain, counterfactual_share
from wideseek_env.worlds.v2.pages import PageWriter, assign_titles
from wideseek_env.worlds.v2.provenance import (
    AnswerabilityError,
    check_provenance,
    write_provenance,
)
from wideseek_env.worlds.v2.qa import QA_TASKS, check_world_qa, domain_qa, write_world_qa
from wideseek_env.worlds.v2.tasks import TaskMaker

WORLD_VERSION = 3


def make_tasks(domains: Sequence[Domain], writer: PageWriter, seed: int,
               tasks_per_split: dict[str, int], name: str
               ) -> dict[str, list[tuple[Task, dict[str, Any]]]]:
    """Tasks of every split, numbered ``<name>-<split>-00000`` in domain order."""
    by_name = {d.name: d for d in domains}
    out: dict[str, list[tuple[Task, dict[str, Any]]]] = {"train": [], "test": []}
    for split in ("train", "test"):
        ds = [d for d in domains if d.split == split and not d.hop_only]
        total = sum(d.task_share for d in ds)
        for d in ds:
            want = max(1, round(tasks_per_split.get(split, 0) * d.task_share / total))
            made = TaskMaker(d, by_name, writer, seed).make(want, f"{d.name}-")
            out[split].extend(made)
        renumbered = []
        for i, (task, prov) in enumerate(out[split]):
            iid = f"{name}-{split}-{i:05d}"
            task = Task(iid, task.query, task.language, task.unique_columns, task.required,
                        task.eval_pipeline, task.gold, {**task.meta, "world": name,
                                                        "split": split})
            renumbered.append((task, {**prov, "instance_id": iid}))
        out[split] = renumbered
    return out


class Content(Protocol):
    """What a v2 world is made of: its pages (written once, in order), then its tasks with the
    provenance of every gold cell, and what its card says about itself."""

    def pages(self) -> Iterator[StoredPage]: ...

    def tasks(self, name: str) -> dict[str, list[tuple[Task, dict[str, Any]]]]: ...

    def card(self) -> dict[str, Any]: ...


class DomainContent:
    """The content of a world made of :class:`~.model.Domain` s (the default world)."""

    def __init__(self, domains: Sequence[Domain], seed: int, tasks_per_split: dict[str, int],
                 other_pages: Iterable[StoredPage] = (),
                 qa_per_split: dict[str, int] | None = None) -> None:
        self.domains = list(domains)
        self.seed = seed
        self.tasks_per_split = tasks_per_split
        self.qa_per_split = QA_TASKS if qa_per_split is None else qa_per_split
        self.other_pages = other_pages
        assign_titles(self.domains)
        self.writer = PageWriter(self.domains, seed)

    def pages(self) -> Iterator[StoredPage]:
        yield from self.writer.pages()
        yield from ListWriter(self.domains, self.writer, self.seed).pages()
        yield from self.other_pages

    def tasks(self, name: str) -> dict[str, list[tuple[Task, dict[str, Any]]]]:
        return make_tasks(self.domains, self.writer, self.seed, self.tasks_per_split, name)

    def qa_tasks(self, name: str) -> dict[str, list[tuple[Any, dict[str, Any]]]]:
        return domain_qa(self.domains, self.writer, self.seed, self.qa_per_split, name)

    def card(self) -> dict[str, Any]:
        return {"domains": {d.name: {"split": d.split, "entities": len(d.entities),
                                     "attributes": [a.header for a in d.attrs.values()],
                                     "key_columns": list(d.key_headers),
                                     "hop_only": d.hop_only} for d in self.domains},
                "entities": sum(len(d.entities) for d in self.domains),
                "facts_indexed": len(self.writer.facts),
                "counterfactual": counterfactual_share(self.domains, "test"),
                "surface_forms": self.writer.form_figures()}


def build_v2_world(content: Content, out_dir: str | Path, *, name: str, seed: int = 0,
                   engines: Sequence[EngineName] = ("tantivy",), card: dict[str, Any] | None = None,
                   overwrite: bool = False, progress: bool = True,
                   stats_sample: int = 2_000) -> Path:
    """Build the world of ``content`` at ``out_dir`` and return its path (see the module
    docstring)."""
    from wideseek_env.worlds.sources_hybridqa import shared_dir
    from wideseek_env.worlds.stats import shortcut_figures, task_figures, widesearch_figures

    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} exists; pass overwrite=True (--overwrite) to replace it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.building-", dir=out_dir.parent))
    try:
        t0 = time.perf_counter()
        store = DocStoreWriter(tmp / "corpus")
        kinds: dict[str, int] = {}
        for page in tqdm(content.pages(), desc=f"world {name}: pages", unit="page",
                         disable=not progress, mininterval=2.0):
            store.add(page)
            kinds[page.kind] = kinds.get(page.kind, 0) + 1
        store.close()
        made = content.tasks(name)
        tasks = {split: [t for t, _ in items] for split, items in made.items()}
        provenance = {split: {p["instance_id"]: p for _, p in items}
                      for split, items in made.items()}
        for split in tasks:
            write_tasks(tmp, split, tasks[split])
            write_provenance(tmp, split, provenance[split].values())
        qa_made = content.qa_tasks(name) if hasattr(content, "qa_tasks") else {}
        write_world_qa(tmp, qa_made)
        t_pages = time.perf_counter() - t0
        docs = DocStore(tmp / "corpus")
        answer = {split: check_provenance(docs, tasks[split], provenance[split])
                  for split in tasks}
        qa_answer = check_world_qa(docs, qa_made)
        bad_qa = {s: a["failures"][:3] for s, a in qa_answer.items() if a["task_rate"] < 1.0}
        if bad_qa:
            raise AnswerabilityError(f"world {name}: the checker could not re-read every QA "
                                     f"task's answer; first failures: {bad_qa}")
        bad = {s: a for s, a in answer.items() if a["cell_rate"] < 1.0}
        if bad:
            first = next(iter(bad.values()))["failures"][:3]
            raise AnswerabilityError(f"world {name}: the checker could not prove every gold cell "
                                     f"({ {s: a['cell_rate'] for s, a in bad.items()} }); "
                                     f"first failures: {first}")
        index_seconds = index_engines(docs, tmp, engines, name, progress)
        everything = [t for ts in tasks.values() for t in ts]
        recall = {e: recall_at_k(docs, open_engine(e, tmp / "index" / e), everything, k=3,
                                 sample=2_000, seed=seed) for e in engines}
        docs.close()
        t2 = time.perf_counter()
        figures = {split: task_figures(tasks[split], seed=seed) for split in tasks}
        shortcuts = {split: shortcut_figures(tmp, tasks[split], seed=seed,
                                             provenance=provenance[split],
                                             cell_sample=stats_sample) for split in tasks
                     if tasks[split]}
        ws = widesearch_figures(shared_dir(), seed=seed)
        about = content.card()
        info = {
            "name": name, "world_version": WORLD_VERSION, "tier": "v2",
            "builder_version": f"v2.{WORLD_VERSION}", "seed": seed,
            "engines": list(engines), "default_engine": engines[0],
            "splits": {split: {"tasks": len(items),
                               "domains": sorted({t.meta["domain"] for t in items}),
                               "tasks_by_domain": _count(t.meta["domain"] for t in items)}
                       for split, items in tasks.items()},
            "counts": {"pages": sum(kinds.values()), "pages_by_kind": kinds,
                       "entities": about.pop("entities", None),
                       "facts_indexed": about.pop("facts_indexed", None),
                       "tasks": sum(len(v) for v in tasks.values()),
                       "qa_tasks": sum(len(v) for v in qa_made.values())},
            "qa": {split: {k: v for k, v in a.items() if k != "failures"}
                   for split, a in qa_answer.items()},
            "answerability": {"method": "provenance re-derivation (every cell)", **{
                split: {k: v for k, v in a.items() if k != "failures"}
                for split, a in answer.items()}, "cell_rate": min(
                    a["cell_rate"] for a in answer.values())},
            **about,
            "figures": {"tasks": figures, "shortcuts": shortcuts,
                        "widesearch": ws if ws is not None else "not available "
                        "(../shared/widesearch missing at build time)"},
            "recall_at_3": recall,
            "build": build_cost(t0, t_pages, index_seconds, t2),
            **(card or {}),
        }
        publish(tmp, out_dir, info, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _count(items: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for x in items:
        out[x] = out.get(x, 0) + 1
    return dict(sorted(out.items()))
