"""Entity pages of a v2 world, and the index of every surface form a page states.

Each entity gets a **profile** (an infobox: a lead sentence, then ``Label: value`` lines whose
labels are mostly synonyms or abbreviations, not the words a query uses), usually an **article**
(prose whose sentences carry two or three facts each, in clauses without the attribute's name),
and, for entities with yearly facts, sometimes a **snapshot** (an older yearbook entry whose
figures are stale for any later year; its first line says which year it describes). Every fact
is placed on one to three of these pages, each time drawn in its own surface form (unit,
separators, scale words, date style, list style), so no single page or format answers everything
and the same fact reads differently from page to page.

:class:`FactIndex` records every (entity, attribute, year) -> surface placed on which page: tasks
take their gold cells from it, and the answerability checker re-reads each surface from the page.

URLs are opaque (a hash of the world seed, the entity and the page kind); titles disambiguate
entities whose names collide (``Washington County, Arkansas``; ``Georgia (U.S. state)``).
"""

from __future__ import annotations

import random
import re
import string
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from wideseek_env.search.docstore import StoredPage
from wideseek_env.worlds.v2 import surface as S
from wideseek_env.worlds.v2.model import AttrSpec, Domain, Entity, fact_items, stable_hash

BASE_URL = "https://world.wideseek.local"
#: Decimals a page uses when it writes a number in another unit than the canonical one.
ALT_DECIMALS = {"mi2": 0, "ha": 0, "ft": 0, "m": 0, "kg_m3": 0, "C": 1, "angstrom": 2, "pm": 0}
NUMBER_STYLES: tuple[tuple[S.NumberStyle, float], ...] = (
    ("sep", 0.5), ("plain", 0.2), ("space", 0.1), ("scale", 0.2))
DATE_STYLES: tuple[S.DateStyle, ...] = ("dmy", "mdy", "iso", "abbr")


@dataclass(frozen=True)
class Surface:
    """One statement of a fact: the page, the text written, and how it reads (``unit`` of a
    number surface; ``precision`` its resolution in that unit, for numbers)."""

    url: str
    text: str
    unit: str = ""
    precision: float = 0.0
    on_list: bool = False  # stated on a list page (a source for agents, never a provenance)


class FactIndex:
    """(entity id, attribute, year) -> the surfaces that state it, in page order."""

    def __init__(self) -> None:
        self._by_fact: dict[tuple[str, str, int | None], list[Surface]] = defaultdict(list)

    def add(self, eid: str, attr: str, year: int | None, s: Surface) -> None:
        self._by_fact[(eid, attr, year)].append(s)

    def get(self, eid: str, attr: str, year: int | None = None) -> list[Surface]:
        return self._by_fact.get((eid, attr, year), [])

    def __len__(self) -> int:
        return len(self._by_fact)


class _Fmt(dict):
    def __missing__(self, key: str) -> str:
        return ""


def page_url(seed: int, eid: str, kind: str) -> str:
    return f"{BASE_URL}/d/{stable_hash(seed, eid, kind, n=12)}"


def assign_titles(domains: list[Domain]) -> None:
    """Give every entity a page title, unique across the world: its name, or where names
    collide, the name with its group (``Washington County, Arkansas``, ``Springfield, Ohio``,
    ``Georgia (U.S. state)``). Titles already set (isotopes: ``Iron-56``) are kept."""
    wanted: dict[str, list[Entity]] = defaultdict(list)
    templates = {d.name: d.title for d in domains}
    for d in domains:
        for e in d.entities:
            if not e.title:
                wanted[_titled(templates[d.name], e).lower()].append(e)
    taken = {e.title.lower() for d in domains for e in d.entities if e.title}
    for name, group in sorted(wanted.items()):
        for e in group:
            title = _titled(templates[e.domain], e)
            if len(group) > 1 or name in taken:
                if e.domain == "counties" or e.domain == "towns":
                    title = f"{e.name}, {e.key[1]}"
                elif len(e.key) > 1:
                    title = f"{e.name} ({e.key[1]})"
                else:
                    title = f"{e.name} ({_kind_word(e.domain)})"
            n = 2
            base = title
            while title.lower() in taken:
                title, n = f"{base} ({n})", n + 1
            e.title = title
            taken.add(title.lower())


def _titled(template: str, e: Entity) -> str:
    if not template:
        return e.name
    fields = _Fmt({k: v for k, v in e.values.items() if isinstance(v, str)})
    fields.update(e.groups)
    title = template.format_map(_Fmt(fields, e=e.name))
    return title if title.strip() and "()" not in title and not title.endswith(", ") else e.name


