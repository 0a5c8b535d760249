"""A tiny self-contained world: an in-memory search backend and a few tasks over it.

For tests, examples and the env throughput benchmark: it needs no index build, answers in
microseconds, and its gold cells are all on its pages. :class:`InMemoryBackend` is also a
reference implementation of the :class:`~wideseek_env.search.base.SearchBackend` protocol (ranked
by the number of query words on a page, ties broken by corpus order, so results are deterministic).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from wideseek_env.search.base import Hit, Page, SearchError
from wideseek_env.tasks import ColumnEval, GoldTable, Task

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Document:
    """One page of an in-memory corpus."""

    url: str
    title: str
    text: str


class InMemoryBackend:
    """Keyword search and page access over a list of documents held in memory."""

    def __init__(self, documents: Iterable[Document], snippet_chars: int = 200) -> None:
        self.documents = tuple(documents)
        self.snippet_chars = snippet_chars
        self._by_url = {d.url: d for d in self.documents}
        self._words = [frozenset(_WORD.findall((d.title + " " + d.text).lower()))
                       for d in self.documents]

    def search(self, queries: Sequence[str], k: int = 3) -> list[list[Hit]]:
        out = []
        for query in queries:
            terms = set(_WORD.findall(query.lower()))
            scored = [(len(terms & words), -i) for i, words in enumerate(self._words)]
            ranked = sorted((s for s in scored if s[0] > 0), reverse=True)[:k]
            out.append([self._hit(-neg_i, float(score)) for score, neg_i in ranked])
        return out

    def _hit(self, i: int, score: float) -> Hit:
        d = self.documents[i]
        return Hit(id=str(i), url=d.url, title=d.title, snippet=d.text[: self.snippet_chars],
                   score=score)

    def access(self, url: str, *, offset: int = 0, max_chars: int = 25_000) -> Page:
        doc = self._by_url.get(url)
        if doc is None:
            raise SearchError(f"page not found: {url}")
        return Page(url=url, title=doc.title, text=doc.text[offset : offset + max_chars],
                    offset=offset, total_chars=len(doc.text))


# name, country, length in km, mouth
RIVERS = (
    ("Amberflow", "Veloria", "412", "Gulf of Tessar"),
    ("Brightwater", "Veloria", "288", "Lake Orun"),
    ("Coldrun", "Veloria", "157", "Amberflow"),
    ("Duskmere", "Kestland", "630", "Northern Sea"),
    ("Emberlyn", "Kestland", "94", "Duskmere"),
)


def toy_documents() -> list[Document]:
    """One page per river, one list page per country."""
    docs = [
        Document(
            url=f"https://toy.wiki/river/{name.lower()}",
            title=f"{name} (river)",
            text=(f"The {name} is a river in {country}. It is {km} km long and flows into the "
                  f"{mouth}. " + "It is known for its clear water and old stone bridges. " * 3),
        )
        for name, country, km, mouth in RIVERS
    ]
    for country in sorted({r[1] for r in RIVERS}):
        names = ", ".join(r[0] for r in RIVERS if r[1] == country)
        docs.append(Document(url=f"https://toy.wiki/list/rivers-of-{country.lower()}",
                             title=f"List of rivers of {country}",
                             text=f"Rivers of {country}: {names}."))
    return docs


def toy_backend() -> InMemoryBackend:
    """The in-memory backend over :func:`toy_documents`."""
    return InMemoryBackend(toy_documents())


def toy_tasks() -> list[Task]:
    """Two English tasks and one Chinese task over the toy corpus."""
    pipeline = {
        "river": ColumnEval(),
        "lengthkm": ColumnEval(preprocess=("extract_number",), metric=("number_near",),
                               criterion=0.01),
        "mouth": ColumnEval(),
    }
    tasks = []
    for country in ("Veloria", "Kestland"):
        rows = tuple((n, km, m) for n, c, km, m in RIVERS if c == country)
        tasks.append(Task(
            instance_id=f"toy-rivers-{country.lower()}",
            query=(f"List every river of {country} with its length and where it flows into. "
                   "Answer with a markdown table with the columns: River, Length km, Mouth."),
            language="en",
            unique_columns=("river",),
            required=("river", "lengthkm", "mouth"),
            eval_pipeline=pipeline,
            gold=GoldTable(columns=("River", "Length km", "Mouth"), rows=rows),
            meta={"world": "toy"},
        ))
    rows = tuple((n, km, m) for n, c, km, m in RIVERS if c == "Kestland")
    tasks.append(Task(
        instance_id="toy-rivers-kestland-zh",
        query="列出 Kestland 的所有河流及其长度和入海口。请用 markdown 表格回答，列为：River, Length km, Mouth。",
        language="zh",
        unique_columns=("river",),
        required=("river", "lengthkm", "mouth"),
        eval_pipeline=pipeline,
        gold=GoldTable(columns=("River", "Length km", "Mouth"), rows=rows),
        meta={"world": "toy"},
    ))
    return tasks
