"""QA ("depth") tasks of a v2 world, answerable by construction, and their checker.

A world built by :func:`~.build.build_v2_world` may hold QA tasks beside its table tasks, in the
paper's depth record layout (:mod:`wideseek_env.qa`)::

    <world>/tasks/<split>_qa.jsonl                 question, answer (list), instance_id, ...
    <world>/tasks/<split>_qa_provenance.jsonl.gz   per task: the steps that reach the answer

Generated questions (:func:`domain_qa`) come from the same fact index that writes the pages
(:class:`~.pages.FactIndex`): a **single-hop** question asks one fact of one entity ("What is the
land area of Harris County, Texas?") and a **multi-hop** one a fact of the entity that another
entity's fact names ("What is the population at the 2020 census of the county seat of Harris
County, Texas?"). Every accepted answer is a surface form a page states, and the provenance
records each step as ``[url, surface]``: the first page is about the question's entity, a second
step's page is about the entity the first step names. :func:`check_qa` re-reads every step from
the built pages; a world is built only when every QA task passes (as for table cells).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from wideseek_env.qa import QATask, qa_task, read_qa_tasks, write_qa_tasks
from wideseek_env.search.docstore import DocStore
from wideseek_env.worlds.v2.model import AttrSpec, Domain, Entity
from wideseek_env.worlds.v2.pages import PageWriter, Surface
from wideseek_env.worlds.v2.provenance import _norm, _Pages

#: QA tasks per split of a domain world (the small test world: SMALL_QA).
QA_TASKS = {"train": 1_200, "test": 400}
SMALL_QA = {"train": 40, "test": 40}
MULTI_HOP_SHARE = 0.5
QAItem = tuple[QATask, dict[str, Any]]


def qa_path(world: Path, split: str) -> Path:
    return world / "tasks" / f"{split}_qa.jsonl"


def read_world_qa(world: Path, split: str) -> list[QATask]:
    """The QA tasks of one split of a built world."""
    path = qa_path(world, split)
    if not path.is_file():
        raise FileNotFoundError(f"world {world} has no QA tasks for split {split!r} ({path}); "
                                "worlds built before QA tasks existed need a rebuild")
    return read_qa_tasks(path)


def write_world_qa(world: Path, made: Mapping[str, Sequence[QAItem]]) -> None:
    """Write every split's QA tasks and their provenance into ``world``."""
    from wideseek_env.worlds.v2.provenance import write_provenance

    for split, items in made.items():
        write_qa_tasks([t for t, _ in items], qa_path(world, split))
        write_provenance(world, f"{split}_qa", [p for _, p in items])


# --------------------------------------------------------------------------- generation


def _phrase(spec: AttrSpec, year: int | None) -> str:
    if "{y}" in spec.phrase:
        return spec.phrase.format(y=year)
    return f"{spec.phrase} in {year}" if year is not None else spec.phrase


def _page_surfaces(writer: PageWriter, eid: str, attr: str, year: int | None) -> list[Surface]:
    """The surfaces of a fact on the entity's own pages (list pages are not proof)."""
    own = set(writer.pages_of.get(eid, ()))
    return [s for s in writer.facts.get(eid, attr, year) if not s.on_list and s.url in own]


def _facts(d: Domain, e: Entity, refs: bool) -> list[tuple[str, int | None]]:
    """(attr, year) facts of ``e`` a question may ask (``refs``: only reference facts)."""
    out = []
    for attr, spec in d.attrs.items():
        if (spec.kind == "ref") != refs or spec.kind == "list" or (not refs and not spec.askable):
            continue
        v = e.values.get(attr)
        years = sorted(v) if isinstance(v, dict) else [None]
        out.extend((attr, y) for y in years if e.value(attr, y) not in (None, "", []))
    return out


def _answers(surfaces: Sequence[Surface]) -> list[str]:
    return list(dict.fromkeys(s.text for s in surfaces))


def _one(d: Domain, e: Entity, domains: Mapping[str, Domain], writer: PageWriter,
         rng: random.Random, multi: bool) -> tuple[str, list[str], dict[str, Any]] | None:
    """A question about ``e`` with its answers and provenance, or None when none fits."""
    title = e.title or e.name
    if multi:
        bridges = _facts(d, e, refs=True)
        rng.shuffle(bridges)
        for attr, year in bridges:
            target = writer.entities.get(e.value(attr, year))
            first = _page_surfaces(writer, e.id, attr, year)
            if target is None or not first:
                continue
            td = domains[target.domain]
            asks = _facts(td, target, refs=False)
            rng.shuffle(asks)
            for attr2, year2 in asks:
                second = _page_surfaces(writer, target.id, attr2, year2)
                if second:
                    q = (f"What is the {_phrase(td.attrs[attr2], year2)} of the "
                         f"{_phrase(d.attrs[attr], year)} of {title}?")
                    steps = [[first[0].url, first[0].text], [second[0].url, second[0].text]]
                    return q, _answers(second), {
                        "hops": 2, "entity": e.name, "via": target.name, "steps": steps,
                        "answer_sources": [[s.url, s.text] for s in second]}
        return None
    asks = _facts(d, e, refs=False)
    rng.shuffle(asks)
    for attr, year in asks:
        found = _page_surfaces(writer, e.id, attr, year)
        if found:
            q = f"What is the {_phrase(d.attrs[attr], year)} of {title}?"
            return q, _answers(found), {"hops": 1, "entity": e.name,
                                        "steps": [[found[0].url, found[0].text]],
                                        "answer_sources": [[s.url, s.text] for s in found]}
    return None


