"""Ranking engines for the local index: ``tantivy`` (the default) and ``bm25s`` (the alternative).

Both index the same text (a page's title, weighted double, and its body) and rank with BM25.
They differ in how: tantivy is a Rust inverted index (``en_stem`` tokenizer, block-max WAND top-k),
bm25s a precomputed sparse score matrix in NumPy (no stemming, English stop words removed).
``benchmarks/search_throughput.py`` measures both on the same world in one run; tantivy was
chosen on those numbers (see ``docs/worlds.md``).

An engine only maps queries to ``(ordinal, score)`` lists; pages, snippets and URLs live in
:mod:`wideseek_env.search.docstore` and :mod:`wideseek_env.search.local`.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal, Protocol

EngineName = Literal["tantivy", "bm25s"]
ENGINES: tuple[EngineName, ...] = ("tantivy", "bm25s")
_WORD = re.compile(r"\w+", re.UNICODE)
_TITLE_BOOST = 2.0


# Lucene's English stop set plus question words. Dropped from tantivy *queries* only (pages are
# indexed whole): they carry almost no BM25 weight but have the longest posting lists.
STOPWORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these",
    "they", "this", "to", "was", "will", "with", "what", "which", "who", "whom", "whose", "when",
    "where", "how", "does", "do", "did", "i", "me", "my", "please",
})


def query_words(query: str) -> list[str]:
    """Lower-cased word tokens of a query: everything else (tantivy syntax included) is dropped."""
    return _WORD.findall(query.lower())


def content_words(query: str) -> list[str]:
    """The query's words without stop words (all of them if every word is a stop word)."""
    words = query_words(query)
    kept = [w for w in words if w not in STOPWORDS]
    return kept or words


class Engine(Protocol):
    """Ranks pages (by ordinal) for a batch of queries."""

    name: EngineName

    def rank(self, queries: Sequence[str], k: int) -> list[list[tuple[int, float]]]: ...


class TantivyEngine:
    """BM25 over a tantivy index with fields ``title`` (boost 2), ``text`` and fast field ``ord``."""

    name: EngineName = "tantivy"

    def __init__(self, directory: str | Path) -> None:
        import tantivy

        self._tantivy = tantivy
        self.index = tantivy.Index.open(str(directory))
        self.searcher = self.index.searcher()

    @staticmethod
    def build(pages: Iterable[tuple[int, str, str]], directory: str | Path,
              heap_bytes: int = 256 * 1024 * 1024) -> None:
        """Index ``(ordinal, title, text)`` triples into a new index at ``directory``.

        One writer thread keeps the index deterministic and the memory bounded by ``heap_bytes``.
        """
        import tantivy

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        sb = tantivy.SchemaBuilder()
        sb.add_unsigned_field("ord", stored=False, indexed=False, fast=True)
        sb.add_text_field("title", stored=False, tokenizer_name="en_stem")
        sb.add_text_field("text", stored=False, tokenizer_name="en_stem")
        index = tantivy.Index(sb.build(), path=str(directory), reuse=False)
        writer = index.writer(heap_size=heap_bytes, num_threads=1)
        for ordinal, title, text in pages:
            doc = tantivy.Document()
            doc.add_unsigned("ord", ordinal)  # Document(ord=...) would infer i64 and panic
            doc.add_text("title", title)
            doc.add_text("text", text)
            writer.add_document(doc)
        writer.commit()
        writer.wait_merging_threads()

    def rank(self, queries: Sequence[str], k: int) -> list[list[tuple[int, float]]]:
        out: list[list[tuple[int, float]]] = []
        for q in queries:
            words = content_words(q)
            if not words or k <= 0:
                out.append([])
                continue
            query = self.index.parse_query(
                " ".join(words), ["title", "text"], field_boosts={"title": _TITLE_BOOST}
            )
            hits = self.searcher.search(query, limit=k, count=False).hits
            ords = self.searcher.fast_field_values("ord", [addr for _, addr in hits])
            out.append([(int(o), float(s)) for (s, _), o in zip(hits, ords)])
        return out


class Bm25sEngine:
    """BM25 (Lucene variant) with the ``bm25s`` package; the matrix is memory-mapped on load."""

    name: EngineName = "bm25s"

    def __init__(self, directory: str | Path) -> None:
        import bm25s

        self._retriever = bm25s.BM25.load(str(directory), mmap=True, show_progress=False)
        self._stopwords = set(json.loads((Path(directory) / "wideseek_stopwords.json").read_text()))
        self._lock = threading.Lock()  # bm25s keeps per-call state on the object

    @staticmethod
    def build(pages: Iterable[tuple[int, str, str]], directory: str | Path) -> None:
        """Index ``(ordinal, title, text)`` triples; ordinals must be ``0, 1, 2, ...`` in order."""
        import bm25s
        from bm25s.stopwords import STOPWORDS_EN

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        texts: list[str] = []
        for ordinal, title, text in pages:
            if ordinal != len(texts):
                raise ValueError(f"bm25s needs ordinals in order; got {ordinal} at {len(texts)}")
            texts.append(f"{title} {title} {text}")
        tokens = bm25s.tokenize(texts, stopwords="en", show_progress=False)
        del texts
        retriever = bm25s.BM25()
        retriever.index(tokens, show_progress=False)
        retriever.save(str(directory), show_progress=False)
        (directory / "wideseek_stopwords.json").write_text(json.dumps(sorted(STOPWORDS_EN)))

    def rank(self, queries: Sequence[str], k: int) -> list[list[tuple[int, float]]]:
        vocab = self._retriever.vocab_dict
        batch = [
            [w for w in query_words(q) if len(w) > 1 and w not in self._stopwords and w in vocab]
            for q in queries
        ]
        out: list[list[tuple[int, float]]] = [[] for _ in queries]
        todo = [i for i, words in enumerate(batch) if words]
        if not todo or k <= 0:
            return out
        kk = min(k, self._retriever.scores["num_docs"])
        with self._lock:
            docs, scores = self._retriever.retrieve(
                [batch[i] for i in todo], k=kk, show_progress=False, n_threads=0
            )
        for row, i in enumerate(todo):
            out[i] = [(int(d), float(s)) for d, s in zip(docs[row], scores[row]) if s > 0]
        return out


def open_engine(name: EngineName, directory: str | Path) -> Engine:
    """Open the on-disk index of engine ``name`` at ``directory``."""
    if name == "tantivy":
        return TantivyEngine(directory)
    if name == "bm25s":
        return Bm25sEngine(directory)
    raise ValueError(f"unknown search engine {name!r}; choose one of {ENGINES}")


def build_engine(name: EngineName, pages: Iterable[tuple[int, str, str]],
                 directory: str | Path) -> None:
    """Build engine ``name``'s index over ``(ordinal, title, text)`` triples at ``directory``."""
    if name == "tantivy":
        TantivyEngine.build(pages, directory)
    elif name == "bm25s":
        Bm25sEngine.build(pages, directory)
    else:
        raise ValueError(f"unknown search engine {name!r}; choose one of {ENGINES}")