def _kind_word(domain: str) -> str:
    return {"states": "U.S. state", "countries": "country", "cities": "city", "airports": "airport",
            "elements": "element", "towns": "town", "counties": "county"}.get(domain, domain)


class PageWriter:
    """Writes the pages of all entities and fills a :class:`FactIndex`."""

    def __init__(self, domains: list[Domain], seed: int) -> None:
        self.domains = domains
        self.seed = seed
        self.entities = {e.id: e for d in domains for e in d.entities}
        self.facts = FactIndex()
        self.profile_url: dict[str, str] = {}
        self.pages_of: dict[str, list[str]] = defaultdict(list)  # entity id -> its page URLs
        # (domain, attribute) -> distinct (wording, shape of the value) pairs written
        self.forms: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)

    def _form(self, d: Domain, attr: str, wording: str, s: Surface) -> None:
        shape = re.sub(r"[A-Za-z]+", "a", re.sub(r"\d+", "9", s.text)) \
            if d.attrs[attr].kind in ("number", "date", "list") else "name"
        self.forms[(d.name, attr)].add((wording, shape))

    def form_figures(self) -> dict[str, Any]:
        """Distinct surface forms (wording x value shape) per attribute: min, median, and the
        attributes with fewer than three."""
        counts = {f"{d}.{a}": len(v) for (d, a), v in sorted(self.forms.items())}
        values = sorted(counts.values())
        return {"attributes": len(values), "min": values[0] if values else 0,
                "median": values[len(values) // 2] if values else 0,
                "fewer_than_3": [k for k, n in counts.items() if n < 3]}

    # -- surfaces ----------------------------------------------------------------------------
    def display(self, value: Any, spec: AttrSpec) -> str:
        """A ref value as pages write it: the referenced entity's name."""
        return self.entities[value].name if spec.kind == "ref" else str(value)

    def surface(self, spec: AttrSpec, value: Any, url: str, rng: random.Random) -> Surface:
        if spec.kind == "ref":
            return Surface(url, self.entities[value].name)
        if spec.kind == "text":
            return Surface(url, str(value))
        if spec.kind == "list":
            style = S.list_style_for(list(value), rng.choice(("and", "semicolon", "dot")))
            return Surface(url, S.list_surface(list(value), style))
        if spec.kind == "date":
            return Surface(url, S.date_surface(value, rng.choice(DATE_STYLES)))
        unit = spec.unit
        if spec.alt_units and rng.random() < 0.45:
            unit = rng.choice(spec.alt_units)
        x = S.convert(float(value), spec.unit, unit) if unit != spec.unit else float(value)
        decimals = spec.decimals if unit == spec.unit else ALT_DECIMALS.get(unit, 0)
        if spec.unit in ("year",) or (abs(x) < 10_000 and decimals == 0 and
                                      spec.unit in ("count",)):
            style: S.NumberStyle = "plain"
        elif decimals > 0 and abs(x) < 1000:
            style = "plain"
        else:
            style = rng.choices([s for s, _ in NUMBER_STYLES], [w for _, w in NUMBER_STYLES])[0]
        text = S.number_surface(x, unit, decimals, style, unit_name=rng.randrange(2))
        return Surface(url, text, unit, S.surface_precision(text))

    # -- pages -------------------------------------------------------------------------------
    def pages(self) -> Iterator[StoredPage]:
        for d in self.domains:
            for e in d.entities:
                yield from self.entity_pages(d, e)

    def entity_pages(self, d: Domain, e: Entity) -> Iterator[StoredPage]:
        rng = random.Random(f"{self.seed}:v2:pages:{e.id}")
        facts = fact_items(e)
        latest = {a: max(y for a2, y, _ in facts if a2 == a and y is not None)
                  for a, y, _ in facts if y is not None}
        has_article = not d.hop_only or rng.random() < 0.3
        old_years = sorted({y for a, y, _ in facts if y is not None and y != latest[a]})
        snapshot_year = rng.choice(old_years) if old_years and rng.random() < 0.4 else None
        plan: dict[str, list[tuple[str, int | None, Any]]] = {"profile": [], "article": [],
                                                                "snapshot": []}
        for attr, year, value in facts:
            places = []
            if (year is None or year == latest[attr] or rng.random() < 0.25) and \
                    rng.random() < 0.65:
                places.append("profile")
            if has_article and rng.random() < 0.6:
                places.append("article")
            if snapshot_year is not None and year == snapshot_year:
                places.append("snapshot")
            if not places:
                places.append("article" if has_article and rng.random() < 0.5 else "profile")
            for p in places:
                plan[p].append((attr, year, value))
        groups = _Fmt(e.groups)
        lead = d.intro.format_map(_Fmt(groups, e=(e.title or e.name) if d.intro_uses_title
                                       else e.name))
        profile_url = page_url(self.seed, e.id, "profile")
        self.profile_url[e.id] = profile_url
        yield self._profile(d, e, lead, plan["profile"], profile_url, rng)
        if has_article and plan["article"]:
            yield self._article(d, e, lead, plan["article"], rng)
        if snapshot_year is not None and plan["snapshot"]:
            yield self._snapshot(d, e, snapshot_year, plan["snapshot"], rng)

    def _page(self, e: Entity, kind: str, title: str, lines: list[str]) -> StoredPage:
        url = page_url(self.seed, e.id, kind)
        self.pages_of[e.id].append(url)
        return StoredPage(id=url.split("://", 1)[1], url=url, title=title,
                          text="\n".join(lines), kind="entity", entity=e.name)

    def _label(self, spec: AttrSpec, year: int | None, rng: random.Random) -> str:
        label = rng.choice(spec.labels)
        if "{y}" in label:
            return label.format(y=year)
        return f"{label} ({year})" if year is not None else label

    def _profile(self, d: Domain, e: Entity, lead: str, facts: list, url: str,
                 rng: random.Random) -> StoredPage:
        lines = [lead]
        if e.aliases:
            lines.append("Also written: " + ", ".join(e.aliases))
        rng.shuffle(facts)
        for attr, year, value in facts:
            spec = d.attrs[attr]
            s = self.surface(spec, value, url, rng)
            self.facts.add(e.id, attr, year, s)
            label = self._label(spec, year, rng)
            self._form(d, attr, "label:" + re.sub(r"\d{4}", "Y", label), s)
            lines.append(f"{label}: {s.text}")
        return self._page(e, "profile", e.title or e.name, lines)

    def _article(self, d: Domain, e: Entity, lead: str, facts: list,
                 rng: random.Random) -> StoredPage:
        url = page_url(self.seed, e.id, "article")
        rng.shuffle(facts)
        sentences = [lead]
        subjects = (e.name, "It", f"The {d.singular}")
        i = 0
        while i < len(facts):
            n = min(len(facts) - i, rng.choice((1, 2, 2, 3)))
            clauses = []
            for attr, year, value in facts[i: i + n]:
                spec = d.attrs[attr]
                s = self.surface(spec, value, url, rng)
                self.facts.add(e.id, attr, year, s)
                clause = rng.choice(spec.clauses)
                self._form(d, attr, "clause:" + clause, s)
                clauses.append(clause.format(v=s.text, y=year, e=e.name))
            subject = subjects[0] if i == 0 else rng.choice(subjects)
            body = clauses[0] if n == 1 else ", ".join(clauses[:-1]) + " and " + clauses[-1]
            sentences.append(f"{subject} {body}.")
            i += n
        paragraphs, j = [], 0
        while j < len(sentences):
            k = rng.randint(2, 4)
            paragraphs.append(" ".join(sentences[j: j + k]))
            j += k
        title = rng.choice(("{t}: an overview", "About {t}", "{t} — background",
                            "{t} in brief")).format(t=e.title or e.name)
        return self._page(e, "article", title, paragraphs)

    def _snapshot(self, d: Domain, e: Entity, year: int, facts: list,
                  rng: random.Random) -> StoredPage:
        url = page_url(self.seed, e.id, "snapshot")
        lines = [f"Yearbook entry compiled in {year + 1}. All figures describe the year {year}."]
        for attr, y, value in facts:
            spec = d.attrs[attr]
            s = self.surface(spec, value, url, rng)
            self.facts.add(e.id, attr, y, s)
            label = rng.choice(spec.labels).replace(" ({y} census)", "").replace(" ({y})", "")
            label = label.replace(", {y}", "").replace("{y}", "").strip()
            self._form(d, attr, "snapshot:" + label, s)
            lines.append(f"{label}: {s.text}")
        title = f"{e.title or e.name} ({year} yearbook)"
        return self._page(e, "snapshot", title, lines)


def capitalise(text: str) -> str:
    return text[:1].upper() + text[1:] if text and text[0] in string.ascii_lowercase else text


def is_date(value: Any) -> bool:
    return isinstance(value, date)