def domain_qa(domains: Sequence[Domain], writer: PageWriter, seed: int,
              per_split: Mapping[str, int], name: str) -> dict[str, list[QAItem]]:
    """QA tasks of every split of a domain world, numbered ``<name>-<split>-qa-00000``: about
    half multi-hop where an entity has reference facts, spread over domains by task share."""
    by_name = {d.name: d for d in domains}
    out: dict[str, list[QAItem]] = {}
    for split, want in per_split.items():
        rng = random.Random(f"{seed}:v2:qa:{split}")
        ds = [d for d in domains if d.split == split and not d.hop_only and d.entities]
        total = sum(d.task_share for d in ds) or 1.0
        made: list[QAItem] = []
        seen: set[str] = set()
        for d in ds:
            quota = max(1, round(want * d.task_share / total))
            entities = list(d.entities)
            rng.shuffle(entities)
            got = 0
            for e in entities * 2:  # a second pass tries the other hop count
                if got >= quota:
                    break
                multi = rng.random() < MULTI_HOP_SHARE
                found = _one(d, e, by_name, writer, rng, multi) or \
                    _one(d, e, by_name, writer, rng, not multi)
                if found is None or found[0] in seen:
                    continue
                q, answers, prov = found
                seen.add(q)
                iid = f"{name}-{split}-qa-{len(made):05d}"
                made.append((qa_task(iid, q, answers, meta={
                    "world": name, "split": split, "domain": d.name, "hops": prov["hops"]}),
                    {"instance_id": iid, **prov}))
                got += 1
        out[split] = made
    return out


# --------------------------------------------------------------------------- checking


def check_qa(store: DocStore, tasks: Sequence[QATask], provenance: Mapping[str, Mapping[str, Any]]
             ) -> dict[str, Any]:
    """Re-read every QA task's steps from the pages: each surface is on its page, the first page
    is about the question's entity (or, for a table page, names it on the line of the surface),
    a second step's page is about the entity the first step names, and every accepted answer is
    stated on a page."""
    pages = _Pages(store)
    ok = 0
    failures: list[dict[str, Any]] = []
    hops: dict[int, int] = {}
    for task in tasks:
        rec = provenance.get(task.instance_id)
        why = "no provenance record" if rec is None else _check_one(pages, task, rec)
        if why is None:
            ok += 1
            hops[int(rec["hops"])] = hops.get(int(rec["hops"]), 0) + 1  # type: ignore[index]
        elif len(failures) < 20:
            failures.append({"task": task.instance_id, "why": why})
    return {"tasks": len(tasks), "tasks_proved": ok,
            "task_rate": round(ok / len(tasks), 6) if tasks else 1.0,
            "by_hops": {str(k): v for k, v in sorted(hops.items())}, "failures": failures}


def _check_one(pages: _Pages, task: QATask, rec: Mapping[str, Any]) -> str | None:
    steps = rec.get("steps") or []
    if not steps or len(steps) != int(rec.get("hops", 0)):
        return f"{len(steps)} step(s) for {rec.get('hops')} hop(s)"
    for url, surface in [*steps, *rec.get("answer_sources", [])]:
        page = pages.get(url)
        if page is None:
            return f"no page at {url}"
        if surface not in f"{page.title}\n{page.text}":
            return f"{surface!r} is not on {url}"
    first = pages.get(steps[0][0])
    assert first is not None
    about = rec.get("entity")
    if about is None:  # a real question (HybridQA): no entity to be about
        pass
    elif first.kind == "entity":
        if _norm(first.entity) != _norm(about):
            return f"the first page is about {first.entity!r}, not {about!r}"
    elif not any(_norm(about) in _norm(line) and steps[0][1] in line
                 for line in first.text.splitlines()):
        return f"no line of {steps[0][0]} names {about!r} next to {steps[0][1]!r}"
    if len(steps) == 2 and about is not None:
        second = pages.get(steps[1][0])
        assert second is not None
        if _norm(second.entity) != _norm(steps[0][1]):
            return f"the second page is about {second.entity!r}, not {steps[0][1]!r}"
    stated = {_norm(s) for _, s in rec.get("answer_sources", [])}
    missing = [a for a in task.answers if _norm(a) not in stated]
    return f"answers {missing} have no source" if missing else None


def check_world_qa(store: DocStore, made: Mapping[str, Iterable[QAItem]]
                   ) -> dict[str, dict[str, Any]]:
    """:func:`check_qa` per split of ``made``."""
    out = {}
    for split, items in made.items():
        items = list(items)
        out[split] = check_qa(store, [t for t, _ in items],
                              {p["instance_id"]: p for _, p in items})
    return out
