"""The scripted agents' moves: reading an agent's own history, the subagent procedures (find an
entity list, look entities up), and the text formats of subtasks and reports that the scripted
lead and subagents exchange through the env.

Every function here is a pure function of text the agent was shown; :mod:`scripted` composes
them into the lead, subagent and single-agent roles.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from wideseek_env.env.protocol import ToolCall, parse_action
from wideseek_env.policies import heuristics as H
from wideseek_env.policies import reading as R

LIST_MARK = "Find the complete list of entities that this request asks about"
FACTS_MARK = "Look up facts about each entity below"
UNKNOWN = "unknown"
MAX_LIST_PAGES_TRIED = 3
_PART = re.compile(r"\s*\(part (\d+) of (\d+)\)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Step:
    """A tool call to make next (``name`` + ``arguments``) or, with ``name=None``, a final text."""

    name: str | None
    arguments: Mapping[str, Any] = field(default_factory=dict)
    text: str = ""


def tool_history(messages: Sequence[Mapping[str, Any]]) -> list[tuple[ToolCall, str]]:
    """The agent's tool calls that ran, each with its result text, in order."""
    out = []
    for i, msg in enumerate(messages[:-1]):
        if msg.get("role") != "assistant":
            continue
        call = parse_action(str(msg.get("content", "")))
        nxt = messages[i + 1]
        if isinstance(call, ToolCall) and nxt.get("role") == "tool" and nxt.get("name") == call.name:
            out.append((call, str(nxt.get("content", ""))))
    return out


def first_user(messages: Sequence[Mapping[str, Any]]) -> str:
    return next((str(m.get("content", "")) for m in messages if m.get("role") == "user"), "")


def max_items(tools: Sequence[Mapping[str, Any]], name: str, default: int) -> int:
    for tool in tools:
        fn = tool.get("function", tool)
        if fn.get("name") == name:
            props = fn.get("parameters", {}).get("properties", {})
            for prop in props.values():
                if isinstance(prop, Mapping) and "maxItems" in prop:
                    return int(prop["maxItems"])
    return default


# ------------------------------------------------------------------------------ procedures


class Log:
    """Searches (by query) and page reads (by URL) in an agent's history."""

    def __init__(self, history: Sequence[tuple[ToolCall, str]]) -> None:
        self.searches: dict[str, list[H.SearchHit]] = {}
        self.pages: dict[str, H.PageText] = {}
        for call, result in history:
            if call.name == "search":
                queries = list(call.arguments.get("queries", []))
                blocks = re.split(r"\n\n(?=Results for \"|No results for \")", result)
                for q, block in zip(queries, blocks):
                    self.searches[q] = H.parse_hits(block)
            elif call.name == "access":
                urls = list(call.arguments.get("urls", []))
                for url, page in zip(urls, H.split_pages(result)):
                    self.pages[url] = page


def list_queries(request: str, attempt: int = 1) -> list[str]:
    """Searches for the entity list: the whole request and its clauses with two or more content
    words (the clause that names the set usually matches the list page's title best). A set of
    "every edition of X from Y1 to Y2" is searched edition by edition."""
    text = re.sub(r"\s+", " ", request).strip()
    if m := re.search(r"listed under (.+?) in every edition of (.+?) from (\d{4})\S* to "
                      r"(\d{4})", text):
        first, last = int(m.group(3)), int(m.group(4))
        return [f"{y} {m.group(2)} {m.group(1)}" for y in range(first, min(last, first + 39) + 1)]
    parts = [text[:300]]
    for clause in re.split(r"[,.:;?!]\s+|[.?!]$|\s+and,\s+", text):
        clause = clause.strip(" ,.:;?!")
        if len(H.content_words(clause)) >= 2 and clause not in parts:
            parts.append(clause[:300])
    if attempt > 1:  # a second try searches the content words only
        parts = [" ".join(w for w in H.words(p) if w not in H.STOPWORDS) for p in parts]
    return list(dict.fromkeys(p for p in parts if p))[:5]


