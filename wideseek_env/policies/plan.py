"""What the scripted lead reads from a task query: the columns and which of them are keys, the
format each column wants, the attribute phrase behind each column (and, for a multi-hop column,
the entity it is reached through), the sets of entities to find, explicit names, conditions on
the rows, and entity x year rows.

Works on the query text only (never gold or task metadata). It understands the request shapes
of generated worlds (both tiers) and falls back to the first paragraph for anything else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from wideseek_env.policies import heuristics as H
from wideseek_env.policies.reading import Format, Want

_DOT = "§"  # stands in for the periods of abbreviations while sentences are split
_ABBREVIATIONS = ("U.S.", "e.g.", "i.e.", "St.", "Mt.", "Ft.")
_COLS_PATTERNS = (
    r"Please find (?P<set>.+?), and for each one give (?P<cols>.+?)\.$",
    r"I need every one of (?P<set>.+?), with (?P<cols>.+?)\.$",
    r"List (?P<set>.+?)\. For each, report (?P<cols>.+?)\.$",
    r"Could you gather (?P<set>.+?)\? I'd like (?P<cols>.+?) for each of them\.$",
    r"Compile (?P<set>.+?), including (?P<cols>.+?)\.$",
    r"Identify (?P<set>.+?) and record (?P<cols>.+?) for each\.$",
    r"Go through (?P<set>.+?) and note (?P<cols>.+?) of each\.$",
    r"Collect (?P<cols>.+?) for (?P<set>.+?)\.$",
)
_VERBS = {"formed": "date of establishment", "admitted to the Union": "date of admission",
          "incorporated": "date of incorporation", "opened": "opening date",
          "discovered": "date of discovery"}


@dataclass(frozen=True)
class Condition:
    """A condition on rows: ``above``/``below`` a number (in ``unit``), ``before``/``from`` a
    year, ``exclude`` a value, or the ``top``/``bottom`` ``n`` by a number."""

    kind: str
    phrase: str
    number: float = 0.0
    unit: str = ""
    value: str = ""


@dataclass(frozen=True)
class Plan:
    headers: tuple[str, ...]
    keys: tuple[str, ...]
    years: tuple[int, ...] = ()
    wants: dict[str, Want] = field(default_factory=dict)
    formats: dict[str, Format] = field(default_factory=dict)
    hops: dict[str, tuple[str, str]] = field(default_factory=dict)  # header -> (what, via)
    sets: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    conditions: tuple[Condition, ...] = ()

    @property
    def attribute_headers(self) -> tuple[str, ...]:
        return tuple(h for h in self.headers if h in self.wants)

    @property
    def year_header(self) -> str | None:
        return next((h for h in self.headers if h.lower() == "year"), None) if self.years \
            else None


def _protect(text: str) -> str:
    for a in _ABBREVIATIONS:
        text = text.replace(a, a.replace(".", _DOT))
    return text


def _restore(text: str) -> str:
    return text.replace(_DOT, ".")


def _split_list(text: str) -> list[str]:
    parts = re.split(r",\s+(?:and\s+)?|\s+and\s+(?=the\s)", text)
    return [p.strip() for p in parts if p.strip()]


def read_formats(query: str, headers: tuple[str, ...]) -> dict[str, Format]:
    """The format notes of a query, per header (``Give Land Area in square miles, rounded to
    whole numbers``; ``Write Established as YYYY-MM-DD``; ``Give A, B as Arabic numerals``)."""
    out: dict[str, Format] = {}
    by_lower = {h.lower(): h for h in headers}

    def decimals(text: str) -> int | None:
        if "whole number" in text:
            return 0
        m = re.search(r"rounded to (\d+) decimal", text)
        return int(m.group(1)) if m else None

    for line in query.splitlines():
        line = line.strip()
        if m := re.match(r"Give (.+?) in (millions|thousands), (.+)$", line):
            h = by_lower.get(m.group(1).lower())
            if h:
                out[h] = Format("number", "", 1e6 if m.group(2) == "millions" else 1e3,
                                decimals(m.group(3)))
        elif m := re.match(r"Give (.+?) in (.+?), (rounded .+?)(?:, without the unit)?\.$", line):
            h = by_lower.get(m.group(1).lower())
            if h:
                unit = {"daltons (u)": "u", "per cent": "%"}.get(m.group(2), m.group(2))
                out[h] = Format("number", unit, 1.0, decimals(m.group(3)))
        elif m := re.match(r"Give (.+?) as plain numbers, (.+)$", line):
            h = by_lower.get(m.group(1).lower())
            if h:
                out[h] = Format("number", "", 1.0, decimals(m.group(2)))
        elif m := re.match(r"Write (.+?) (as YYYY-MM-DD|with the month spelled out|day first)",
                           line):
            h = by_lower.get(m.group(1).lower())
            if h:
                style = {"as YYYY-MM-DD": "iso", "with the month spelled out": "mdy",
                         "day first": "dmy"}[m.group(2)]
                out[h] = Format("date", style=style)
        elif m := re.match(r"For (.+?), give the year only", line):
            h = by_lower.get(m.group(1).lower())
            if h:
                out[h] = Format("date", style="year")
        elif m := re.match(r"Put all (.+?) of a row in one cell", line):
            h = by_lower.get(m.group(1).lower())
            if h:
                out[h] = Format("list")
        elif m := re.match(r"Give (.+?) as Arabic numerals", line):
            for name in re.split(r",\s*", m.group(1)):
                h = by_lower.get(name.strip().lower())
                if h:
                    out[h] = Format("number")
    return out


def _conditions(text: str) -> tuple[str, list[Condition]]:
    """Split ``<set><conditions>`` into the set phrase and its conditions."""
    conds: list[Condition] = []
    if m := re.search(r",\s*excluding any whose (.+?) is (.+)$", text):
        conds.append(Condition("exclude", m.group(1), value=m.group(2).strip()))
        text = text[: m.start()]
    for m in list(re.finditer(r"\s(?:and\s)?with an? (.+?) (above|below) ([-\d,.]+)"
                              r"((?: [^\s\d,]+){0,2}?)(?=$| and | with )", text)):
        num = float(m.group(3).replace(",", ""))
        conds.append(Condition(m.group(2), m.group(1), num, m.group(4).strip()))
    text = re.sub(r"\s(?:and\s)?with an? (.+?) (above|below) ([-\d,.]+)((?: [^\s\d,]+){0,2}?)"
                  r"(?=$| and | with )", "", text)
    verbs = "|".join(re.escape(v) for v in _VERBS)
    for m in list(re.finditer(rf"\s(?:and\s)?({verbs}) (before|in or after) (\d{{4}})", text)):
        conds.append(Condition("before" if m.group(2) == "before" else "from",
                               _VERBS[m.group(1)], float(m.group(3))))
    text = re.sub(rf"\s(?:and\s)?({verbs}) (before|in or after) (\d{{4}})", "", text)
    return text.strip(" ,"), conds


def _groups(set_phrase: str) -> tuple[list[str], list[str]]:
    """``the counties of Kansas and Nebraska`` -> (sets, groups) one per group."""
    m = re.match(r"^(?P<head>the .+? (?:of|in) (?:the )?(?:elements of )?)(?P<g>.+?)"
                 r"(?P<tail> with at least .+| that have .+)?$", set_phrase)
    if not m or m.group("head").startswith("the following"):
        return [set_phrase], [""]
    groups = [g.strip() for g in m.group("g").split(" and ") if g.strip()]
    tail = m.group("tail") or ""
    return [f"{m.group('head')}{g}{tail}" for g in groups], groups


def read_plan(query: str) -> Plan:
    """The :class:`Plan` of ``query`` (see the module docstring)."""
    headers = tuple(H.parse_columns(query))
    if not headers:
        return Plan((), ())
    formats = read_formats(query, headers)
    para = _protect(H.first_paragraph(query))
    years: tuple[int, ...] = ()
    if m := re.search(r"Give one row per .+? and year, for the years ([\d ,and]+)\.", para):
        years = tuple(int(y) for y in re.findall(r"\d{4}", m.group(1)))
        para = para[: m.start()].strip()
    sentences = re.split(r"(?<=[.?!:])\s+(?=[A-Z])", para)
    found = None
    for i in range(len(sentences)):
        for j in range(i + 1, min(i + 3, len(sentences) + 1)):
            chunk = " ".join(sentences[i:j])
            for pat in _COLS_PATTERNS:
                if mm := re.match(pat, chunk):
                    found = mm
                    break
            if found:
                break
        if found:
            break
    if found is None:
        return _v1_plan(query, headers, formats)
    set_text, conds = _conditions(_restore(found.group("set")))
    phrases = [re.sub(r"^the\s+", "", p) for p in _split_list(_restore(found.group("cols")))]
    n_keys = len(headers) - len(phrases) - (1 if years else 0)
    if n_keys < 1:
        return _v1_plan(query, headers, formats)
    keys = headers[:n_keys]
    attr_headers = [h for h in headers[n_keys:] if not (years and h.lower() == "year")]
    wants, hops = {}, {}
    for h, p in zip(attr_headers, phrases):
        fmt = formats.get(h, Format())
        if m := re.match(r"(.+) of its (.+)$", p):
            hops[h] = (m.group(1), m.group(2))
        wants[h] = Want(p, fmt.kind)
    sets, groups = _groups(set_text)
    return Plan(headers, keys, years, wants, formats, hops, tuple(sets), tuple(groups), (),
                tuple(conds))


def _v1_plan(query: str, headers: tuple[str, ...], formats: dict[str, Format]) -> Plan:
    """The easy tier's and HybridQA's queries: phrases from the query's wording of each header,
    the request from the first paragraph, explicit names, a threshold or top-n condition."""
    phrases = H.attribute_phrases(query, headers[1:])
    request = H.first_paragraph(query)
    for phrase in phrases:
        request = re.sub(r"\bthe " + re.escape(phrase) + r"\b", "", request, flags=re.IGNORECASE)
    request = re.sub(r"\s+([,.?:;])", r"\1",
                     re.sub(r"(?:,\s*)+(and\s*)?(?=[,.?:;])|\s{2,}", " ", request)).strip()
    sel = H.parse_selection(query)
    conds = []
    if sel.condition in ("more", "less"):
        conds.append(Condition("above" if sel.condition == "more" else "below", sel.attribute,
                               sel.number))
    elif sel.condition in ("highest", "lowest"):
        conds.append(Condition("top" if sel.condition == "highest" else "bottom", sel.attribute,
                               float(sel.top_n)))
    wants = {h: Want(p, formats.get(h, Format()).kind) for h, p in zip(headers[1:], phrases)}
    return Plan(headers, headers[:1], (), wants, formats, {}, (request,), ("",), sel.names,
                tuple(conds))
