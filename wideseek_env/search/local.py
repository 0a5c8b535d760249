"""The local on-disk search backend: a world's page store plus one ranking engine.

``search`` ranks with the engine, then builds a query-dependent snippet per hit: the lines of the
page that share the most query words (title lines and the page's first line break ties), cut to
``snippet_chars``. ``access`` returns a slice of the page text so an agent can read a long page in
parts. Both are thread-safe (the store is memory-mapped, tantivy's searcher is shared-immutable,
bm25s calls are serialised by the engine).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from wideseek_env.search.base import Hit, Page, SearchError
from wideseek_env.search.docstore import DocStore
from wideseek_env.search.engines import Engine, EngineName, content_words, open_engine

MAX_K = 100


def _parts(text: str, max_chars: int) -> list[str]:
    """Lines of ``text``; a line longer than ``max_chars`` is cut at sentence ends (". ")."""
    out: list[str] = []
    for line in text.split("\n"):
        line = line.strip()
        if not line:
            continue
        if len(line) <= max_chars:
            out.append(line)
            continue
        pieces = line.split(". ")
        out.extend(p + "." for p in pieces[:-1])
        out.append(pieces[-1])
    return out


def make_snippet(text: str, query: str, max_chars: int = 240) -> str:
    """The passage of ``text`` most about ``query``: the lines (or sentences) containing most
    of the query's content words, kept whole and in page order, within ``max_chars``.

    Plain substring tests instead of tokenising every sentence: this runs for every hit of every
    query, and it is what bounds the env's search throughput.
    """
    words = [w for w in set(content_words(query)) if len(w) > 1]
    parts = _parts(text, max_chars)
    if not parts:
        return ""
    if words:
        counts = []
        for i, part in enumerate(parts):
            low = part.lower()
            counts.append((-sum(1 for w in words if w in low), i))
        scored = [i for _, i in sorted(counts)]
    else:
        scored = list(range(len(parts)))
    chosen = [scored[0]]  # the best part always; others only where they fit whole
    used = len(parts[scored[0]])
    for i in scored[1:]:
        if used + 1 + len(parts[i]) <= max_chars:
            chosen.append(i)
            used += 1 + len(parts[i])
        if used >= max_chars - 20:
            break
    snippet = " ".join(parts[i] for i in sorted(chosen))
    return snippet if len(snippet) <= max_chars else snippet[: max_chars - 1].rstrip() + "…"


class LocalSearchBackend:
    """A :class:`~wideseek_env.search.base.SearchBackend` over a world's ``corpus`` and ``index``."""

    def __init__(self, store: DocStore, engine: Engine, *, snippet_chars: int = 240) -> None:
        self.store = store
        self.engine = engine
        self.snippet_chars = snippet_chars

    @classmethod
    def open(cls, world_dir: str | Path, engine: EngineName = "tantivy",
             *, snippet_chars: int = 240) -> LocalSearchBackend:
        """Open the backend of the world at ``world_dir`` (``corpus/`` and ``index/<engine>/``)."""
        world_dir = Path(world_dir)
        index_dir = world_dir / "index" / engine
        if not index_dir.is_dir():
            raise FileNotFoundError(
                f"world {world_dir} has no {engine} index at {index_dir}; rebuild the world "
                f"or build that engine's index (benchmarks/search_throughput.py does)"
            )
        return cls(DocStore(world_dir / "corpus"), open_engine(engine, index_dir),
                   snippet_chars=snippet_chars)

    def rank(self, queries: Sequence[str], k: int = 3) -> list[list[tuple[int, float]]]:
        """Ordinals and scores only (no page reads): what the throughput benchmark times."""
        _check_batch(queries, k)
        return self.engine.rank(list(queries), k)

    def search(self, queries: Sequence[str], k: int = 3) -> list[list[Hit]]:
        ranked = self.rank(queries, k)
        out: list[list[Hit]] = []
        for query, hits in zip(queries, ranked):
            row = []
            for ordinal, score in hits:
                page = self.store.get(ordinal)
                row.append(Hit(id=page.id, url=page.url, title=page.title,
                               snippet=make_snippet(page.text, query, self.snippet_chars),
                               score=round(score, 4)))
            out.append(row)
        return out

    def access(self, url: str, *, offset: int = 0, max_chars: int = 25_000) -> Page:
        if offset < 0 or max_chars <= 0:
            raise SearchError(f"access: offset must be >= 0 and max_chars > 0 (got {offset}, "
                              f"{max_chars})")
        page = self.store.by_url(url.strip())
        if page is None:
            raise SearchError(f"access: no page at {url!r}")
        text = f"{page.title}\n\n{page.text}"
        return Page(url=page.url, title=page.title, text=text[offset: offset + max_chars],
                    offset=offset, total_chars=len(text))

    def close(self) -> None:
        self.store.close()


def _check_batch(queries: Sequence[str], k: int) -> None:
    if isinstance(queries, str):
        raise TypeError("search() takes a sequence of queries, not one string")
    if not 0 < k <= MAX_K:
        raise SearchError(f"search: k must be in [1, {MAX_K}] (got {k})")
