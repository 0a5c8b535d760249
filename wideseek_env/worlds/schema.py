"""Source tables: the one input shape every world source is turned into.

A :class:`SourceTable` is a key column naming entities, attribute columns with a type each, rows
of cell strings (already formatted the way pages state them), optionally a real passage per row,
and the words a query needs to describe the whole set ("cities with at least 100,000
inhabitants"). The builder (:mod:`wideseek_env.worlds.builder`) turns source tables into pages
and tasks the same way whatever their origin.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from dataclasses import dataclass, field
from typing import Literal

from wideseek_env.search.docstore import StoredPage

ColumnKind = Literal["number", "date", "url", "category", "code", "text"]
KINDS: tuple[ColumnKind, ...] = ("number", "date", "url", "category", "code", "text")


@dataclass(frozen=True)
class Column:
    """One attribute column.

    ``name`` is the table header (with the unit, e.g. ``Area (km²)``); ``phrase`` is how a sentence
    names the attribute (``area``); ``unit`` is written after numbers in sentences. ``templates``
    are fact sentences with ``{e}`` (entity), ``{attr}`` (phrase), ``{v}`` (value) and ``{unit}``;
    each must contain ``{v}``, and the generic ones are used when it is empty. ``tolerance`` is the
    ``number_near`` criterion. ``list_title`` (``"Cities in {v}"``) makes the column a *category*
    with list pages and equality filters; ``filter_text`` (``"located in {v}"``) says the filter
    in a query.
    """

    name: str
    kind: ColumnKind
    phrase: str = ""
    unit: str = ""
    tolerance: float = 0.05
    templates: tuple[str, ...] = ()
    list_title: str = ""
    filter_text: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"column {self.name!r}: unknown kind {self.kind!r}; one of {KINDS}")
        for t in self.templates:
            if "{v}" not in t:
                raise ValueError(f"column {self.name!r}: template {t!r} does not contain {{v}}")

    @property
    def attr(self) -> str:
        return self.phrase or self.name.lower()


@dataclass(frozen=True)
class SourceTable:
    """Rows of entities from one source, ready for page and task generation.

    ``rows[i][0]`` is the key cell and ``rows[i][1:]`` align with ``columns``; an empty string is an
    unknown value (never asked for). ``group`` is the unit of split isolation (a domain, or the
    source article a table came from); ``split`` is ``train`` or ``test``. ``scope`` completes
    "every ... " in a query (``cities with at least 100,000 inhabitants``); ``singular`` and
    ``plural`` name one and several entities. ``extra_pages`` holds pages the source brings along
    (a HybridQA article section without its table). ``context`` is a sentence put on every entity
    page to say where the row comes from (``{e}`` is the entity; empty: a generic sentence).
    ``entity_title`` formats an entity page's title (``{e}``; empty: the key itself), and
    ``list_title`` titles the list of all entities (empty: "List of <scope>").
    ``merge_entities``: rows of tables with the same ``url_prefix`` and key share one entity page
    (HybridQA: one page per entity, with a paragraph per table it appears in).
    """

    id: str
    split: str
    group: str
    singular: str
    plural: str
    scope: str
    key: Column
    columns: tuple[Column, ...]
    rows: tuple[tuple[str, ...], ...]
    url_prefix: str
    passages: tuple[str, ...] = ()
    row_ids: tuple[str, ...] = ()
    context: str = ""
    list_title: str = ""
    entity_title: str = ""
    extra_pages: tuple[StoredPage, ...] = field(default_factory=tuple)
    tasks_wanted: int = 3
    merge_entities: bool = False
    list_url_prefix: str = ""

    def __post_init__(self) -> None:
        width = 1 + len(self.columns)
        for i, row in enumerate(self.rows):
            if len(row) != width:
                raise ValueError(f"source table {self.id!r} row {i}: {len(row)} cells, want {width}")
            if not row[0]:
                raise ValueError(f"source table {self.id!r} row {i}: empty key cell")
        keys = [r[0] for r in self.rows]
        if len(set(keys)) != len(keys):
            raise ValueError(f"source table {self.id!r}: key column {self.key.name!r} not unique")
        if self.passages and len(self.passages) != len(self.rows):
            raise ValueError(f"source table {self.id!r}: {len(self.passages)} passages for "
                             f"{len(self.rows)} rows")
        if self.row_ids and len(self.row_ids) != len(self.rows):
            raise ValueError(f"source table {self.id!r}: row_ids do not match rows")
        if self.split not in ("train", "test"):
            raise ValueError(f"source table {self.id!r}: split must be train or test")

    def entity_url(self, i: int) -> str:
        """The address of row ``i``'s entity page."""
        rid = self.row_ids[i] if self.row_ids else slugify(self.rows[i][0])
        return f"{self.url_prefix}/{rid}"


def slugify(text: str) -> str:
    """A URL path segment: ASCII letters, digits and ``_`` (accents folded, rest dropped)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^A-Za-z0-9]+", "_", ascii_text).strip("_")
    return slug or f"x{zlib.crc32(text.encode('utf-8')):08x}"
