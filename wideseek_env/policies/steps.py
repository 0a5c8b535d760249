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
    words (the clause that names the set usually matches the list page's title best)."""
    text = re.sub(r"\s+", " ", request).strip()
    parts = [text[:300]]
    for clause in re.split(r"[,.:;?!]\s+|[.?!]$|\s+and,\s+", text):
        clause = clause.strip(" ,.:;?!")
        if len(H.content_words(clause)) >= 2 and clause not in parts:
            parts.append(clause[:300])
    if attempt > 1:  # a second try searches the content words only
        parts = [" ".join(w for w in H.words(p) if w not in H.STOPWORDS) for p in parts]
    return list(dict.fromkeys(p for p in parts if p))[:5]


def list_step(request: str, log: Log, attempt: int = 1) -> Step:
    """Next step of finding the entity list for ``request``; final text = the names found."""
    queries = list_queries(request, attempt)
    if any(q not in log.searches for q in queries):
        return Step("search", {"queries": queries})
    want = H.content_words(request)

    def rank(hit: H.SearchHit) -> tuple[bool, int, int]:
        # A snippet that already shows bullet items beats a title that only sounds right
        # (an article "International prize list of ..." is not a list of names).
        title = H.content_words(_PART.sub("", hit.title))
        return (" - " in hit.snippet, len(title & want) - len(title - want), -hit.rank)

    pooled: dict[str, H.SearchHit] = {}
    for q in queries:
        for h in log.searches[q]:
            pooled.setdefault(h.url, h)
    lists = sorted((h for h in pooled.values()
                    if h.snippet.count(" - ") >= 2 or "list" in h.title.lower()
                    or "list" in h.snippet[:120].lower()), key=rank, reverse=True)
    best = None
    for hit in lists[:MAX_LIST_PAGES_TRIED]:  # the first candidate that does hold names
        if hit.url not in log.pages:
            return Step("access", {"urls": [hit.url]})
        if H.bullet_names(log.pages[hit.url].text):
            best = hit
            break
    if best is None:
        return Step(None, text="No list page found.")
    base = _PART.sub("", best.title)
    part = _PART.search(best.title)
    n_parts = int(part.group(2)) if part else 1
    # The other parts of a long list: find each by its title, then read them.
    part_urls: dict[int, str] = {int(part.group(1)) if part else 1: best.url}
    missing = []
    for j in range(1, n_parts + 1):
        if j in part_urls:
            continue
        q = f"{base} (part {j} of {n_parts})"
        hits = log.searches.get(q)
        if hits is None:
            missing.append(q)
            continue
        match = next((h for h in hits if h.title.lower() == q.lower()), None)
        if match is not None:
            part_urls[j] = match.url
    if missing:
        return Step("search", {"queries": missing[:5]})
    unread = [u for _, u in sorted(part_urls.items()) if u not in log.pages]
    if unread:
        return Step("access", {"urls": unread[:5]})
    return Step(None, text=list_report(base, [log.pages[u] for _, u in sorted(part_urls.items())]))


def list_report(title: str, pages: Sequence[H.PageText]) -> str:
    names: dict[str, None] = {}
    for page in pages:
        for name in H.bullet_names(page.text):
            names.setdefault(name, None)
    if not names:
        return f"The page {title!r} lists no names."
    return f"{len(names)} names listed on {title!r}:\n" + "\n".join(f"- {n}" for n in names)


def _page_candidates(entity: str, hits: Sequence[H.SearchHit]) -> list[H.SearchHit]:
    """Pages likely to be about ``entity``, best first (list pages left out)."""
    low = entity.lower()

    def rank(h: H.SearchHit) -> tuple[int, int]:
        title = h.title.lower()
        level = 3 if title == low else 2 if title.startswith(low) or low in title else \
            1 if low in h.snippet.lower() else 0
        return (-level, h.rank)

    pages = [h for h in hits if h.snippet.count(" - ") < 2]
    return sorted(pages, key=rank)


def facts_step(entities: Sequence[str], attributes: Sequence[str], log: Log,
               ) -> tuple[Step | None, dict[str, dict[str, str]]]:
    """Next tool call for the first unfinished entity (None when all are done) and the values
    found so far per entity."""
    found: dict[str, dict[str, str]] = {}
    for entity in entities:
        hits = log.searches.get(entity)
        if hits is None:
            return Step("search", {"queries": [entity]}), found
        values: dict[str, str] = {}
        candidates = _page_candidates(entity, hits)
        read = [h for h in candidates if h.url in log.pages]
        for h in read:
            page = log.pages[h.url]
            if page.error:
                continue
            for attr in attributes:
                if attr not in values:
                    value = H.extract_value(page.text, attr, entity)
                    if value:
                        values[attr] = value
        found[entity] = values
        unread = [h for h in candidates if h.url not in log.pages]
        if unread and (not read or (len(read) < 2 and len(values) * 2 < len(attributes))):
            return Step("access", {"urls": [unread[0].url]}), found
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


def facts_subtask(entities: Sequence[str], attributes: Sequence[str]) -> str:
    return (f'{FACTS_MARK} and report one line per entity as "entity | attribute: value | ...", '
            f'writing "{UNKNOWN}" for a value you cannot find.\nEntities:\n'
            + "".join(f"- {e}\n" for e in entities) + "Attributes:\n"
            + "".join(f"- {a}\n" for a in attributes)).rstrip()


def parse_facts_subtask(text: str) -> tuple[list[str], list[str]] | None:
    m = re.search(r"^Entities:\n(.*?)^Attributes:\n(.*)$", text, re.MULTILINE | re.DOTALL)
    if not m:
        return None
    return H.bullet_names(m.group(1)), H.bullet_names(m.group(2))
