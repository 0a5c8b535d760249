"""The query grammar of v2 tasks: a purpose, a natural description of the row set with its
conditions, what to report, the table's columns, format and unit notes, and WideSearch's closing
instruction.

Queries read like WideSearch's: "I'm preparing a briefing on county government in the United
States. Please find the counties of Kansas with a population at the 2010 census above 40,000,
and for each one give ..." -- dozens of openings and request shapes, so a policy cannot learn
one template, and no query names a page or an article.
"""

from __future__ import annotations

import random
from typing import Any

from wideseek_env.worlds.taskgen import FORMAT_TAIL
from wideseek_env.worlds.v2.model import Domain

TOPICS: dict[str, tuple[str, ...]] = {
    "counties": ("county government in the United States", "local government in America",
                 "U.S. counties", "regional planning in the United States"),
    "states": ("the U.S. states", "American state governments", "U.S. federalism"),
    "elements": ("the chemical elements", "inorganic chemistry", "the periodic table"),
    "isotopes": ("natural isotopes", "nuclear chemistry", "isotope geochemistry"),
    "countries": ("world geography", "the countries of the world", "international relations"),
    "cities": ("urban growth", "the world's large cities", "city demographics"),
    "airports": ("air travel", "airport infrastructure", "regional aviation"),
}
OPENINGS: tuple[str, ...] = (
    "I'm preparing a briefing on {topic}.",
    "For a research project on {topic}, I need a clean table.",
    "My team is building a reference dataset about {topic}.",
    "Could you help me compile data on {topic}?",
    "We're writing a report on {topic} for our readers.",
    "As part of a market study touching on {topic}, I need some figures.",
    "I teach a course on {topic} and want a handout for my students.",
    "Our newsroom is fact-checking a story about {topic}.",
    "I'm a graduate student working on {topic}.",
    "For an internal wiki page on {topic}, please gather some data.",
    "A client asked us for an overview of {topic}.",
    "While planning a trip, I got curious about {topic}.",
    "To settle a debate with a colleague about {topic}, I need numbers.",
    "I'm drafting a grant proposal that involves {topic}.",
    "Help me put together a fact sheet on {topic}.",
    "Background research on {topic} is what I'm after today.",
    "We maintain a database on {topic} and need to refresh it.",
    "Quick request about {topic}:",
    "I need accurate, sourced numbers on {topic}.",
    "Our consultancy is benchmarking data related to {topic}.",
    "For a museum exhibit on {topic}, we need a table.",
    "My manager wants a spreadsheet on {topic} by Friday.",
    "Please assist with a literature review on {topic}.",
    "In preparation for a lecture on {topic}, I'm collecting data.",
    "As a hobbyist interested in {topic}, I'm building my own dataset.",
    "Let's build a comparison table on {topic}.",
    "I run a small blog about {topic} and want to publish a table.",
    "There's a gap in our records on {topic} that I need to fill.",
    "Could you do some desk research on {topic} for me?",
    "We are auditing an old spreadsheet about {topic}.",
    "Working on a data-journalism piece about {topic}, I need help.",
    "The board asked for a summary table on {topic}.",
    "I'd like a thorough answer to a question about {topic}.",
    "Imagine you are my research assistant for a study of {topic}.",
    "Here is a data-collection task on {topic}.",
    "Before our policy meeting on {topic}, I need the facts straight.",
    "I'm checking figures for a textbook chapter on {topic}.",
    "This is for a school assignment about {topic}.",
    "An analyst on my team needs a dataset on {topic}.",
    "Gathering information on {topic} is taking me too long, so please help.",
)
REQUESTS: tuple[str, ...] = (
    "Please find {set}{cond}, and for each one give {cols}.",
    "I need every one of {set}{cond}, with {cols}.",
    "List {set}{cond}. For each, report {cols}.",
    "Could you gather {set}{cond}? I'd like {cols} for each of them.",
    "Compile {set}{cond}, including {cols}.",
    "Identify {set}{cond} and record {cols} for each.",
    "Go through {set}{cond} and note {cols} of each.",
    "Collect {cols} for {set}{cond}.",
)
TABLE_LINES: tuple[str, ...] = (
    "Please organize the results in one Markdown table with the following columns:",
    "Please output the organized data in the format of one Markdown table. The column names "
    "in the table are as follows in sequence:",
    "Present the data in one Markdown table with these column names, in this order:",
    "Output a single Markdown table whose columns are, in order:",
)


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _column_phrase(domain: Domain, col: Any, domains_attrs: dict[str, Any]) -> str:
    if col.source == "hop":
        ref = domain.attrs[col.attr]
        target = domains_attrs[ref.ref][col.target]
        return f"the {target.phrase.format(y=col.year)} of its {ref.phrase}"
    spec = domain.attrs[col.attr]
    if spec.years and col.year is None:
        return f"the {spec.phrase.replace(' at the {y} census', '').replace(' in {y}', '')}"
    return f"the {spec.phrase.format(y=col.year)}"


def write_query(domain: Domain, draft: Any, columns: list[Any], rng: random.Random,
                domains: dict[str, Domain]) -> tuple[str, dict[str, Any]]:
    """The query text of a drawn task (a ``Draft`` and its ``Column`` list, see
    :mod:`.tasks`) and which grammar choices it used."""
    attrs_of = {name: d.attrs for name, d in domains.items()}
    o = rng.randrange(len(OPENINGS))
    r = rng.randrange(len(REQUESTS))
    opening = OPENINGS[o].format(topic=rng.choice(TOPICS.get(domain.name, (domain.plural,))))
    cond = ""
    if draft.conditions:
        main = [c for c in draft.conditions if not c.startswith("excluding")]
        excl = [c for c in draft.conditions if c.startswith("excluding")]
        cond = (" " + " and ".join(main) if main else "") + ("".join(", " + c for c in excl))
    attr_cols = [c for c in columns if c.source in ("attr", "hop")]
    cols = _join([_column_phrase(domain, c, attrs_of) for c in attr_cols])
    request = REQUESTS[r].format(set=draft.phrase, cond=cond, cols=cols)
    request = request[0].upper() + request[1:]
    parts = [f"{opening} {request}"]
    if draft.years:
        parts[0] += (f" Give one row per {domain.singular} and year, for the years "
                     f"{_join([str(y) for y in draft.years])}.")
    notes = [c.request.note for c in columns if c.request.note]
    body = "\n\n".join(parts)
    query = (f"{body}\n\n{rng.choice(TABLE_LINES)}\n{', '.join(c.header for c in columns)}\n"
             + "".join(n + "\n" for n in notes) + "\n" + FORMAT_TAIL)
    return query, {"opening": o, "request": r}

