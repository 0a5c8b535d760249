"""How the scripted baseline reads a value off a page, and writes it in the format a query asks.

Reading (:func:`find_value`) works on what any page offers: ``Label: value`` lines of an
infobox, and prose sentences cut into clauses. A line or clause is a candidate when it carries a
*cue* of the attribute: a content word of the query's phrase or a common synonym of it (a small
general thesaurus, :data:`SYNONYMS`: "population" is also said "inhabitants", "residents",
"pop."). The value is then taken by its expected type: a number (with its unit and scale word,
never the year the phrase names), a date, a list, or a name (the rest of the label line, or the
words after the cue in a clause). A yearly attribute ("population at the 2010 census") needs its
year on the line, or a page that says it describes that year; figures of other years are stale.

Writing (:func:`format_value`): numbers are read with separators, scale words and units, then
converted to the unit, scale and rounding the query asks; dates are re-written in the asked
style; lists are joined with commas.

The thesaurus is general English, written for this baseline; it does not read any world's
vocabulary, but its author also wrote the v2 generator, so it is an optimistic heuristic, not
what a language model would do (see docs/eval.md).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from wideseek_env.policies import heuristics as H
from wideseek_env.scoring.dates import parse_date

#: Synonyms by head word: any of these on a line or clause is a cue for an attribute whose
#: phrase holds the head word.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "population": ("population", "pop.", "inhabitants", "residents", "people", "census count",
                   "head count"),
    "area": ("area", "surface", "extent", "size", "covers", "spans", "extends over", "takes in"),
    "establishment": ("established", "formed", "created", "organized", "founded", "dates from"),
    "incorporation": ("incorporated", "chartered", "charter"),
    "admission": ("admitted", "joined the union", "statehood", "member of the union"),
    "seat": ("seat", "administrative centre", "courthouse", "administered from", "offices in"),
    "capital": ("capital", "seat of government", "governed from", "legislature",
                "government seat", "government in"),
    "largest": ("largest", "biggest", "most populous", "principal city"),
    "zone": ("zone", "zones", "clock", "clocks", "local time", "keeps", "observes", "runs on"),
    "zones": ("zone", "zones", "clock", "clocks", "local time", "keeps", "spans", "runs on"),
    "elevation": ("elevation", "altitude", "above sea level", "elev."),
    "density": ("density", "specific mass", "ρ", "dense", "packs"),
    "melting": ("melting", "melts", "fusion", "m.p.", "liquid"),
    "weight": ("atomic weight", "atomic mass", "standard weight", "weighs", "ar:"),
    "radius": ("radius", "r_cov"),
    "discovery": ("discovered", "isolated", "identified", "discovery"),
    "discoverer": ("discoverer", "isolated by", "described by", "credited to", "discovery to"),
    "abundance": ("abundance", "in nature", "fraction", "occurrence", "makes up", "accounts for"),
    "mass": ("mass", "weighs"),
    "identified": ("identified", "first observed", "observed on", "discovery"),
    "spin": ("spin",),
    "languages": ("languages", "tongues", "speaks", "official business"),
    "bordering": ("borders", "neighbours", "land borders"),
    "currency": ("currency", "money", "legal tender", "monetary unit", "pays in"),
    "4217": ("iso 4217", "currency abbreviation", "abbreviates"),
    "calling": ("calling code", "dialling code", "telephone prefix", "phone prefix", "by phone"),
    "domain": ("domain", "internet suffix", "cctld", "websites ending"),
    "demonym": ("demonym", "nationality adjective", "people are called", "calls its people"),
    "iso": ("iso code", "country code", "alpha-2", "carries the code"),
    "continent": ("continent", "part of the world", "landmass", "lies in"),
    "subregion": ("subregion", "geoscheme", "belongs to"),
    "passengers": ("passengers", "traffic", "travellers", "passenger movements", "handled"),
    "opening": ("opened", "in service since", "first flights"),
    "iata": ("iata", "three-letter code", "luggage"),
    "icao": ("icao", "four-letter code"),
    "serves": ("serves", "nearest city", "airfield of", "location"),
    "latitude": ("latitude", "lat.", "coordinates (lat)"),
    "longitude": ("longitude", "lon.", "coordinates (lon)"),
    "symbol": ("symbol", "sign", "written"),
    "isotopes": ("isotopes", "stable forms", "natural nuclides", "occurs in nature",
                 "found in nature"),
    "neutron": ("neutron", "neutrons"),
    "period": ("period", "row"),
    "block": ("block", "fills the"),
}
_STOP = frozenset({"the", "a", "an", "of", "in", "at", "its", "it", "and", "for", "to", "on",
                   "date", "number", "year", "census", "code", "city", "point", "first"})
_YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d)\b")
NUMBER = re.compile(r"[-−]?\d{1,3}(?:[, ]\d{3})+(?:\.\d+)?(?!\d)|[-−]?\d+(?:\.\d+)?")
_SCALE = {"thousand": 1e3, "million": 1e6, "billion": 1e9}
_DATE = re.compile(
    r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2} (?:January|February|March|April|May|June|July|August|"
    r"September|October|November|December) \d{4}\b|\b(?:January|February|March|April|May|June|"
    r"July|August|September|October|November|December|Jan\.|Feb\.|Mar\.|Apr\.|Aug\.|Sept\.|"
    r"Oct\.|Nov\.|Dec\.) \d{1,2}, \d{4}\b")


@dataclass(frozen=True)
class Want:
    """An attribute to read: the query's ``phrase``, the ``year`` it names (if any) and the
    ``kind`` of value the query's format notes imply (number, date, list or text)."""

    phrase: str
    kind: str = "text"

    @property
    def year(self) -> int | None:
        m = _YEAR.search(self.phrase)
        return int(m.group(1)) if m else None

    @property
    def cues(self) -> tuple[str, ...]:
        return cues_of(self.phrase)


