"""The figures of a world card: how WideSearch-like its tasks are, and which shortcuts its pages
leave open. Computed on a built world folder (any tier) and, where a figure is about tasks alone,
on the 200 WideSearch tasks too, so the card shows them side by side.

Task figures (:func:`task_figures`): rows per task (median, share with 100 or more), required
columns, share of tasks keyed on several columns, the metric mix, distinct five-word openings per
100 tasks and in all (English tasks).

Shortcut figures (:func:`shortcut_figures`, need the corpus and its tantivy index), over non-key
gold cells unless said otherwise:

- ``line_with_column_words``: the gold value and every word of the column's name on one page line
  shorter than 300 characters (pages of the row's entity and the cell's provenance pages);
- ``top1_snippet``: the gold value in the first hit's snippet for the query "<column> of <key>";
- ``verbatim``: the gold value written on some page of the corpus (word-bounded, case and white
  space aside; ``normalisation_needed`` is its complement);
- ``page_names_every_key`` / ``page_names_exactly_the_keys`` (per task): one page lists every
  gold row as an item of a list (every non-year key cell of the row in the item, or in the
  page's title and introduction), and such a page lists nothing else;
- ``key_is_a_page_title`` / ``key_in_a_url`` (per gold row): the first key cell is exactly some
  page's title / the slug of the key is some page URL's last segment;
- ``multi_hop_tasks``: tasks with a column whose value is on another entity's page.

Sampled figures name their sample size; every sample is seeded.
"""

from __future__ import annotations

import random
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wideseek_env.search.docstore import DocStore
from wideseek_env.tasks import Task
from wideseek_env.worlds.schema import slugify

LINE_CHARS = 300
_STOP = frozenset({"a", "an", "and", "as", "at", "by", "for", "in", "of", "on", "or", "the",
                   "to", "with", "its", "per"})
_UNIT_PAREN = re.compile(r"\(([^)]*)\)")


def norm_text(text: str) -> str:
    """Lower-cased, whitespace runs as one space: the form `bounded` patterns search."""
    return " ".join(text.split()).lower()


def bounded(needle: str) -> re.Pattern[str]:
    """``needle`` as a whole token: not inside a word, and a number not inside a longer number
    (``2440`` is not in ``2,440.3`` nor in ``2440.3``)."""
    return re.compile(r"(?<![\w.,])" + re.escape(needle) + r"(?![\w]|[.,]\d)")


def column_words(header: str) -> list[str]:
    """The words of a column name a query uses for it: parenthesised units dropped, years and
    other words kept, stop words dropped (``Land Area (km²)`` -> ``land``, ``area``)."""
    def keep(m: re.Match[str]) -> str:
        inner = m.group(1)
        return f" {inner} " if re.search(r"\d", inner) else " "
    text = _UNIT_PAREN.sub(keep, header)
    return [w for w in re.findall(r"\w+", text.lower()) if w not in _STOP]


def _key_columns(task: Task) -> list[int]:
    return [task.required.index(u) for u in task.unique_columns]


def entity_keys(task: Task) -> list[tuple[str, ...]]:
    """Per gold row, the key cells that name an entity (a ``Year`` key column left out)."""
    idx = _key_columns(task)
    keep = [j for j in idx if task.gold.columns[j].strip().lower() != "year"] or idx
    return list(dict.fromkeys(tuple(row[j] for j in keep) for row in task.gold.rows))


# ------------------------------------------------------------------------------ task figures


def task_figures(tasks: Sequence[Task], *, seed: int = 0) -> dict[str, Any]:
    """Shape, metric mix and query figures of a task set."""
    if not tasks:
        return {"tasks": 0}
    rows = [len(t.gold.rows) for t in tasks]
    metrics: Counter[str] = Counter()
    for t in tasks:
        for spec in t.eval_pipeline.values():
            metrics["+".join(spec.metric)] += 1
        metrics["key (no pipeline entry)"] += sum(1 for c in t.required if c not in t.eval_pipeline)
    total = sum(metrics.values())
    english = [t for t in tasks if t.language == "en"]
    openings = _openings_per_100(english, seed)
    return {
        "tasks": len(tasks),
        "rows_median": statistics.median(rows), "rows_mean": round(statistics.fmean(rows), 1),
        "rows_share_ge_100": round(sum(r >= 100 for r in rows) / len(rows), 4),
        "required_columns_mean": round(statistics.fmean(len(t.required) for t in tasks), 2),
        "multi_column_key_share": round(sum(len(t.unique_columns) > 1 for t in tasks)
                                        / len(tasks), 4),
        "metric_mix": {m: round(n / total, 4) for m, n in metrics.most_common()},
        "openings_5_words_per_100": openings,
        "distinct_openings_5_words": len({" ".join(t.query.split()[:5]).lower()
                                          for t in english}),
        "english_tasks": len(english),
    }


