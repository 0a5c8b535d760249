"""Text heuristics of the scripted baseline: read a task query, search results, list pages and
fact sentences. Everything here works on text an agent is shown (the query, tool results), never
on gold or source tables.

- :func:`parse_columns`: the requested columns, from the line after "... columns ...:" (the
  WideSearch convention) or an inline "columns: A, B, C";
- :func:`attribute_phrases`: how the query words each non-key column ("the chemical symbol" for
  the column ``Symbol``), used to find the sentence that states it;
- :func:`parse_selection`: an explicit list of names in the query, and a numeric threshold or
  top-n condition the lead must apply itself;
- :func:`parse_hits`, :func:`split_pages`, :func:`bullet_names`: read ``search``/``access`` results;
- :func:`extract_value`: the value of an attribute from a page, by matching the attribute phrase
  against sentences and cutting the value out with a few generic sentence shapes
  ("The P of E is V", "V is the P of E", "E has a P of V", "E ... V, its P", "E is in the V P").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

_WORD = re.compile(r"[\w'’]+(?:[-/.][\w'’]+)*")
STOPWORDS = frozenset({
    "a", "all", "an", "and", "are", "as", "at", "be", "by", "each", "every", "for", "from", "has",
    "have", "in", "is", "it", "its", "list", "of", "on", "or", "part", "that", "the", "their",
    "this", "to", "was", "were", "which", "who", "whose", "with",
})
# Words that join an entity or attribute to its value ("... of V", "... is the V", "called V").
LINK_WORDS = frozenset({
    "a", "an", "are", "as", "at", "be", "by", "called", "for", "has", "have", "in", "is", "its",
    "of", "on", "so", "that", "the", "to", "use", "uses", "was", "were", "with",
})
_PAREN = re.compile(r"\s*[(（][^)）]*[)）]\s*")
_NUMBER_UNIT = re.compile(r"^([-+−]?\d[\d,]*(?:\.\d+)?)\s*([^\d\s]{1,8})$")


def words(text: str) -> list[str]:
    """Lower-case word tokens (hyphenated and slashed words stay whole: ``s-block``)."""
    return [w.lower() for w in _WORD.findall(text)]


def content_words(text: str) -> set[str]:
    return {w for w in words(text) if w not in STOPWORDS}


# ------------------------------------------------------------------------------ the query


def parse_columns(query: str) -> list[str]:
    """The column names a query asks for, in order (``[]`` if it names none)."""
    lines = [ln.strip() for ln in query.splitlines()]
    for i, line in enumerate(lines):
        low = line.lower()
        if ("column" in low or "列" in low) and line.endswith((":", "：")):
            for nxt in lines[i + 1 :]:
                if nxt:
                    return _split_headers(nxt)
        inline = re.search(r"(?:columns?|列(?:名|为)?)[^:：\n]{0,40}[:：]\s*(.+)$", line, re.IGNORECASE)
        if inline and re.search(r"[,，]", inline.group(1)):
            return _split_headers(inline.group(1))
    return []


def _split_headers(line: str) -> list[str]:
    parts = [p.strip().strip("`*").strip() for p in re.split(r"[,，、]", line)]
    parts = [p.rstrip("。.").strip() for p in parts]
    return [p for p in parts if p]


def first_paragraph(query: str) -> str:
    return query.strip().split("\n\n", 1)[0].strip()


def header_phrase(header: str) -> str:
    """A column header without its unit in parentheses, lower-cased: ``Area (km²)`` -> ``area``."""
    return _PAREN.sub(" ", header).strip().lower()


def attribute_phrases(query: str, headers: Sequence[str]) -> list[str]:
    """For each header, the phrase the query uses for it ("the chemical symbol" -> ``chemical
    symbol`` for ``Symbol``), else the header without its unit."""
    text = first_paragraph(query).lower()
    out = []
    for header in headers:
        base = header_phrase(header)
        found = re.search(r"\bthe ((?:(?!the |and )[\w'-]+ ){0,3}?" + re.escape(base) + r")(?![\w-])",
                          text)
        out.append(found.group(1) if found else base)
    return out


@dataclass(frozen=True)
class Selection:
    """What the query's first paragraph says about the rows: explicit names, and a condition the
    lead must check itself (``threshold``: attribute more/less than a number; ``top``: the n
    highest/lowest)."""

    names: tuple[str, ...] = ()
    condition: str = ""  # "", "more", "less", "highest", "lowest"
    attribute: str = ""
    number: float = 0.0
    top_n: int = 0


def parse_selection(query: str) -> Selection:
    para = first_paragraph(query)
    names: tuple[str, ...] = ()
    explicit = re.search(r"\bthe following (\d+) [^:]{1,200}?: (.+)", para, re.DOTALL)
    if explicit:
        n = int(explicit.group(1))
        rest = explicit.group(2)
        sep = "; " if "; " in rest else ", "
        items = rest.split(sep)
        if len(items) >= n:
            items = [*items[:n - 1], _cut_last_name(sep.join(items[n - 1:]))]
        names = tuple(x.strip() for x in items if x.strip())
    threshold = re.search(r"\bwith an? ([\w' -]+?) of (more|less) than ([-+]?\d[\d,]*(?:\.\d+)?)", para)
    if threshold:
        return Selection(names, threshold.group(2), threshold.group(1).strip(),
                         float(threshold.group(3).replace(",", "")))
    top = re.search(r"\bthe (\d+) (?:[^.?:]|(?<=\b[A-Z])\.)*?with the (highest|lowest) ([\w' -]+?)(?: and,|[.,:;?]|$)", para)
    if top:
        return Selection(names, top.group(2), top.group(3).strip(), 0.0, int(top.group(1)))
    return Selection(names)


def _cut_last_name(text: str) -> str:
    """The last name of an explicit list, without the sentence that follows it."""
    cut = re.split(r"(?<!\b[A-Z])\.\s|\s+and,\s|,\s|:\s|\?$|\.$", text, maxsplit=1)
    return cut[0].strip()


# ------------------------------------------------------------------------------ tool results


@dataclass(frozen=True)
class SearchHit:
    rank: int
    title: str
    url: str
    snippet: str


_HIT_HEAD = re.compile(r"^\[(\d+)\] (.*)$")


def parse_hits(result: str) -> list[SearchHit]:
    """The hits listed in a ``search`` tool result, in order (``[n] title`` / ``URL: u`` /
    snippet lines)."""
    hits: list[SearchHit] = []
    lines = result.splitlines()
    i = 0
    while i < len(lines):
        head = _HIT_HEAD.match(lines[i])
        if head and i + 1 < len(lines) and lines[i + 1].startswith("URL: "):
            j = i + 2
            snippet = []
            while j < len(lines) and lines[j] and not (
                _HIT_HEAD.match(lines[j]) and j + 1 < len(lines) and lines[j + 1].startswith("URL: ")
            ):
                snippet.append(lines[j])
                j += 1
            hits.append(SearchHit(int(head.group(1)), head.group(2).strip(),
                                  lines[i + 1][5:].strip(), " ".join(snippet).strip()))
            i = j
        else:
            i += 1
    return hits


@dataclass(frozen=True)
class PageText:
    url: str
    title: str
    text: str
    error: bool


def split_pages(result: str) -> list[PageText]:
    """The pages of an ``access`` tool result (each ``Page: title / URL: url / text`` or an error)."""
    out = []
    for block in result.split("\n\n---\n\n"):
        m = re.match(r"(?:Page: (.*)\n)?URL: (\S+)\n?(.*)", block, re.DOTALL)
        if not m:
            continue
        body = m.group(3)
        error = m.group(1) is None and body.lstrip().startswith("Error")
        out.append(PageText(m.group(2), (m.group(1) or "").strip(), body.strip(), error))
    return out


def page_table(text: str) -> tuple[list[str], list[list[str]]]:
    """The first markdown table of a page: its header and rows (``([], [])`` when none)."""
    lines = [ln.strip() for ln in text.splitlines()]
    for i in range(len(lines) - 1):
        if lines[i].startswith("|") and re.fullmatch(r"\|(?:\s*:?-{3,}:?\s*\|)+", lines[i + 1]):
            header = [c.strip() for c in lines[i].strip("|").split("|")]
            rows = []
            for ln in lines[i + 2:]:
                if not ln.startswith("|"):
                    break
                rows.append([c.strip() for c in ln.strip("|").split("|")])
            return header, rows
    return [], []


def bullet_names(text: str) -> list[str]:
    """Items of bullet lists (``- name``, ``* name``, ``• name``) in order, without duplicates."""
    seen: dict[str, None] = {}
    for m in re.finditer(r"^\s*[-*•]\s+(.+?)\s*$", text, re.MULTILINE):
        seen.setdefault(m.group(1), None)
    return list(seen)


# ------------------------------------------------------------------------------ facts


@lru_cache(maxsize=4096)
def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    body = r"\s+".join(re.escape(w) for w in phrase.split())
    return re.compile(r"(?<![\w-])" + body + r"(?![\w-])", re.IGNORECASE)


def _find_phrase(sentence: str, phrase: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _phrase_pattern(phrase).finditer(sentence)]


def _is_link(token: str) -> bool:
    # Case-sensitive: link words are written in lower case, values ("IN", "Be", "AS") are not.
    return token.strip(",;:") in LINK_WORDS


def _strip_links(text: str) -> str:
    """Drop leading link words, but never the last word (it is the value)."""
    toks = text.split()
    while len(toks) > 1 and _is_link(toks[0]):
        toks.pop(0)
    return " ".join(toks).strip(" ,;:")


def _after_last_link(text: str) -> str:
    toks = text.split()
    for i in range(len(toks) - 2, -1, -1):
        if _is_link(toks[i]):
            return " ".join(toks[i + 1 :]).strip(" ,;:")
    return text.strip(" ,;:")


def clean_value(value: str) -> str:
    """Trim a value and drop a unit after a number (``2.34 g/cm³`` -> ``2.34``)."""
    value = value.strip().strip("\"'“”").strip()
    m = _NUMBER_UNIT.match(value)
    return m.group(1) if m else value


def value_in_sentence(sentence: str, phrase: str, entity: str) -> str | None:
    """The value a sentence states for ``phrase`` of ``entity`` (None if it does not)."""
    s = sentence.strip()
    if s.endswith("."):
        s = s[:-1]
    ents = _find_phrase(s, entity) if entity else []
    spans = [sp for sp in _find_phrase(s, phrase)
             if not any(a <= sp[0] < b for a, b in ents)]
    if not spans:
        return None
    # An attribute is written in lower case; a capitalised match mid-sentence is part of a name.
    exact = [sp for sp in spans if s[sp[0]:sp[1]] == phrase or sp[0] == 0]
    spans = exact or spans
    # "V is the P of E" (the entity may also occur inside the value: "Panama City ... of Panama")
    if ents and ents[-1][1] == len(s) and re.search(r"\sis\s+the\s*$", s[: spans[0][0]]):
        return clean_value(re.sub(r"\s+is\s+the\s*$", "", s[: spans[0][0]]))
    ent = [e for e in ents if e[1] <= spans[0][0]] or ents
    ent_span = ent[0] if ent else (0, 0)
    # The first mention of the attribute names it; later ones may sit inside the value
    # ("... in the city of Atlantic City").
    p_start, p_end = spans[0]
    # "... P ... E ... is V" (the last " is " after both)
    is_pos = s.rfind(" is ")
    if is_pos >= 0 and is_pos >= p_end and (not ent or is_pos >= ent_span[1]):
        return clean_value(_strip_links(s[is_pos + 4 :]))
    # "E ... V, its P" / "E are called V; that is the P" / "E uses the V as its P"
    if spans[-1][1] == len(s):
        p_start = spans[-1][0]
        clause = re.search(r"(?:[;,]\s*(?:that\s+is\s+the|so\s+its|its)|\s+as\s+its)\s+$", s[:p_start])
        if clause:
            return clean_value(_after_last_link(s[: clause.start()]))
        # "E is in the V P"
        start = ent_span[1] if ent and ent_span[1] <= p_start else 0
        return clean_value(_strip_links(s[start:p_start]))
    # "E has a P of V" / "dial the P V" / "E lies on the P of V"
    start = max(p_end, ent_span[1] if ent else 0)
    return clean_value(_strip_links(s[start:]))


def _sentences(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if len(line) <= 300:
            out.append(line)
        else:  # a passage: split into sentences (not after single letters such as "U.S.")
            out.extend(p for p in re.split(r"(?<=[a-z0-9)][.!?])\s+(?=[A-Z])", line) if p)
    return out


@lru_cache(maxsize=8192)  # re-read every turn from the conversation; a few MB
def extract_value(page_text: str, phrase: str, entity: str) -> str | None:
    """The value of ``phrase`` for ``entity`` stated on a page, from its best sentence.

    A sentence qualifies if it contains the phrase as whole words; it scores higher when it also
    names the entity, when the phrase is followed by a linking word or the end ("the capital of"
    beats "the capital time zone of" for ``capital``) and when it is short.
    """
    best: tuple[tuple[int, int, int, int], str] | None = None
    for idx, sentence in enumerate(_sentences(page_text)):
        spans = _find_phrase(sentence, phrase)
        if not spans:
            continue
        _, end = spans[-1]
        nxt = words(sentence[end:])[:1]
        clean_end = 1 if (not nxt or nxt[0] in LINK_WORDS or sentence[end:].lstrip()[:1] in ".,;") else 0
        names_entity = 1 if entity and _find_phrase(sentence, entity) else 0
        key = (names_entity, clean_end, -len(sentence) // 40, -idx)
        if best is None or key > best[0]:
            best = (key, sentence)
    if best is None:
        return None
    value = value_in_sentence(best[1], phrase, entity)
    # Abbreviations keep their period, which the sentence's full stop swallowed ("is Ala."),
    # unless the value is the name itself or in capitals (postal codes such as "AL").
    if (value and "abbreviation" in phrase and best[1].rstrip().endswith(".")
            and value != entity and len(value) <= 6 and value[:1].isupper()
            and any(c.islower() or c == "." for c in value)):
        value += "."
    return value or None


def parse_number(text: str) -> float | None:
    """The first number in a value (``"1,234.5 km²"`` -> 1234.5), else None."""
    m = re.search(r"[-+−]?\d[\d,]*(?:\.\d+)?", text)
    if not m:
        return None
    try:
        return float(m.group(0).replace(",", "").replace("−", "-"))
    except ValueError:
        return None