@lru_cache(maxsize=4096)
def cues_of(phrase: str) -> tuple[str, ...]:
    """The phrase itself, and the words of it the thesaurus knows with their synonyms (all its
    content words when it knows none): "county seat" is cued by "seat", not by "county"."""
    core = _YEAR.sub(" ", phrase)
    core = re.sub(r"\s+(?:at the|in|as of)\s*(?:census|count)?\s*$", "", core).strip()
    words = [w for w in H.words(core) if w not in _STOP]
    known = [w for w in words if w in SYNONYMS or (w.endswith("s") and w[:-1] in SYNONYMS)]
    out: list[str] = [core.lower()] if core else []
    for w in known or words:
        out.append(w)
        out.extend(SYNONYMS.get(w, SYNONYMS.get(w[:-1], ())))
    return tuple(dict.fromkeys(out))


@lru_cache(maxsize=4096)
def _cue_pattern(cues: tuple[str, ...]) -> re.Pattern[str]:
    alts = "|".join(re.escape(c) for c in sorted(cues, key=len, reverse=True))
    return re.compile(r"(?<![\w-])(?:" + alts + r")(?![\w-])")


def _has_cue(text: str, cues: Sequence[str]) -> bool:
    return bool(cues) and _cue_pattern(tuple(cues)).search(text.lower()) is not None


def _page_year(text: str) -> int | None:
    m = re.search(r"figures describe the year (\d{4})|figures as of (\d{4})", text[:300])
    return int(m.group(1) or m.group(2)) if m else None


