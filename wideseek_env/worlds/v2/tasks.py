"""Tasks of a v2 world: row sets found by search, columns in requested formats, gold cells with
their provenance.

A task draws, for one domain:

1. a **row set**: a base (every entity, one group or two groups: "the counties of Kansas and
   Nebraska") narrowed by conditions on other attributes: a threshold on a number "as of" a year
   ("with a population at the 2010 census above 40,000"), a date cut ("formed before 1850"), an
   exclusion ("excluding any whose time zone is Central Time") or the top n by a number. Row
   counts follow WideSearch's spread (median near 40, about one task in seven with 100 or more);
2. **columns**: the key columns, then 3-6 attributes: numbers, dates, names, lists, and
   *multi-hop* columns whose value is on another entity's page, reached through a value of the
   row's own page ("Population of County Seat (2020)"). Some tasks are **entity x year** tables
   (a row per entity and census year, keyed on both);
3. a **format request** per column (:mod:`.requests`), and the gold cell derived from one surface
   form on one page, recorded with its provenance so the checker can re-derive it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from wideseek_env.tasks import ColumnEval, GoldTable, Task, norm_column
from wideseek_env.worlds.v2 import requests as R
from wideseek_env.worlds.v2 import surface as S
from wideseek_env.worlds.v2.model import AttrSpec, Domain, Entity
from wideseek_env.worlds.v2.pages import FactIndex, PageWriter, Surface

MIN_ROWS, MAX_ROWS = 5, 200
#: Target spread of row counts: (low, high, weight), after WideSearch's 200 tasks.
ROW_BUCKETS = ((5, 19, 0.18), (20, 49, 0.37), (50, 99, 0.27), (100, MAX_ROWS, 0.18))
#: How a query names a group of a domain ("the counties of {g}").
GROUP_PHRASES: dict[tuple[str, str], str] = {
    ("counties", "state"): "the counties of {g}",
    ("states", "status"): "the U.S. jurisdictions with the status of {g}",
    ("elements", "block"): "the chemical elements of the {g}",
    ("elements", "period"): "the chemical elements of {g}",
    ("isotopes", "period"): "the naturally occurring isotopes of the elements of {g}",
    ("isotopes", "element"): "the naturally occurring isotopes of {g}",
    ("countries", "continent"): "the countries and territories of {g}",
    ("countries", "subregion"): "the countries and territories of {g}",
    ("cities", "country"): "the cities of {g} with at least 100,000 inhabitants",
    ("airports", "country"): "the airports in {g} that have an IATA code",
}
ALL_PHRASES = {"states": "all U.S. states and territories", "elements": "all chemical elements",
               "isotopes": "all naturally occurring isotopes",
               "countries": "all countries and territories"}
DATE_VERBS = {"established": "formed", "admitted": "admitted to the Union",
              "incorporated": "incorporated", "opened": "opened", "discovered": "discovered"}


@dataclass(frozen=True)
class Column:
    """One gold column: where its cells come from (``key``, ``year`` of an entity x year row,
    ``attr`` of the row entity, or ``hop``: ``target`` of the entity that ``attr`` refers to)
    at ``year`` (``None``: not yearly, or the row's own year)."""

    header: str
    source: str
    request: R.Request | None  # None while a candidate; set once the column is chosen
    key_index: int = 0
    attr: str = ""
    target: str = ""
    year: int | None = None


@dataclass
class Draft:
    """A task being drawn: the domain, the rows ``(entity, year)``, the selection's phrases and
    the attributes the selection uses."""

    domain: Domain
    rows: list[tuple[Entity, int | None]]
    phrase: str
    conditions: list[str] = field(default_factory=list)
    selection: dict[str, Any] = field(default_factory=dict)
    attributes: set[str] = field(default_factory=set)
    years: tuple[int, ...] = ()


class TaskMaker:
    """Draws the tasks of one domain; :meth:`make` returns ``(Task, provenance)`` pairs."""

    def __init__(self, domain: Domain, domains: dict[str, Domain], writer: PageWriter,
                 seed: int) -> None:
        self.d = domain
        self.domains = domains
        self.writer = writer
        self.facts: FactIndex = writer.facts
        self.entities = writer.entities
        self.rng = random.Random(f"{seed}:v2:tasks:{domain.name}")
        self._group_cache: dict[str, dict[str, list[Entity]]] = {}
        # header -> (attribute, cell values, (entity, year) owners) of a candidate column
        self._pending: dict[str, tuple[AttrSpec, list[Any], list[tuple[str, int | None]]]] = {}

    # -- row sets ----------------------------------------------------------------------------
    def _groups(self, key: str) -> dict[str, list[Entity]]:
        if key not in self._group_cache:
            out: dict[str, list[Entity]] = {}
            for e in self.d.entities:
                g = e.groups.get(key)
                if g:
                    out.setdefault(g, []).append(e)
            self._group_cache[key] = out
        return self._group_cache[key]

    def _base(self) -> tuple[list[Entity], str, dict[str, Any], set[str]]:
        rng = self.rng
        keys = [k for (dom, k) in GROUP_PHRASES if dom == self.d.name]
        if self.d.name in ALL_PHRASES and (not keys or rng.random() < 0.3):
            return list(self.d.entities), ALL_PHRASES[self.d.name], {}, set()
        key = rng.choice(keys)
        groups = self._groups(key)
        names = sorted(groups)
        g1 = rng.choice(names)
        members = list(groups[g1])
        chosen = [g1]
        if rng.random() < 0.4 and len(names) > 1:
            g2 = rng.choice([n for n in names if n != g1])
            members += groups[g2]
            chosen.append(g2)
        phrase = GROUP_PHRASES[(self.d.name, key)].format(g=" and ".join(chosen))
        return members, phrase, {"group": key, "values": chosen}, {key}

    def _number_attrs(self) -> list[AttrSpec]:
        return [a for a in self.d.attrs.values() if a.kind == "number" and a.filterable
                and a.unit not in ("year",)]

    def _condition(self, members: list[Entity]) -> tuple[Callable[[Entity], bool], str,
                                                         dict[str, Any], str] | None:
        rng = self.rng
        kind = rng.choice(("above", "above", "date", "exclude"))
        if kind == "above":
            specs = self._number_attrs()
            if not specs:
                return None
            spec = rng.choice(specs)
            year = rng.choice(spec.years) if spec.years else None
            unit = spec.unit
            if spec.alt_units and rng.random() < 0.4:
                unit = rng.choice(spec.alt_units)
            vals = sorted(S.convert(float(v), spec.unit, unit) for e in members
                          if (v := e.value(spec.key, year)) is not None)
            if len(vals) < 8:
                return None
            q = vals[int(len(vals) * rng.uniform(0.15, 0.75))]
            th = _round_sig(q, 2)
            more = rng.random() < 0.75
            word = "above" if more else "below"
            unit_text = S.number_surface(th, unit, 0 if th >= 10 else 2, "sep")
            text = f"with a {spec.phrase.format(y=year)} {word} {unit_text}"

            def test(e: Entity, s=spec, y=year, u=unit, t=th, m=more) -> bool:
                v = e.value(s.key, y)
                if v is None:
                    return False
                x = S.convert(float(v), s.unit, u)
                return x > t if m else x < t
            return test, text, {"attr": spec.key, "year": year, "unit": unit,
                                "more_than" if more else "less_than": th}, spec.key
        if kind == "date":
            specs = [a for a in self.d.attrs.values() if a.filterable and (
                a.kind == "date" or a.unit == "year")]
            if not specs:
                return None
            spec = rng.choice(specs)
            years = sorted(_year(v) for e in members if (v := e.value(spec.key)) is not None)
            if len(years) < 8:
                return None
            cut = years[int(len(years) * rng.uniform(0.2, 0.8))]
            cut -= cut % 5
            before = rng.random() < 0.5
            verb = DATE_VERBS.get(spec.key, f"with a {spec.phrase} dated")
            text = f"{verb} {'before' if before else 'in or after'} {cut}"

            def test(e: Entity, s=spec, c=cut, b=before) -> bool:
                v = e.value(s.key)
                return v is not None and ((_year(v) < c) if b else (_year(v) >= c))
            return test, text, {"attr": spec.key, "before" if before else "from": cut}, spec.key
        specs = [a for a in self.d.attrs.values() if a.kind == "text" and a.filterable]
        rng.shuffle(specs)
        for spec in specs:
            counts: dict[str, int] = {}
            for e in members:
                v = e.value(spec.key)
                if isinstance(v, str) and v:
                    counts[v] = counts.get(v, 0) + 1
            options = [v for v, n in counts.items() if 0 < n < len(members)]
            if not options:
                continue
            value = rng.choice(sorted(options))
            text = f"excluding any whose {spec.phrase} is {value}"
            return (lambda e, s=spec, v=value: e.value(s.key) != v), text, \
                {"attr": spec.key, "not": value}, spec.key
        return None

    def select(self, bucket: tuple[int, int]) -> Draft | None:
        members, phrase, sel, attrs = self._base()
        conditions: list[str] = []
        n_cond = self.rng.choice((0, 1, 1, 2)) if attrs else self.rng.choice((1, 1, 2))
        for _ in range(n_cond):
            made = self._condition(members)
            if made is None:
                continue
            test, text, info, attr = made
            members = [e for e in members if test(e)]
            conditions.append(text)
            sel.setdefault("conditions", []).append(info)
            attrs.add(attr)
        rows = [(e, None) for e in sorted(members, key=lambda e: e.name)]
        if not bucket[0] <= len(rows) <= bucket[1]:
            return None
        return Draft(self.d, rows, phrase, conditions, sel, attrs)

    # -- columns -----------------------------------------------------------------------------
    def _column_candidates(self, draft: Draft, year_rows: bool) -> list[Column]:
        rng, d = self.rng, self.d
        out: list[Column] = []
        entities = [e for e, _ in draft.rows]
        for spec in d.attrs.values():
            if not spec.askable:
                continue
            if year_rows and spec.years:
                year: int | None = None
                if not all(e.value(spec.key, y) is not None for e in entities for y in draft.years):
                    continue
            else:
                year = (max(spec.years) if rng.random() < 0.6 else rng.choice(spec.years)) \
                    if spec.years else None
                if not all(e.value(spec.key, year) is not None if spec.years else
                           e.value(spec.key) is not None for e in entities):
                    continue
            header = spec.header + (f" ({year})" if year is not None else "")
            if spec.years:
                years = draft.years if year is None else (year,)
                values = [e.value(spec.key, y) for e in entities for y in years]
            else:
                values = [e.value(spec.key) for e in entities]
            owners = [(e.id, y) for e in entities
                      for y in ((draft.years if year is None else (year,)) if spec.years
                                else (None,))]
            self._pending[header] = (spec, values, owners)
            out.append(Column(header, "attr", None, attr=spec.key, year=year))
            if spec.kind == "ref":
                out.extend(self._hops(spec, entities))
        return out

    def _hops(self, ref: AttrSpec, entities: list[Entity]) -> list[Column]:
        target_domain = self.domains[ref.ref]
        out = []
        for spec in target_domain.attrs.values():
            if not spec.askable or spec.kind == "ref":
                continue
            year = max(spec.years) if spec.years else None
            targets = [self.entities[e.value(ref.key)] for e in entities]
            vals = [t.value(spec.key, year) if spec.years else t.value(spec.key) for t in targets]
            if any(v is None for v in vals):
                continue
            header = f"{spec.header} of {ref.header}" + (f" ({year})" if year else "")
            self._pending[header] = (spec, vals, [(t.id, year) for t in targets])
            out.append(Column(header, "hop", None, attr=ref.key, target=spec.key, year=year))
        return out

    def _request(self, header: str, spec: AttrSpec, values: list[Any],
                 owners: list[tuple[str, int | None]]) -> R.Request:
        """The column's format: for numbers and dates, one the pages rarely use verbatim (the
        lowest of the options' verbatim rates over a sample of the column's cells, ties drawn)."""
        if spec.kind == "number":
            options = [R.number_request(spec, header, o)
                       for o in R.number_options(spec, [float(v) for v in values])]
        elif spec.kind == "date":
            options = [R.date_request(header, s) for s in R.DATE_OPTIONS]
        elif spec.kind == "list":
            return R.list_request(header)
        else:
            return R.text_request(spec)
        picks = self.rng.sample(range(len(owners)), min(12, len(owners)))
        facts = [self.facts.get(owners[i][0], spec.key, owners[i][1]) for i in picks]
        nums = [float(values[i]) if spec.kind == "number" else None for i in picks]
        rated = [(R.verbatim_rate(o, facts, nums), self.rng.random(), k)
                 for k, o in enumerate(options)]
        return options[min(rated)[2]]

    # -- gold --------------------------------------------------------------------------------
    def cell(self, col: Column, e: Entity, row_year: int | None) -> tuple[str, list] | None:
        """The gold cell and its provenance (``[[url, surface], ...]``; two steps for a hop)."""
        if col.source == "key":
            return e.key[col.key_index], [[self.writer.profile_url[e.id], e.key[col.key_index]]]
        year = col.year if col.year is not None else row_year
        if col.source == "year":
            s = self._pick(self.facts.get(e.id, col.attr, row_year), col.request, None)
            return (str(row_year), [[s.url, str(row_year)]]) if s else None
        steps: list[list[str]] = []
        owner, attr = e, col.attr
        if col.source == "hop":
            link = self.facts.get(e.id, col.attr, None)
            if not link:
                return None
            steps.append([link[0].url, link[0].text])
            owner, attr = self.entities[e.value(col.attr)], col.target
        spec = self.domains[owner.domain].attrs[attr]
        value = owner.value(attr, year) if spec.years else owner.value(attr)
        s = self._pick(self.facts.get(owner.id, attr, year if spec.years else None), col.request,
                       value if isinstance(value, float) else None)
        if s is None:
            return None
        steps.append([s.url, s.text])
        return S.derive(s.text, col.request.transform), steps

    def _pick(self, surfaces: Sequence[Surface], request: R.Request,
              value: float | None) -> Surface | None:
        ok = [s for s in surfaces if not s.on_list and R.usable(s, request, value)]
        return self.rng.choice(ok) if ok else None

    def make(self, count: int, id_prefix: str) -> list[tuple[Task, dict[str, Any]]]:
        from wideseek_env.worlds.v2.queries import write_query

        out: list[tuple[Task, dict[str, Any]]] = []
        seen: set[tuple] = set()
        attempts = tries = 0
        yearly = [a for a in self.d.attrs.values() if a.askable and a.years]
        bucket = None
        while len(out) < count and attempts < 60 * count:
            attempts += 1
            if bucket is None or tries >= 80:  # a row-count bucket is kept until a task lands
                bucket, tries = self.rng.choices(ROW_BUCKETS, [w for *_, w in ROW_BUCKETS])[0], 0
                year_rows = bool(yearly) and self.rng.random() < 0.2
                years: tuple[int, ...] = tuple(sorted(self.rng.sample(
                    yearly[0].years, min(len(yearly[0].years), 3)))) if year_rows else ()
            tries += 1
            lo, hi, _ = bucket
            if year_rows:
                lo, hi = max(1, -(-lo // len(years))), max(1, hi // len(years))
            draft = self.select((lo, hi))
            if draft is None:
                continue
            if year_rows:
                draft.years = years
                draft.rows = [(e, y) for e, _ in draft.rows for y in years]
            made = self._columns_and_gold(draft, year_rows)
            if made is None:
                continue
            columns, rows, prov = made
            sig = (tuple(sorted(e.id for e, _ in draft.rows)), tuple(c.header for c in columns))
            if sig in seen:
                continue
            seen.add(sig)
            bucket = None
            query, info = write_query(self.d, draft, columns, self.rng, self.domains)
            headers = tuple(c.header for c in columns)
            norms = tuple(norm_column(h) for h in headers)
            if len(set(norms)) != len(norms):
                continue
            n_keys = len(self.d.key_headers) + (1 if year_rows else 0)
            pipeline: dict[str, ColumnEval] = {n: c.request.evaluation
                                               for n, c in zip(norms, columns)}
            task = Task(
                instance_id=f"{id_prefix}{len(out):05d}", query=query, language="en",
                unique_columns=norms[:n_keys], required=norms, eval_pipeline=pipeline,
                gold=GoldTable(headers, tuple(rows)),
                meta={"domain": self.d.name, "selection": draft.selection,
                      "conditions": draft.conditions, "year_rows": list(draft.years),
                      "hop_columns": [c.header for c in columns if c.source == "hop"],
                      "row_urls": [self.writer.profile_url[e.id] for e, _ in draft.rows],
                      **info})
            out.append((task, {"instance_id": task.instance_id, "cells": prov,
                               "transforms": [c.request.transform.as_dict() for c in columns],
                               "hops": [c.source == "hop" for c in columns]}))
        return out

    def _columns_and_gold(self, draft: Draft, year_rows: bool
                          ) -> tuple[list[Column], list[tuple[str, ...]], list] | None:
        rng = self.rng
        self._pending.clear()
        keys = [Column(h, "key", R.key_request(), key_index=i)
                for i, h in enumerate(self.d.key_headers)]
        candidates = self._column_candidates(draft, year_rows)
        if year_rows:
            yearly = [c for c in candidates if c.source == "attr" and c.year is None and
                      self.d.attrs[c.attr].years]
            if not yearly:
                return None
            keys.append(Column("Year", "year", R.year_request(), attr=yearly[0].attr))
        hops = [c for c in candidates if c.source == "hop"]
        plain = [c for c in candidates if c.source == "attr"]
        # A weighted shuffle: numbers, dates and lists twice as likely as names and codes.
        weight = {"number": 2.0, "date": 2.0, "list": 2.0}
        plain.sort(key=lambda c: rng.random() ** (1 / weight.get(self.d.attrs[c.attr].kind, 1.0)),
                   reverse=True)
        n = rng.randint(3, 6)
        chosen: list[Column] = []
        if year_rows:
            chosen += [c for c in plain if c.year is None and self.d.attrs[c.attr].years][:2]
        if hops and rng.random() < 0.45:
            hop = rng.choice(hops)
            chosen.append(hop)
            ref = next((c for c in plain if c.attr == hop.attr), None)
            if ref is not None and rng.random() < 0.7:
                chosen.append(ref)
        rng.shuffle(hops)
        for c in plain + hops:  # hops fill in where a domain has few attributes of its own
            if len(chosen) >= n:
                break
            if c not in chosen and all(c.attr != x.attr or c.source != x.source or
                                       c.target != x.target for x in chosen):
                chosen.append(c)
        if len(chosen) < 3:
            return None
        columns = keys + [replace(c, request=self._request(c.header, *self._pending[c.header]))
                          for c in chosen]
        rows, prov = [], []
        for e, y in draft.rows:
            row, cells = [], []
            for col in columns:
                got = self.cell(col, e, y)
                if got is None:
                    return None
                row.append(got[0])
                cells.append(got[1])
            rows.append(tuple(row))
            prov.append(cells)
        return columns, rows, prov


def _round_sig(x: float, digits: int) -> float:
    if x == 0:
        return 0.0
    p = digits - 1 - math.floor(math.log10(abs(x)))
    return round(x, p) if p > 0 else float(round(x, p))


def _year(v: Any) -> int:
    return v.year if isinstance(v, date) else int(v)