_LINK = re.compile(r"^→ (.+): (\S+)$", re.MULTILINE)
_RANGE = re.compile(r"\s*\([A-Z]–[A-Z]\)\s*$|\s*\([A-Z]\)\s*$")
#: Title words of lists that hold only part of a set (a ranking, a period, a cut).
_PARTIAL = frozenset({"most", "largest", "busiest", "densest", "before", "later", "formed",
                      "opened", "discovered", "disambiguation", "yearbook", "refer"})


def _base_title(title: str) -> str:
    return _RANGE.sub("", _PART.sub("", title)).strip()


def _list_like(hit: H.SearchHit) -> bool:
    snippet = hit.snippet
    return (snippet.count(" - ") >= 2 or "entries" in snippet[:200] or "list" in
            hit.title.lower() or "list" in snippet[:120].lower() or snippet.count(" | ") >= 2
            or " — " in hit.title)


def list_step(request: str, log: Log, attempt: int = 1) -> Step:
    """Next step of finding the entity list for ``request``; final text = the names found.

    Searches the request (and its clauses), reads the list page whose title matches the request
    best (rankings and period cuts score lower: they hold part of a set), then every other part
    of that list: the parts it links to, or those titled "(part j of n)". A request for "all"
    of something reads every list family whose title matches (the union of partial lists)."""
    queries = list_queries(request, attempt)
    unsearched = [q for q in queries if q not in log.searches]
    if unsearched:
        return Step("search", {"queries": unsearched[:5]})
    want = H.content_words(request)

    def rank(hit: H.SearchHit) -> tuple[int, bool, int]:
        title = H.content_words(_base_title(hit.title))
        partial = len(title & _PARTIAL)
        return (len(title & want) - len(title - want) - 2 * partial, " - " in hit.snippet,
                -hit.rank)

    pooled: dict[str, H.SearchHit] = {}
    for q in queries:
        for h in log.searches[q]:
            pooled.setdefault(h.url, h)
    lists = sorted((h for h in pooled.values() if _list_like(h)), key=rank, reverse=True)
    if request.lower().startswith("all "):  # an index of lists ("Lists of X by Y") covers "all"
        hubs = [h for h in lists if h.title.lower().startswith("lists of")]
        if hubs:
            hub = hubs[0]
            if hub.url not in log.pages:
                return Step("access", {"urls": [hub.url]})
            linked = {u: _base_title(t) for t, u in _LINK.findall(log.pages[hub.url].text)}
            if linked:
                return _read_family(linked, log, hub.title)
    families: list[str] = []
    for hit in lists[:MAX_LIST_PAGES_TRIED]:  # the first candidate that does hold names
        if hit.url not in log.pages:
            return Step("access", {"urls": [hit.url]})
        if H.bullet_names(log.pages[hit.url].text) or H.page_table(log.pages[hit.url].text)[1]:
            families.append(_base_title(hit.title))
            break
    if not families:
        return Step(None, text="No list page found.")
    if request.lower().startswith("all "):  # no one list holds "all": take every matching family
        head = rank(next(h for h in lists if _base_title(h.title) == families[0]))[0]
        families += [_base_title(h.title) for h in lists
                     if rank(h)[0] >= head - 1 and _base_title(h.title) not in families]
    if "every edition of" in request:  # one page per edition: the titles differ in the year
        masked = re.sub(r"\d+", "#", families[0])
        families += [_base_title(h.title) for h in lists
                     if re.sub(r"\d+", "#", _base_title(h.title)) == masked
                     and _base_title(h.title) not in families]
    urls = {h.url: _base_title(h.title) for h in pooled.values()
            if _base_title(h.title) in families}
    return _read_family(urls, log, families[0])


def _read_family(urls: dict[str, str], log: Log, title: str) -> Step:
    """Read every page of the lists in ``urls`` (URL -> list title): their linked parts, or the
    parts titled "(part j of n)"; then report the names."""
    urls = dict(urls)
    missing: list[str] = []
    for url, fam in list(urls.items()):
        page = log.pages.get(url)
        if page is None:
            continue
        for linked_title, link in _LINK.findall(page.text):
            if _base_title(linked_title) == fam:
                urls.setdefault(link, fam)
        part = _PART.search(page.title)
        if part:  # the easy tier: other parts found by their titles
            n_parts = int(part.group(2))
            for j in range(1, n_parts + 1):
                q = f"{fam} (part {j} of {n_parts})"
                hits = log.searches.get(q)
                if hits is None:
                    missing.append(q)
                else:
                    match = next((h for h in hits if h.title.lower() == q.lower()), None)
                    if match is not None:
                        urls.setdefault(match.url, fam)
    if missing:
        return Step("search", {"queries": list(dict.fromkeys(missing))[:5]})
    unread = [u for u in urls if u not in log.pages]
    if unread:
        return Step("access", {"urls": unread[:5]})
    return Step(None, text=list_report(title, [log.pages[u] for u in urls]))


