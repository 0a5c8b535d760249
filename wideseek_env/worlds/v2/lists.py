"""List and disambiguation pages of a v2 world: partial, overlapping lists that a task's row set
must be assembled from.

For every domain with tasks:

- **group lists** split each group's members (the counties of one state, the airports of one
  country) alphabetically into parts of 12-30 names (``Counties of Texas (D–G)``);
- **ranked lists** name the top 10-25 members of a group by a number, with the value
  (``The 20 most populous counties of Texas (2020)``); their values are surfaces too;
- **period lists** split a group by a date or year (``Counties of Texas formed before 1850``);
- **value lists** cut across groups by a text attribute (``Counties on Mountain Time``).

So a list rarely equals a task's row set: a task's rows sit on several parts, next to members
that do not qualify, and have to be checked against the task's conditions one by one.
**Disambiguation pages** list the entities that share a name, by title.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from wideseek_env.search.docstore import StoredPage
from wideseek_env.worlds.v2.model import Domain, Entity, stable_hash
from wideseek_env.worlds.v2.pages import BASE_URL, PageWriter

#: Per domain: (group key, how a list title names the group's members).
GROUP_LISTS: dict[str, tuple[tuple[str, str], ...]] = {
    "counties": (("state", "Counties of {g}"),),
    "states": (("status", "U.S. jurisdictions with the status of {g}"),),
    "elements": (("block", "Elements of the {g}"), ("period", "Elements of {g}")),
    "isotopes": (("period", "Natural isotopes of the elements of {g}"),
                 ("element", "Natural isotopes of {g}")),
    "countries": (("continent", "Countries and territories in {g}"),
                  ("subregion", "Countries and territories of {g}")),
    "cities": (("country", "Cities in {g}"),),
    "airports": (("country", "Airports in {g}"),),
}
#: Per domain: (number attribute, year or None, how a ranked list's title reads).
RANKED_LISTS: dict[str, tuple[tuple[str, int | None, str], ...]] = {
    "counties": (("population", 2020, "The {n} most populous counties of {g} ({y})"),
                 ("area", None, "The {n} largest counties of {g} by land area")),
    "cities": (("population", 2020, "The {n} largest cities of {g} ({y})"),),
    "airports": (("passengers", 2023, "The {n} busiest airports of {g} ({y})"),),
    "countries": (("population", 2020, "The {n} most populous countries of {g} ({y})"),
                  ("area", None, "The {n} largest countries of {g} by area")),
    "elements": (("density", None, "The {n} densest elements of the {g}"),),
}
#: Per domain: (date/year attribute, title with {g} and {when}).
PERIOD_LISTS: dict[str, tuple[tuple[str, str], ...]] = {
    "counties": (("established", "Counties of {g} formed {when}"),),
    "elements": (("discovered", "Elements of the {g} discovered {when}"),),
    "airports": (("opened", "Airports in {g} opened {when}"),),
}
#: Per domain: text attribute whose values make lists across groups.
VALUE_LISTS: dict[str, tuple[tuple[str, str], ...]] = {
    "counties": (("timezone", "U.S. counties on {v}"),),
    "airports": (("timezone", "Airports in the {v} time zone"),),
}


def _url(seed: int, *parts: Any) -> str:
    return f"{BASE_URL}/d/{stable_hash(seed, 'list', *parts, n=12)}"


def _letter_range(names: list[str]) -> str:
    a, b = names[0][:1].upper(), names[-1][:1].upper()
    return a if a == b else f"{a}–{b}"


class ListWriter:
    """Writes the list pages of every domain; ``mention(e)`` is how a list names an entity."""

    def __init__(self, domains: list[Domain], writer: PageWriter, seed: int) -> None:
        self.domains = domains
        self.writer = writer
        self.seed = seed

    def mention(self, e: Entity, within_group: bool) -> str:
        """Inside one group's list, the plain name; across groups, the disambiguated title."""
        return e.name if within_group and e.domain not in ("isotopes",) else (e.title or e.name)

    def pages(self) -> Iterator[StoredPage]:
        for d in self.domains:
            if d.hop_only:
                continue
            rng = random.Random(f"{self.seed}:v2:lists:{d.name}")
            for group_key, title in GROUP_LISTS.get(d.name, ()):
                yield from self._group_lists(d, group_key, title, rng)
            for attr, year, title in RANKED_LISTS.get(d.name, ()):
                yield from self._ranked(d, GROUP_LISTS[d.name][0][0], attr, year, title, rng)
            for attr, title in PERIOD_LISTS.get(d.name, ()):
                yield from self._periods(d, GROUP_LISTS[d.name][0][0], attr, title, rng)
            for attr, title in VALUE_LISTS.get(d.name, ()):
                yield from self._values(d, attr, title, rng)
        yield from self._disambiguation()

    def _groups(self, d: Domain, key: str) -> dict[str, list[Entity]]:
        out: dict[str, list[Entity]] = defaultdict(list)
        for e in d.entities:
            g = e.groups.get(key)
            if g:
                out[g].append(e)
        return dict(sorted(out.items()))

    def _parts(self, title: str, intro: str, names: list[str], url_key: tuple,
               rng: random.Random) -> Iterator[StoredPage]:
        size = rng.choice((12, 15, 20, 25, 30))
        parts = [names[i: i + size] for i in range(0, len(names), size)] or [[]]
        titles = [title if len(parts) == 1 else f"{title} ({_letter_range(p)})" for p in parts]
        urls = [_url(self.seed, *url_key, j) for j in range(1, len(parts) + 1)]
        for j, part in enumerate(parts):
            note = "" if len(parts) == 1 else (
                f" This page covers the names from {part[0]} to {part[-1]}; "
                f"the list continues on {len(parts) - 1} other page(s), linked below.")
            text = intro + note + "\n\n" + "\n".join(f"- {n}" for n in part)
            if len(parts) > 1:  # the parts link each other, as a site's pages would
                text += "\n\nOther parts of this list:\n" + "\n".join(
                    f"→ {t}: {u}" for k, (t, u) in enumerate(zip(titles, urls)) if k != j)
            yield StoredPage(id=urls[j].split("://", 1)[1], url=urls[j], title=titles[j],
                             text=text, kind="list")

    def _group_lists(self, d: Domain, key: str, title: str,
                     rng: random.Random) -> Iterator[StoredPage]:
        """The lists of each group, and an index page that links them all (as a site's "lists
        of ... by ..." page does): the only way to a whole domain is through every group."""
        index: list[tuple[str, str]] = []
        for g, members in self._groups(d, key).items():
            names = sorted(self.mention(e, True) for e in members)
            intro = f"{title.format(g=g)}: {len(names)} entries, in alphabetical order."
            for page in self._parts(title.format(g=g), intro, names, (d.name, key, g), rng):
                index.append((page.title, page.url))
                yield page
        url = _url(self.seed, d.name, "index", key)
        word = {"status": "status", "period": "period", "block": "block", "state": "state",
                "country": "country", "continent": "continent", "subregion": "subregion",
                "element": "element"}.get(key, key)
        t = f"Lists of {d.plural} by {word}"
        text = (f"This index links every list of {d.plural} by {word}; each list covers one "
                f"{word}.\n\n" + "\n".join(f"→ {a}: {b}" for a, b in index))
        yield StoredPage(id=url.split("://", 1)[1], url=url, title=t, text=text, kind="list")

    def _ranked(self, d: Domain, key: str, attr: str, year: int | None, title: str,
                rng: random.Random) -> Iterator[StoredPage]:
        spec = d.attrs[attr]
        for g, members in self._groups(d, key).items():
            valued = [(e.value(attr, year), e) for e in members if e.value(attr, year) is not None]
            n = rng.choice((10, 15, 20, 25))
            if len(valued) < n + 5:
                continue
            valued.sort(key=lambda ve: (-float(ve[0]), ve[1].name))
            url = _url(self.seed, d.name, "ranked", attr, g)
            lines = []
            for value, e in valued[:n]:
                s = replace(self.writer.surface(spec, value, url, rng), on_list=True)
                self.writer.facts.add(e.id, attr, year, s)
                lines.append(f"- {self.mention(e, True)} — {s.text}")
            t = title.format(n=n, g=g, y=year)
            text = f"{t}. Ranked from the top; figures as of {year or 'the latest survey'}.\n\n"
            yield StoredPage(id=url.split("://", 1)[1], url=url, title=t,
                             text=text + "\n".join(lines), kind="list")

    def _periods(self, d: Domain, key: str, attr: str, title: str,
                 rng: random.Random) -> Iterator[StoredPage]:
        for g, members in self._groups(d, key).items():
            years = [(_year(e.value(attr)), e) for e in members if e.value(attr) is not None]
            if len(years) < 12:
                continue
            cut = sorted(y for y, _ in years)[len(years) // 2]
            cut = cut - cut % 10
            for when, pick in ((f"before {cut}", lambda y, c=cut: y < c),
                               (f"in {cut} or later", lambda y, c=cut: y >= c)):
                names = sorted(self.mention(e, True) for y, e in years if pick(y))
                if not names:
                    continue
                t = title.format(g=g, when=when)
                intro = f"{t}: {len(names)} entries."
                yield from self._parts(t, intro, names, (d.name, "period", attr, g, when), rng)

    def _values(self, d: Domain, attr: str, title: str,
                rng: random.Random) -> Iterator[StoredPage]:
        by_value: dict[str, list[Entity]] = defaultdict(list)
        for e in d.entities:
            v = e.value(attr)
            if isinstance(v, str) and v:
                by_value[v].append(e)
        for v, members in sorted(by_value.items()):
            if len(members) < 5:
                continue
            names = sorted(self.mention(e, False) for e in members)
            t = title.format(v=v)
            yield from self._parts(t, f"{t}: {len(names)} entries.", names,
                                   (d.name, "value", attr, v), rng)

    def _disambiguation(self) -> Iterator[StoredPage]:
        by_name: dict[str, list[Entity]] = defaultdict(list)
        for d in self.domains:
            for e in d.entities:
                by_name[e.name].append(e)
        for name, group in sorted(by_name.items()):
            if len(group) < 2:
                continue
            url = _url(self.seed, "disambiguation", name)
            lines = [f"{name} may refer to:", ""]
            for e in sorted(group, key=lambda e: e.title):
                d = next(x for x in self.domains if x.name == e.domain)
                lines.append(f"- {e.title}, a {d.singular}"
                             + (f" in {e.groups.get('state') or e.groups.get('country')}"
                                if e.groups.get("state") or e.groups.get("country") else ""))
            yield StoredPage(id=url.split("://", 1)[1], url=url,
                             title=f"{name} (disambiguation)", text="\n".join(lines),
                             kind="list")


def _year(value: Any) -> int:
    return value.year if hasattr(value, "year") else int(value)