def _openings_per_100(tasks: Sequence[Task], seed: int) -> float | None:
    if not tasks:
        return None
    openings = [" ".join(t.query.split()[:5]).lower() for t in tasks]
    if len(openings) <= 100:
        return float(len(set(openings))) * (100 / len(openings)) if len(openings) < 100 \
            else float(len(set(openings)))
    rng = random.Random(f"{seed}:openings")
    samples = [len(set(rng.sample(openings, 100))) for _ in range(20)]
    return round(statistics.fmean(samples), 1)


def widesearch_figures(shared: Path, *, seed: int = 0) -> dict[str, Any] | None:
    """:func:`task_figures` of the 200 WideSearch tasks (``None`` when the data is not there)."""
    from wideseek_env.tasks import load_widesearch

    jsonl = shared / "widesearch" / "widesearch.jsonl"
    gold = shared / "widesearch" / "widesearch_gold"
    if not jsonl.is_file() or not gold.is_dir():
        return None
    return task_figures(load_widesearch(jsonl, gold), seed=seed)


# ------------------------------------------------------------------------------ shortcuts


class _Corpus:
    """The store plus its tantivy index, with the lookups the shortcut figures need."""

    def __init__(self, world: Path) -> None:
        import tantivy

        self.store = DocStore(world / "corpus")
        self.index = tantivy.Index.open(str(world / "index" / "tantivy"))
        self.searcher = self.index.searcher()
        self._text: dict[int, str] = {}
        self.by_entity: dict[str, list[int]] = defaultdict(list)
        self.titles: set[str] = set()
        self.url_tails: set[str] = set()
        for i, page in enumerate(self.store):
            self.titles.add(page.title.casefold())
            self.url_tails.add(page.url.rstrip("/").rsplit("/", 1)[-1].casefold())
            if page.kind == "entity" and page.entity:
                self.by_entity[norm_text(page.entity)].append(i)

    def text(self, i: int) -> str:
        t = self._text.get(i)
        if t is None:
            p = self.store.get(i)
            t = self._text[i] = f"{p.title}\n{p.text}"
            if len(self._text) > 20_000:
                self._text.clear()
        return t

    def phrase_docs(self, text: str, limit: int) -> tuple[list[int], int]:
        from wideseek_env.search.engines import query_words

        words = query_words(text)
        if not words:
            return [], 0
        q = self.index.parse_query('"' + " ".join(words) + '"', ["title", "text"])
        res = self.searcher.search(q, limit=limit, count=True)
        addrs = [a for _, a in res.hits]
        ords = self.searcher.fast_field_values("ord", addrs) if addrs else []
        return [int(o) for o in ords], int(res.count or 0)

    def close(self) -> None:
        self.store.close()


def _verbatim(corpus: _Corpus, cell: str) -> bool:
    needle = norm_text(cell)
    if not needle:
        return False
    pat = bounded(needle)
    docs, _ = corpus.phrase_docs(cell, 300)
    return any(pat.search(norm_text(corpus.text(i))) for i in docs)


def _items(text: str) -> list[str]:
    """The items a page lists: bullet items, without a ranking's value (``- Harris County — 4.7
    million`` -> ``harris county``), and the rows of a markdown table (their cells joined)."""
    out = []
    for ln in text.splitlines():
        s = ln.strip()
        if s.startswith(("- ", "* ", "• ")):
            out.append(norm_text(s[2:].split(" — ")[0]))
        elif s.startswith("|") and s.endswith("|") and not set(s) <= set("|-: "):
            out.append(norm_text(" ".join(c.strip() for c in s.strip("|").split("|"))))
    return out


def _names_every_key(corpus: _Corpus, keys: list[tuple[str, ...]]) -> tuple[bool, bool]:
    """(a page lists every key, such a page lists nothing else). A page lists a gold row when
    one of its bullet items holds the row's key cells (or holds the first and the page's title
    and introduction the others: "Counties of Texas" listing "Travis County")."""
    counted = sorted(((corpus.phrase_docs(k[0], 1)[1], k) for k in keys[:200]),
                     key=lambda x: x[0])
    if not counted or counted[0][0] == 0:
        return False, False
    candidates: set[int] | None = None
    for count, key in counted[:3]:
        docs, _ = corpus.phrase_docs(key[0], max(1, min(count, 50_000)))
        candidates = set(docs) if candidates is None else candidates & set(docs)
        if not candidates:
            return False, False
    pats = [[bounded(norm_text(c)) for c in key if c.strip()] for key in keys]
    every = exact = False
    for i in sorted(candidates or ()):
        text = corpus.text(i)
        items = _items(text)
        if not items:
            continue
        head = norm_text("\n".join(ln for ln in text.splitlines()[:3]))
        named = 0
        for row in pats:
            if any(row[0].search(it) and all(p.search(it) or p.search(head) for p in row[1:])
                   for it in items):
                named += 1
            else:
                break
        if named == len(pats):
            every = True
            if len(set(items)) <= len(keys) + 1:  # a table's header row is an item too
                exact = True
                break
    return every, exact