def list_report(title: str, pages: Sequence[H.PageText]) -> str:
    """The names the pages list, one per line; a table's row also carries its other cells
    (``- name | column: value``) and, when the set spans editions, the edition in brackets."""
    names: dict[str, None] = {}
    for page in pages:
        for name in H.bullet_names(page.text):
            names.setdefault(name.split(" — ")[0].strip(), None)  # a ranking's value dropped
        header, rows = H.page_table(page.text)
        edition = m.group(0) if (m := re.search(r"\d{4}(?:[–-]\d{2,4})?", page.title)) and \
            len(pages) > 1 else ""
        for row in rows:
            if not row or not row[0]:
                continue
            cells = [f"{h}: {c}" for h, c in zip(header[1:], row[1:]) if c]
            item = row[0] + (f" [{edition}]" if edition else "")
            names.setdefault(" | ".join([item, *cells]), None)
    if not names:
        return f"The page {title!r} lists no names."
    return f"{len(names)} names listed on {title!r}:\n" + "\n".join(f"- {n}" for n in names)


def split_entity(entity: str) -> tuple[str, str]:
    """``"Washington County [Kansas; counties]"`` -> (name, context); the lead adds the context
    (the group the name was listed under, and what the set is a set of) so that a subagent can
    tell same-named entities apart."""
    m = re.match(r"^(.*?)\s*\[([^\]]+)\]$", entity)
    return (m.group(1), m.group(2)) if m else (entity, "")


def _contexts(ctx: str) -> list[str]:
    return [c.strip() for c in ctx.split(";") if c.strip()]


def _page_candidates(name: str, context: str, hits: Sequence[H.SearchHit]) -> list[H.SearchHit]:
    """Pages about ``name`` (in ``context``), best first; list and disambiguation pages left out.
    """
    low = name.lower()
    ctxs = [c.lower() for c in _contexts(context)]
    whole = re.compile(r"(?<![\w-])" + re.escape(low) + r"(?![\w-])")

    def rank(h: H.SearchHit) -> tuple[int, int, int]:
        raw = re.sub(r"^[Aa]bout\s+", "", h.title)
        title = raw.lower()
        rest = raw[len(low):]
        # "Iron (Fe)", "Texas: an overview", "Oslo, Norway", "X in brief" name the entity;
        # "Arkansas County" is another entity whose name starts with "Arkansas"
        names_it = title.startswith(low) and (
            not rest or rest[0] in "(,:—" or rest[:2] in (" (", " —") or
            re.match(r" [a-z]", rest) is not None)
        level = 3 if title == low else \
            2 if names_it or title.endswith(" of " + low) else 1 if whole.search(title) else 0
        text = title + " " + h.snippet.lower()
        in_ctx = sum(1 for c in ctxs if c in text)
        return (-level, -in_ctx, h.rank)

    pages = [h for h in hits if h.snippet.count(" - ") < 2 and "(disambiguation)" not in h.title
             and low in (h.title + " " + h.snippet).lower()]
    pages.sort(key=rank)
    if pages and rank(pages[0])[0] <= -2:  # pages titled by the name: only those
        pages = [h for h in pages if rank(h)[0] <= -2]
    return pages


def _query(name: str, context: str) -> str:
    return f"{name} {context}".strip()


def _queries(name: str, context: str) -> list[str]:
    """The entity's name with each of its contexts, and alone."""
    return list(dict.fromkeys([*(_query(name, c) for c in _contexts(context)), name]))


