"""The seam between the env and whatever it searches: the :class:`SearchBackend` protocol.

Implementations: the on-disk local index of a world (:mod:`wideseek_env.search.local`), the
HTTP client of a retrieval server (:mod:`wideseek_env.search.http`). Any object with these two
methods works; the env never needs more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


class SearchError(RuntimeError):
    """A search or access that failed for a reason the *agent* should be told about
    (server down, timeout, unknown URL). The env turns it into a tool-error observation."""


class DamagedWorldError(ValueError):
    """A world's files are damaged (missing, truncated or changed since the build), locally or on
    a retrieval server. Not the agent's problem: it ends the run with a one-line error, because
    every score from a damaged world would be wrong."""


@dataclass(frozen=True)
class Hit:
    """One ranked search result."""

    id: str
    url: str
    title: str
    snippet: str
    score: float


@dataclass(frozen=True)
class Page:
    """The text of one page as returned by :meth:`SearchBackend.access`.

    ``text`` is the slice ``[offset, offset + max_chars)`` of the full page; ``total_chars`` is the
    full length, so a caller can read further by asking again with ``offset=next_offset``.
    """

    url: str
    title: str
    text: str
    offset: int
    total_chars: int

    @property
    def next_offset(self) -> int | None:
        end = self.offset + len(self.text)
        return end if end < self.total_chars else None


@runtime_checkable
class SearchBackend(Protocol):
    """Ranked search and page access over a corpus.

    ``search`` answers a batch of queries at once (one ranked list per query, best first).
    ``access`` returns one page; it raises :class:`SearchError` for an unknown URL or a transport
    failure. Both must be safe to call from several threads at once.
    """

    def search(self, queries: Sequence[str], k: int = 3) -> list[list[Hit]]: ...

    def access(self, url: str, *, offset: int = 0, max_chars: int = 25_000) -> Page: ...