def shortcut_figures(world: Path, tasks: Sequence[Task], *, seed: int = 0,
                     provenance: dict[str, dict[str, Any]] | None = None,
                     cell_sample: int = 2_000, snippet_sample: int = 600,
                     task_sample: int = 300) -> dict[str, Any]:
    """The shortcut figures of ``tasks`` in the world at ``world`` (see the module docstring)."""
    from wideseek_env.search.local import LocalSearchBackend

    rng = random.Random(f"{seed}:shortcuts")
    corpus = _Corpus(world)
    backend = LocalSearchBackend.open(world, "tantivy")
    try:
        cells = []  # (task, row index, column index)
        for t in tasks:
            keys = set(_key_columns(t))
            for i in range(len(t.gold.rows)):
                for j in range(len(t.required)):
                    if j not in keys:
                        cells.append((t, i, j))
        sample = rng.sample(cells, min(cell_sample, len(cells)))
        line_hits = verbatim_hits = 0
        for t, i, j in sample:
            cell = t.gold.rows[i][j]
            if _verbatim(corpus, cell):
                verbatim_hits += 1
            line_hits += _on_line_with_words(corpus, t, i, j, provenance)
        snip = rng.sample(sample, min(snippet_sample, len(sample)))
        snippet_hits = 0
        k0 = {id(t): _key_columns(t)[0] for t in tasks}
        for t, i, j in snip:
            words = " ".join(column_words(t.gold.columns[j]))
            query = f"{words} of {t.gold.rows[i][k0[id(t)]]}"
            hits = backend.search([query], k=1)[0]
            if hits and bounded(norm_text(t.gold.rows[i][j])).search(norm_text(hits[0].snippet)):
                snippet_hits += 1
        chosen = list(tasks) if len(tasks) <= task_sample else rng.sample(list(tasks), task_sample)
        every = exact = 0
        for t in chosen:
            e, x = _names_every_key(corpus, entity_keys(t))
            every += e
            exact += x
        key_rows = [(t, row) for t in tasks for row in t.gold.rows]
        titles = sum(row[k0[id(t)]].casefold() in corpus.titles for t, row in key_rows)
        slugs = sum(slugify(row[k0[id(t)]]).casefold() in corpus.url_tails for t, row in key_rows)
        hop_tasks = sum(bool(t.meta.get("hop_columns")) for t in tasks)
        n = len(sample)
        return {
            "cells_sampled": n,
            "line_with_column_words": round(line_hits / n, 4) if n else None,
            "verbatim": round(verbatim_hits / n, 4) if n else None,
            "normalisation_needed": round(1 - verbatim_hits / n, 4) if n else None,
            "top1_snippet": round(snippet_hits / len(snip), 4) if snip else None,
            "snippet_queries": len(snip),
            "tasks_sampled": len(chosen),
            "page_names_every_key": round(every / len(chosen), 4) if chosen else None,
            "page_names_exactly_the_keys": round(exact / len(chosen), 4) if chosen else None,
            "no_page_names_exactly_the_keys": round(1 - exact / len(chosen), 4) if chosen
            else None,
            "key_is_a_page_title": round(titles / len(key_rows), 4) if key_rows else None,
            "key_in_a_url": round(slugs / len(key_rows), 4) if key_rows else None,
            "multi_hop_tasks": round(hop_tasks / len(tasks), 4) if tasks else None,
        }
    finally:
        backend.close()
        corpus.close()


def _on_line_with_words(corpus: _Corpus, t: Task, i: int, j: int,
                        provenance: dict[str, dict[str, Any]] | None) -> bool:
    cell = norm_text(t.gold.rows[i][j])
    if not cell:
        return False
    words = column_words(t.gold.columns[j])
    key = t.gold.rows[i][_key_columns(t)[0]]
    pages = set(corpus.by_entity.get(norm_text(key), []))
    url = (t.meta.get("row_urls") or [None] * len(t.gold.rows))[i]
    if url and (o := corpus.store.ordinal(url)) is not None:
        pages.add(o)
    if provenance and (rec := provenance.get(t.instance_id)):
        for u, _ in rec["cells"][i][j]:
            if (o := corpus.store.ordinal(u)) is not None:
                pages.add(o)
    value = bounded(cell)
    word_pats = [bounded(w) for w in words]
    for o in pages:
        for line in corpus.text(o).splitlines():
            if len(line) >= LINE_CHARS:
                continue
            low = norm_text(line)
            if value.search(low) and all(p.search(low) for p in word_pats):
                return True
    return False