def _units(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


_VERB = (r"(?:is|was|has|had|keeps|lies|covers|spans|counted|recorded|received|joined|dates|"
         r"observes|runs|takes|extends|carries|uses|sits|weighs|melts|turns|packs|forms|makes|"
         r"accounts|occurs|speaks|shares|borders|pays|serves|handled|saw|opened|became|comprises|"
         r"owes|fills|calls|conducts|abbreviates|belongs|counts|governed|administered|admitted|"
         r"formed|organized|identified|observed|first|found|credit)\b")


def _clauses(line: str) -> list[str]:
    """Sentences of a line, each cut into its clauses ("X counted 5,316 residents in 2020 and
    keeps Eastern Time" -> two clauses) at commas and "and" that start a new verb phrase."""
    out = []
    for sentence in re.split(r"(?<=[a-z0-9)%²³])\.\s+(?=[A-Z])", line):
        for part in re.split(rf",\s+and\s+(?={_VERB})|,\s+(?={_VERB})|\s+and\s+(?={_VERB})",
                             sentence):
            out.append(part.strip().rstrip("."))
    return [c for c in out if c]


def _value_of_kind(text: str, kind: str, year: int | None, cues: Sequence[str],
                   phrase: str = "", entity: str = "") -> str | None:
    if kind == "date":
        m = _DATE.search(text)
        return m.group(0) if m else None
    if kind == "number":
        for m in NUMBER.finditer(text):
            digits = m.group(0)
            if year is not None and digits == str(year):
                continue
            if "year" not in phrase.lower() and re.fullmatch(r"1[5-9]\d\d|20\d\d", digits) \
                    and re.search(r"\b(?:in|census|count|since|of)\s*$", text[: m.start()]):
                continue  # a year named in passing ("... in 2010")
            rest = text[m.end(): m.end() + 30]
            unit = re.match(r"\s*(?:thousand|million|billion)?\s*(?:[^\s\d,;()]{1,12}"
                            r"(?:\s[^\s\d,;()]{1,12})?)?", rest)
            return (digits + (unit.group(0).rstrip() if unit else "")).strip()
        return None
    # names and lists: a sentence naming the attribute itself reads as "The P of E is V" ...
    if phrase and re.search(r"(?<![\w-])" + re.escape(phrase) + r"(?![\w-])", text,
                            re.IGNORECASE):
        v = H.value_in_sentence(text, phrase, entity)
        if v:
            return v
    # "has V as its <cue>" / "uses the V as its <cue>"
    for c in cues:
        m = re.search(r"\b(?:has|counts|uses|names|keeps)\s+(?:the\s+)?(.+?)\s+as\s+(?:its|the)\s+"
                      + re.escape(c) + r"\b", text, re.IGNORECASE)
        if m:
            return m.group(1).strip(" ,.;")
    # ... else the rest of the clause after the cue
    low = text.lower()
    best = None
    for c in cues:
        m = re.search(r"(?<![\w-])" + re.escape(c) + r"(?![\w-])", low)
        if m and (best is None or m.end() > best):
            best = m.end()
    if best is None:
        return None
    tail = text[best:].strip(" :,")
    tail = re.sub(r"^(?:is|are|was|in|on|from|at|to|of|as|the|by|with|its)\b\s*", "", tail)
    tail = re.sub(r"^(?:is|are|was|in|on|from|at|to|of|as|the|by|with|its)\b\s*", "", tail)
    tail = re.split(r"\s+(?:as its|on average|in formulas|by ICAO|on luggage|above sea level)\b",
                    tail)[0]
    return tail.strip(" .,;") or None


def find_value(pages: Sequence[H.PageText], want: Want, entity: str = "") -> str | None:
    """The value of ``want`` for ``entity`` stated on ``pages`` (raw, as written), or ``None``.
    (Memoised: the baseline re-reads its whole history every turn.)"""
    return _find_value(tuple(pages), want, entity)


@lru_cache(maxsize=16384)
def _find_value(pages: tuple[H.PageText, ...], want: Want, entity: str) -> str | None:
    """See :func:`find_value`.

    Lines that name the attribute in the query's own words are tried first (a page that says
    "The atomic number of Magnesium is 12" must not answer "atomic number" from the line about
    the atomic mass); then lines with any cue of it."""
    core = _YEAR.sub("", want.phrase).replace(" at the  census", "").replace(" in  ", " ")
    core = re.sub(r"\s+(?:at the census|in|as of)\s*$", "", core).strip()
    v = _find(pages, want, entity, (core.lower(),), core) if core else None
    if v:
        return v
    if core and want.kind == "text":
        for page in pages:  # sentences in the query's words: "The P of E is V", "V is the P"
            if not page.error and _has_cue(page.text, (core.lower(),)):
                v = H.extract_value(page.text, core, entity)
                if v:
                    return v
    return _find(pages, want, entity, want.cues, core)


def _find(pages: Sequence[H.PageText], want: Want, entity: str, cues: Sequence[str],
          core: str) -> str | None:
    year = want.year
    label_hits: list[tuple[int, str]] = []
    prose_hits: list[tuple[int, str]] = []
    for page in pages:
        if page.error:
            continue
        page_year = _page_year(page.text)
        for line in _units(page.text):
            label, sep, rest = line.partition(": ")
            if sep and len(label) <= 48 and rest and not line.startswith("- "):
                if not _has_cue(label, cues):
                    continue
                years = [int(y) for y in _YEAR.findall(label)]
                if year is not None and year not in years and page_year != year:
                    continue
                if year is None and page_year is not None:
                    continue  # a yearbook's figures are old
                v = _value_of_kind(rest, want.kind, year, cues, want.phrase) if want.kind in (
                    "number", "date") else rest.strip()
                if v:
                    label_hits.append((0 if year is None or year in years else 1, v))
                continue
            for clause in _clauses(line):
                if not _has_cue(clause, cues):
                    continue
                years = [int(y) for y in _YEAR.findall(clause)]
                if year is not None and year not in years and page_year != year:
                    continue
                v = _value_of_kind(clause, want.kind, year, cues, core or want.phrase, entity)
                if v:
                    prose_hits.append((0, v))
    hits = sorted(label_hits, key=lambda h: h[0]) + prose_hits  # stable: pages in given order
    return hits[0][1] if hits else None


# ------------------------------------------------------------------------------ formats

_UNIT_ALIASES: dict[str, tuple[str, float, float]] = {  # name -> (dimension, factor, offset)
    "km²": ("area", 1.0, 0.0), "square kilometres": ("area", 1.0, 0.0),
    "sq km": ("area", 1.0, 0.0), "sq mi": ("area", 2.589988110336, 0.0),
    "square miles": ("area", 2.589988110336, 0.0), "ha": ("area", 0.01, 0.0),
    "hectares": ("area", 0.01, 0.0), "m": ("length", 1.0, 0.0), "metres": ("length", 1.0, 0.0),
    "meters": ("length", 1.0, 0.0), "ft": ("length", 0.3048, 0.0), "feet": ("length", 0.3048, 0.0),
    "pm": ("small", 1.0, 0.0), "picometres": ("small", 1.0, 0.0), "å": ("small", 100.0, 0.0),
    "ångström": ("small", 100.0, 0.0), "ångströms": ("small", 100.0, 0.0),
    "g/cm³": ("density", 1.0, 0.0), "kg/m³": ("density", 0.001, 0.0),
    "k": ("temp", 1.0, 0.0), "kelvin": ("temp", 1.0, 0.0), "°c": ("temp", 1.0, 273.15),
    "degrees celsius": ("temp", 1.0, 273.15), "%": ("share", 1.0, 0.0),
    "percent": ("share", 1.0, 0.0), "per cent": ("share", 1.0, 0.0),
    "u": ("mass", 1.0, 0.0), "da": ("mass", 1.0, 0.0), "daltons": ("mass", 1.0, 0.0),
    "daltons (u)": ("mass", 1.0, 0.0), "g/mol": ("mass", 1.0, 0.0),
}


@dataclass(frozen=True)
class Format:
    """What a query asks of a column: ``kind`` (number, date, list, text), for numbers the
    ``unit`` name, ``scale`` and ``decimals`` (``None``: as found), for dates the ``style``
    (``iso``, ``mdy``, ``dmy``, ``year``)."""

    kind: str = "text"
    unit: str = ""
    scale: float = 1.0
    decimals: int | None = None
    style: str = ""


def read_quantity(raw: str) -> tuple[float, str] | None:
    """The number of a raw value and the unit written after it (``""`` if none)."""
    m = NUMBER.search(raw)
    if not m:
        return None
    x = float(m.group(0).replace(",", "").replace(" ", "").replace("−", "-"))
    rest = raw[m.end():].strip().lower()
    word = re.match(r"(thousand|million|billion)\b\s*", rest)
    if word:
        x *= _SCALE[word.group(1)]
        rest = rest[word.end():]
    unit = ""
    for name in sorted(_UNIT_ALIASES, key=len, reverse=True):
        if rest.startswith(name) and (len(rest) == len(name) or not rest[len(name)].isalpha()):
            unit = name
            break
    return x, unit


def format_value(raw: str, fmt: Format) -> str:
    """``raw`` written as ``fmt`` asks (``raw`` itself when it does not read)."""
    raw = raw.strip()
    if fmt.kind == "number":
        q = read_quantity(raw)
        if q is None:
            return raw
        x, unit = q
        if fmt.unit and unit and fmt.unit in _UNIT_ALIASES and unit in _UNIT_ALIASES:
            a, b = _UNIT_ALIASES[unit], _UNIT_ALIASES[fmt.unit]
            if a[0] == b[0]:
                x = ((x + a[2]) * a[1]) / b[1] - b[2]
        x /= fmt.scale
        if fmt.decimals is None:  # as precise as found, without an exponent
            return str(int(x)) if float(x).is_integer() else f"{x:.6f}".rstrip("0").rstrip(".")
        q10 = 10 ** fmt.decimals
        r = math.floor(abs(x) * q10 + 0.5 + 1e-9) / q10
        r = -r if x < 0 else r
        return f"{r:.{fmt.decimals}f}"
    if fmt.kind == "date":
        if fmt.style == "year":
            m = _YEAR.search(raw)
            return m.group(1) if m else raw
        d = parse_date(raw)
        if d is None:
            return raw
        return write_date(d, fmt.style)
    if fmt.kind == "list":
        parts = [p.strip() for p in re.split(r"\s*;\s*|\s+·\s+|,\s*and\s+|\s+and\s+|,\s*", raw)
                 if p.strip()] if ";" not in raw else [p.strip() for p in raw.split(";")]
        return ", ".join(parts)
    return raw


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")


def write_date(d: date, style: str) -> str:
    if style == "mdy":
        return f"{_MONTHS[d.month - 1]} {d.day}, {d.year}"
    if style == "dmy":
        return f"{d.day} {_MONTHS[d.month - 1]} {d.year}"
    return d.isoformat()