def facts_step(entities: Sequence[str], wants: Sequence[R.Want], log: Log, pages_per: int = 3,
               ) -> tuple[Step | None, dict[str, dict[str, str]]]:
    """Next tool call for the unfinished entities (None when all are done) and the values found
    so far per entity (raw, as the pages write them). A want "X of its Y" is read off the page of
    the entity that Y names (searched next to the row entity's context)."""
    found: dict[str, dict[str, str]] = {}
    searches: list[str] = []
    reads: list[str] = []
    for entity in entities:
        name, ctx = split_entity(entity)
        queries = _queries(name, ctx)
        if any(q not in log.searches for q in queries):
            searches.extend(q for q in queries if q not in log.searches)
            continue
        hits = list({h.url: h for q in queries for h in log.searches[q]}.values())
        chosen = _page_candidates(name, ctx, hits)[:pages_per]
        unread = [h.url for h in chosen if h.url not in log.pages]
        if unread:
            reads.extend(unread)
            continue
        pages = [log.pages[h.url] for h in chosen]
        values: dict[str, str] = {}
        for want in wants:
            hop = re.match(r"(.+) of its (.+)$", want.phrase)
            if hop is None:
                v = R.find_value(pages, want, name)
                if v:
                    values[want.phrase] = v
                continue
            via = R.find_value(pages, R.Want(hop.group(2), "text"), name)
            if not via:
                continue
            q = _query(via, _contexts(ctx)[0] if _contexts(ctx) else "")
            hop_hits = log.searches.get(q)
            if hop_hits is None:
                searches.append(q)
                continue
            target = _page_candidates(via, _contexts(ctx)[0] if _contexts(ctx) else "",
                                      hop_hits)[:1]
            if not target:
                continue
            if target[0].url not in log.pages:
                reads.append(target[0].url)
                continue
            v = R.find_value([log.pages[target[0].url]], R.Want(hop.group(1), want.kind), via)
            if v:
                values[want.phrase] = v
        found[entity] = values
    if searches:
        return Step("search", {"queries": list(dict.fromkeys(searches))[:5]}), found
    if reads:
        return Step("access", {"urls": list(dict.fromkeys(reads))[:5]}), found
    return None, found


def facts_report(entities: Sequence[str], attributes: Sequence[str],
                 found: Mapping[str, Mapping[str, str]]) -> str:
    lines = []
    for entity in entities:
        values = found.get(entity, {})
        cells = [f"{a}: {values.get(a, UNKNOWN).replace('|', '/')}" for a in attributes]
        lines.append(" | ".join([entity, *cells]))
    return "\n".join(lines)


def parse_facts_report(text: str) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(" | ")]
        if len(parts) < 2:
            continue
        values = {}
        for part in parts[1:]:
            attr, sep, value = part.partition(": ")
            if sep and value and value != UNKNOWN:
                values[attr.strip()] = value.strip()
        out[parts[0]] = values
    return out


def list_subtask(request: str, attempt: int) -> str:
    head = f'{LIST_MARK}, and report every name, one per line as "- name"'
    head += f" (attempt {attempt}; search with other words):" if attempt > 1 else ":"
    return f"{head}\n{request}"


def facts_subtask(entities: Sequence[str], wants: Sequence[R.Want]) -> str:
    """A facts subtask: entities (``name [context]``) and attributes (``phrase [kind]``)."""
    return (f'{FACTS_MARK} and report one line per entity as "entity | attribute: value | ...", '
            f'writing "{UNKNOWN}" for a value you cannot find.\nEntities:\n'
            + "".join(f"- {e}\n" for e in entities) + "Attributes:\n"
            + "".join(f"- {w.phrase}" + (f" [{w.kind}]" if w.kind != "text" else "") + "\n"
                      for w in wants)).rstrip()


def parse_facts_subtask(text: str) -> tuple[list[str], list[R.Want]] | None:
    m = re.search(r"^Entities:\n(.*?)^Attributes:\n(.*)$", text, re.MULTILINE | re.DOTALL)
    if not m:
        return None
    wants = []
    for line in H.bullet_names(m.group(2)):
        k = re.match(r"^(.*?)\s*\[(number|date|list)\]$", line)
        wants.append(R.Want(k.group(1), k.group(2)) if k else R.Want(line, "text"))
    return H.bullet_names(m.group(1)), wants
