"""The agents' tools: JSON schemas, argument checks, and batched execution against a backend.

Three tools exist: ``delegate`` (the lead hands subtasks to fresh subagents; the env itself runs
it), ``search`` and ``access`` (run against a :class:`~wideseek_env.search.base.SearchBackend`).
Which role gets which tool is the env's configuration.

Execution is batched per env step: every ``search`` of every agent in the step goes to the backend
in **one** ``search(queries, k)`` call (local indexes answer a batch faster than its parts), and
the ``access`` calls run either inline (local backends) or on a shared thread pool (remote
backends: the HTTP client by default). Results are put back by position, so concurrency never
changes what an agent sees or in which order.

A :class:`~wideseek_env.search.base.SearchError` is the agent's problem (unknown URL, server
down) and becomes text in its tool message; any other exception is a bug and propagates.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from wideseek_env.search.base import Page, SearchBackend, SearchError

TOOL_NAMES = ("delegate", "search", "access")


@dataclass(frozen=True)
class ToolLimits:
    """Per-call limits of the tools (the paper's reference values are the defaults)."""

    max_subtasks: int = 10
    max_queries: int = 5
    max_urls: int = 5
    top_k: int = 3
    max_page_chars: int = 25_000


def tool_schema(name: str, limits: ToolLimits) -> dict[str, Any]:
    """The OpenAI ``tools`` entry of one tool (``{"type": "function", "function": {...}}``)."""
    if name == "delegate":
        fn = {
            "name": "delegate",
            "description": (
                "Start subagents in parallel, one per subtask. Each subagent has its own empty "
                "context, can search the web and read pages, and replies with a report. You "
                "receive all reports together once every subagent has finished. Write each "
                "subtask so that it can be done without seeing the original question."
            ),
            "parameters": {
                "type": "object",
                "properties": {
                    "subtasks": {
                        "type": "array",
                        "items": {"type": "string"},
                        "minItems": 1,
                        "maxItems": limits.max_subtasks,
                        "description": f"Self-contained subtask descriptions (at most {limits.max_subtasks}).",
                    }
                },
                "required": ["subtasks"],
                "additionalProperties": False,
            },
        }
    elif name == "search":
        fn = {
            "name": "search",
            "description": (
                f"Search the web. Returns the top {limits.top_k} results (title, URL, snippet) "
                "for each query."
            ),
            "parameters": {
                "type": "object",
                "properties": {
                    "queries": {
                        "type": "array",
                        "items": {"type": "string"},
                        "minItems": 1,
                        "maxItems": limits.max_queries,
                        "description": f"Search queries (at most {limits.max_queries}).",
                    }
                },
                "required": ["queries"],
                "additionalProperties": False,
            },
        }
    elif name == "access":
        fn = {
            "name": "access",
            "description": (
                "Read web pages. Returns the text of each page, cut to the first "
                f"{limits.max_page_chars} characters."
            ),
            "parameters": {
                "type": "object",
                "properties": {
                    "urls": {
                        "type": "array",
                        "items": {"type": "string"},
                        "minItems": 1,
                        "maxItems": limits.max_urls,
                        "description": f"URLs to read (at most {limits.max_urls}).",
                    }
                },
                "required": ["urls"],
                "additionalProperties": False,
            },
        }
    else:
        raise ValueError(f"unknown tool {name!r}; known tools: {', '.join(TOOL_NAMES)}")
    return {"type": "function", "function": fn}


_ARG_OF = {"delegate": "subtasks", "search": "queries", "access": "urls"}


def check_arguments(
    name: str, arguments: Mapping[str, Any], limit: int
) -> tuple[tuple[str, ...], str | None]:
    """Check a call's arguments: ``(items, None)`` if valid, else ``((), reason for the agent)``.

    Every tool takes one argument, a list of 1..``limit`` non-empty strings.
    """
    key = _ARG_OF[name]
    extra = [k for k in arguments if k != key]
    if extra:
        return (), f'{name}: unexpected argument(s) {", ".join(map(repr, extra))}; expected only "{key}".'
    items = arguments.get(key)
    if items is None:
        return (), f'{name}: missing argument "{key}" (a list of strings).'
    if not isinstance(items, list):
        return (), f'{name}: "{key}" must be a list of strings, got {type(items).__name__}.'
    if not items:
        return (), f'{name}: "{key}" is empty; give at least one.'
    if len(items) > limit:
        return (), f'{name}: too many {key} ({len(items)}); at most {limit} per call.'
    for i, item in enumerate(items):
        if not isinstance(item, str) or not item.strip():
            return (), f'{name}: {key}[{i}] must be a non-empty string.'
    return tuple(s.strip() for s in items), None


def format_search(queries: Sequence[str], results: Sequence[Sequence[Any]]) -> str:
    """Text of a ``search`` result: one block per query, hits numbered from 1."""
    blocks = []
    for query, hits in zip(queries, results):
        if not hits:
            blocks.append(f'No results for "{query}".')
            continue
        lines = [f'Results for "{query}":']
        for rank, hit in enumerate(hits, 1):
            lines.append(f"[{rank}] {hit.title}\nURL: {hit.url}\n{hit.snippet}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def format_page(url: str, page: Page | str) -> str:
    """Text of one page read by ``access`` (or the error text when it could not be read)."""
    if isinstance(page, str):
        return f"URL: {url}\nError: {page}"
    text = f"Page: {page.title}\nURL: {page.url}\n\n{page.text}"
    if page.next_offset is not None:
        shown = page.offset + len(page.text)
        text += f"\n\n[Page cut: showing characters {page.offset}-{shown} of {page.total_chars}.]"
    return text


#: Page-reading threads used for a remote backend when ``tool_workers`` is left to ``None``.
REMOTE_WORKERS = 16
_POOLS: dict[int, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def shared_pool(workers: int) -> ThreadPoolExecutor:
    """One process-wide pool per size, so 100 envs in a runner do not start 1,600 threads."""
    with _POOLS_LOCK:
        if workers not in _POOLS:
            _POOLS[workers] = ThreadPoolExecutor(workers, thread_name_prefix="wideseek-access")
        return _POOLS[workers]


def default_workers(backend: SearchBackend) -> int:
    """Threads for reading pages when not configured: a backend's own ``remote`` attribute if it
    has one, else :data:`REMOTE_WORKERS` for the HTTP client and 0 (inline) for anything else."""
    remote = getattr(backend, "remote", None)
    if remote is None:
        # Not imported means it cannot be an HttpSearchBackend (and importing it would load requests).
        http = sys.modules.get("wideseek_env.search.http")
        remote = http is not None and isinstance(backend, http.HttpSearchBackend)
    return REMOTE_WORKERS if remote else 0


class ToolRunner:
    """Runs one step's worth of ``search`` and ``access`` calls against a backend.

    ``workers`` > 1 reads pages on a (process-wide, shared) thread pool of that size; otherwise
    pages are read inline, in order. ``None`` picks with :func:`default_workers`. Call items are
    the records of :mod:`~wideseek_env.env.profiles` (``SearchItem``, ``AccessItem``) and
    ``profile`` writes the result texts; a search item's own ``count`` replaces ``top_k``.
    With a ``reader`` (:class:`~wideseek_env.search.reader.PageReader`), a page read for an item
    with ``info_to_extract`` comes back as the reader's summary of it (summaries run on the
    shared pool); a reader that fails is a tool error of that page.
    """

    def __init__(self, backend: SearchBackend, limits: ToolLimits, workers: int | None = None,
                 profile: Any = None, reader: Any = None) -> None:
        from wideseek_env.env.profiles import get_profile

        self.backend = backend
        self.limits = limits
        self.workers = default_workers(backend) if workers is None else workers
        self.profile = profile if profile is not None else get_profile("wideseek")
        self.reader = reader

    def run(self, calls: Sequence[tuple[str, tuple[Any, ...]]]) -> list[tuple[str, int]]:
        """Execute ``(tool, items)`` calls; return ``(text, n_errors)`` per call, same order."""
        out: list[tuple[str, int] | None] = [None] * len(calls)
        searches = [i for i, (name, _) in enumerate(calls) if name == "search"]
        if searches:
            for i, result in zip(searches, self._search([calls[i][1] for i in searches])):
                out[i] = result
        reads = [i for i, (name, _) in enumerate(calls) if name == "access"]
        if reads:
            pairs = [(i, item) for i in reads for item in calls[i][1]]
            pages = self._access([item.url for _, item in pairs])
            summaries = self._summaries([item for _, item in pairs], pages)
            per_call: dict[int, list[str]] = {i: [] for i in reads}
            errors = dict.fromkeys(reads, 0)
            for (i, item), page, summary in zip(pairs, pages, summaries):
                if isinstance(summary, _Failed):  # the reader failed: report it as the page's error
                    page, summary = summary.reason, None
                per_call[i].append(self.profile.access_text(item, page, summary))
                errors[i] += isinstance(page, str)
            for i in reads:
                out[i] = (self.profile.access_join(per_call[i]), errors[i])
        return [r if r is not None else ("", 0) for r in out]

    def _search(self, batches: list[tuple[Any, ...]]) -> list[tuple[str, int]]:
        flat = [item for batch in batches for item in batch]
        by_k: dict[int, list[int]] = {}
        for n, item in enumerate(flat):
            by_k.setdefault(item.count or self.limits.top_k, []).append(n)
        results: list[Any] = [None] * len(flat)
        try:
            for k, where in by_k.items():  # one backend call per result count (usually one)
                got = self.backend.search([flat[n].query for n in where], k)
                if len(got) != len(where):
                    raise RuntimeError(
                        f"{type(self.backend).__name__}.search returned {len(got)} result lists "
                        f"for {len(where)} queries"
                    )
                for n, hits in zip(where, got):
                    results[n] = hits
        except SearchError:
            # Isolate the failure: one agent's bad query must not cost the others their results.
            return [self._search_one(batch) for batch in batches]
        out, pos = [], 0
        for batch in batches:
            out.append((self.profile.search_text(batch, results[pos : pos + len(batch)]), 0))
            pos += len(batch)
        return out

    def _search_one(self, batch: tuple[Any, ...]) -> tuple[str, int]:
        try:
            results = [self.backend.search([item.query], item.count or self.limits.top_k)[0]
                       for item in batch]
            return self.profile.search_text(batch, results), 0
        except SearchError as err:
            return self.profile.search_error(str(err)), 1

    def _access(self, urls: list[str]) -> list[Page | str]:
        if self.workers > 1 and len(urls) > 1:
            return list(shared_pool(self.workers).map(self._read, urls))
        return [self._read(url) for url in urls]

    def _read(self, url: str) -> Page | str:
        try:
            return self.backend.access(url, offset=0, max_chars=self.limits.max_page_chars)
        except SearchError as err:
            return str(err) or type(err).__name__

    def _summaries(self, items: list[Any], pages: list[Page | str]) -> list[Any]:
        """The reader's summary per page (None: none asked for; ``_Failed``: the reader failed)."""
        wanted = [n for n, (item, page) in enumerate(zip(items, pages))
                  if self.reader is not None and item.info_to_extract
                  and isinstance(page, Page) and page.text.strip()]
        out: list[Any] = [None] * len(items)
        if not wanted:
            return out

        def one(n: int) -> Any:
            from wideseek_env.search.reader import ReaderError

            page = pages[n]
            assert isinstance(page, Page)
            try:
                return self.reader.summarize(items[n].info_to_extract, page.text)
            except ReaderError as err:
                return _Failed(f"the page could not be summarised: {err}")

        results = list(shared_pool(REMOTE_WORKERS).map(one, wanted)) if len(wanted) > 1 else \
            [one(wanted[0])]
        for n, result in zip(wanted, results):
            out[n] = result
        return out


@dataclass(frozen=True)
class _Failed:
    """A summary the reader could not write (its reason becomes the page's error text)."""

    reason: str
