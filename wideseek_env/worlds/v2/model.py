"""The fact model of a v2 world: domains of entities with typed attributes.

A :class:`Domain` is one kind of entity (U.S. counties, chemical elements, airports ...): its key
columns, its :class:`AttrSpec` attributes and its :class:`Entity` rows. Attribute values are kept
canonically (numbers as floats in the attribute's ``unit``, dates as :class:`datetime.date`,
lists as lists of strings, references as the id of another entity); a *yearly* attribute holds a
value per year. Pages (:mod:`.pages`) write these values in varying surface forms, and tasks
(:mod:`.tasks`) read them back through those surfaces.

``Entity.source`` keeps the value each attribute had in the source data before the world made it
counterfactual (``None``: the value was generated), so the card can report how many test facts
differ from the source data (:func:`counterfactual_share`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

AttrKind = Literal["number", "date", "text", "list", "ref"]


@dataclass(frozen=True)
class AttrSpec:
    """One attribute of a domain.

    ``header`` is the gold column's name and ``phrase`` how a query says it; ``labels`` are the
    infobox labels pages use (synonyms and abbreviations, mostly not the query's words; ``{y}`` is
    the year of a yearly value) and ``clauses`` the prose clauses (``{v}`` the surface, ``{y}``
    the year, ``{e}`` the entity). Numbers are kept in ``unit`` with ``decimals`` places; pages
    may write them in ``alt_units`` and tasks may ask for any of ``request_units``. ``years``
    makes the attribute yearly. ``ref`` names the domain a ``ref`` value points into.
    ``askable``: may be a gold column (identifiers that memory answers are not, in test worlds).
    ``tolerance`` is the ``number_near`` criterion.
    """

    key: str
    kind: AttrKind
    header: str
    phrase: str
    labels: tuple[str, ...]
    clauses: tuple[str, ...]
    unit: str = ""
    alt_units: tuple[str, ...] = ()
    request_units: tuple[str, ...] = ()
    decimals: int = 0
    tolerance: float = 0.05
    years: tuple[int, ...] = ()
    ref: str = ""
    askable: bool = True
    filterable: bool = True

    def __post_init__(self) -> None:
        for c in self.clauses:
            if "{v}" not in c:
                raise ValueError(f"attribute {self.key!r}: clause {c!r} has no {{v}}")
        if self.years and any("{y}" not in c for c in self.clauses):
            raise ValueError(f"attribute {self.key!r}: a yearly attribute's clauses need {{y}}")


@dataclass
class Entity:
    """One row of a domain. ``key`` holds the key-column values (``name`` is the first);
    ``title`` is the page title (it differs from the name where names collide); ``groups`` are
    the categories the entity is listed under (``{"state": "Texas"}``)."""

    id: str
    domain: str
    key: tuple[str, ...]
    values: dict[str, Any]
    source: dict[str, Any] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)
    title: str = ""
    aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Source data carries stray white space ("Bonaire, Saint Eustatius and Saba "): a page
        # and a gold cell must say the same thing.
        self.key = tuple(" ".join(k.split()) for k in self.key)
        self.values = {a: (" ".join(v.split()) if isinstance(v, str) else
                           [" ".join(x.split()) for x in v] if isinstance(v, list) else v)
                       for a, v in self.values.items()}
        self.groups = {g: " ".join(v.split()) for g, v in self.groups.items()}

    @property
    def name(self) -> str:
        return self.key[0]

    def value(self, attr: str, year: int | None = None) -> Any:
        v = self.values.get(attr)
        if isinstance(v, dict):
            return v.get(year) if year is not None else None
        return v


@dataclass
class Domain:
    """A kind of entity: ``key_headers`` name the key columns (``("County", "State")``);
    ``intro`` is the first sentence of an entity's pages (``{e}`` and the entity's groups);
    ``title`` how its pages are titled (``{e}, {state}``; empty: the name), as sites title
    such pages, so a key is rarely a page title verbatim."""

    name: str
    split: str
    singular: str
    plural: str
    key_headers: tuple[str, ...]
    attrs: dict[str, AttrSpec]
    entities: list[Entity]
    intro: str
    task_share: float = 1.0
    hop_only: bool = False  # entities reached only through references (no tasks of their own)
    title: str = ""  # page title template: {e} the name, plus groups and text values
    intro_uses_title: bool = False  # the lead sentence names the entity by its title

    def by_id(self) -> dict[str, Entity]:
        return {e.id: e for e in self.entities}


def stable_hash(*parts: object, n: int = 12) -> str:
    """A short hex digest of ``parts`` (string seeds: independent of ``PYTHONHASHSEED``)."""
    return hashlib.sha1(":".join(map(str, parts)).encode("utf-8")).hexdigest()[:n]


def fact_items(entity: Entity) -> list[tuple[str, int | None, Any]]:
    """``(attr, year, value)`` for every known fact of ``entity``."""
    out = []
    for attr, v in entity.values.items():
        if isinstance(v, dict):
            out.extend((attr, y, x) for y, x in sorted(v.items()) if x not in (None, "", []))
        elif v not in (None, "", []):
            out.append((attr, None, v))
    return out


def counterfactual_share(domains: list[Domain], split: str = "test") -> dict[str, Any]:
    """How many facts of ``split``'s domains differ from the source data (generated facts count
    as differing: no source states them)."""
    facts = changed = generated = 0
    for d in domains:
        if d.split != split:
            continue
        for e in d.entities:
            for attr, year, v in fact_items(e):
                facts += 1
                src = e.source.get(attr)
                if isinstance(src, dict):
                    src = src.get(year)
                if src is None:
                    generated += 1
                elif _differs(v, src):
                    changed += 1
    return {"split": split, "facts": facts, "changed_from_source": changed,
            "generated": generated,
            "share_differs": round((changed + generated) / facts, 4) if facts else 0.0}


def _differs(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return abs(float(a) - float(b)) > 1e-9 * max(1.0, abs(float(b)))
        except (TypeError, ValueError):
            return True
    if isinstance(a, date) or isinstance(b, date):
        return a != b
    return a != b


def prune_refs(domains: list[Domain]) -> int:
    """Drop reference values that point at no entity of the world (capped test worlds, a
    capital that is not among the cities); returns how many were dropped."""
    ids = {e.id for d in domains for e in d.entities}
    dropped = 0
    for d in domains:
        refs = [a.key for a in d.attrs.values() if a.kind == "ref"]
        for e in d.entities:
            for r in refs:
                if r in e.values and e.values[r] not in ids:
                    del e.values[r]
                    dropped += 1
    return dropped
