"""Pages of a world: entity pages written as sentences, and list pages of entity names.

An entity page is the entity's real passage (when the source has one), a sentence saying where
the row comes from, and one sentence per known attribute, each on its own line and naming the
attribute and its value ("The population of Oslo is 709,037."). The template of each sentence is
drawn from the column's own phrasings or from generic ones with a random generator seeded by the
world seed and the row, so a page never looks like a pasted table and the build is reproducible.

A list page names entities of one category ("Cities in Norway"), one per line as a bullet list,
split over several pages when long. No page ever contains a task's gold table.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator

from wideseek_env.search.docstore import StoredPage
from wideseek_env.worlds.schema import Column, SourceTable, slugify

GENERIC_TEMPLATES: tuple[str, ...] = (
    "The {attr} of {e} is {v}{unit}.",
    "For {e}, the {attr} is {v}{unit}.",
    "The recorded {attr} for {e} is {v}{unit}.",
    "According to the records, the {attr} of {e} is {v}{unit}.",
    "The {attr} listed for {e} is {v}{unit}.",
)
LIST_PAGE_SIZE = 40


def fact_sentence(column: Column, entity: str, value: str, rng: random.Random) -> str:
    """One natural sentence stating ``entity``'s ``column`` is ``value``."""
    templates = column.templates or GENERIC_TEMPLATES
    template = templates[rng.randrange(len(templates))]
    unit = f" {column.unit}" if column.unit and column.kind == "number" else ""
    sentence = template.format(e=entity, attr=column.attr, v=value, unit=unit)
    sentence = sentence[0].upper() + sentence[1:]
    return sentence[:-1] if sentence.endswith("..") else sentence


def entity_page(parts: list[tuple[SourceTable, int]], url: str, seed: int) -> StoredPage:
    """The page at ``url`` of the entity of rows ``parts`` (``(table, row)``; several when tables
    share the entity): its passage, then per row a context sentence and the row's facts."""
    first, i0 = parts[0]
    entity = first.rows[i0][0]
    lines: list[str] = []
    passage = next((t.passages[i] for t, i in parts if t.passages and t.passages[i]), "")
    if passage:
        lines += [passage, ""]
    for n, (table, i) in enumerate(parts):
        rng = random.Random(f"{seed}:page:{table.id}:{i}")
        row = table.rows[i]
        if n:
            lines.append("")
        lines.append(table.context.format(e=entity) if table.context else
                     f"{entity} is one of the {table.scope}.")
        facts = [fact_sentence(col, entity, value, rng)
                 for col, value in zip(table.columns, row[1:]) if value]
        rng.shuffle(facts)
        lines.extend(facts)
    title = first.entity_title.format(e=entity) if first.entity_title else entity
    return StoredPage(id=url.rsplit("://", 1)[-1], url=url, title=title,
                      text="\n".join(lines), kind="entity", entity=entity)


def list_pages(table: SourceTable) -> Iterator[StoredPage]:
    """The list pages of ``table``: all its entities, and those of each category value."""
    groups: list[tuple[str, str, str, list[str]]] = []  # (slug path, title, intro, names)
    everyone = sorted(r[0] for r in table.rows)
    all_title = table.list_title or f"List of {table.scope}"
    groups.append(("all", all_title, f"This list names all {len(everyone)} {table.scope}.",
                   everyone))
    for c, col in enumerate(table.columns, start=1):
        if not col.list_title:
            continue
        by_value: dict[str, list[str]] = defaultdict(list)
        for row in table.rows:
            if row[c]:
                by_value[row[c]].append(row[0])
        for value in sorted(by_value):
            names = sorted(by_value[value])
            filt = col.filter_text.format(v=value) if col.filter_text else \
                f"whose {col.attr} is {value}"
            groups.append((f"{slugify(col.name)}/{slugify(value)}", col.list_title.format(v=value),
                           f"This list names the {len(names)} {table.scope} {filt}.", names))
    for path, title, intro, names in groups:
        parts = [names[j: j + LIST_PAGE_SIZE] for j in range(0, len(names), LIST_PAGE_SIZE)]
        for j, part in enumerate(parts, start=1):
            suffix = f" (part {j} of {len(parts)})" if len(parts) > 1 else ""
            url = f"{table.list_url_prefix or table.url_prefix}/list/{path}/{j}"
            text = intro + (f" This is part {j} of {len(parts)}." if suffix else "") + "\n\n"
            text += "\n".join(f"- {n}" for n in part)
            yield StoredPage(id=url.rsplit("://", 1)[-1], url=url, title=title + suffix,
                             text=text, kind="list")
