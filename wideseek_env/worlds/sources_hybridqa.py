"""Source tables of the HybridQA world (the paper's own source data), read from a local folder.

Input (``tables.jsonl.gz`` and ``passages.jsonl.gz``, as in ``../shared/hybridqa``): 8,891
Wikipedia tables with cell links and a train/dev ``split``, and 178,775 linked lead passages.

- Each table becomes a :class:`~wideseek_env.worlds.schema.SourceTable`. Its key column is the
  unique, mostly linked, non-numeric column (leftmost wins ties); rows repeating a key are dropped.
  Column types come from the cells (all numeric, all dates, all URLs, short, or free text).
- An entity page is the key cell's linked passage plus the row's facts; the article section the
  table came from becomes a ``source`` page (intro and section text, never the table).
- Passages that no entity page uses become unrelated pages (their Wikipedia address and title).
- Splits follow HybridQA (``dev`` is the test split). An article with tables in both splits goes
  to test whole, so no source page is shared between splits.

HybridQA's text is tokenised (``Mo Farah ( GBR )``, ``23 , 1959``); :func:`detok` undoes the
common cases so pages read naturally and gold cells match them exactly.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from wideseek_env.search.docstore import StoredPage
from wideseek_env.worlds.schema import Column, ColumnKind, SourceTable, slugify
from wideseek_env.worlds.taskgen import parse_number

BASE_URL = "https://hybridqa.wideseek.local"
MISSING = {"", "-", "–", "—", "n/a", "N/A", "?", "TBA", "none", "None"}
_DATE = re.compile(
    r"^(?:(?:January|February|March|April|May|June|July|August|September|October|November|"
    r"December) \d{1,2}, \d{4}|\d{1,2} (?:January|February|March|April|May|June|July|August|"
    r"September|October|November|December) \d{4}|\d{4}-\d{2}-\d{2})$")
_URL = re.compile(r"^https?://\S+$")
TASKS_PER_TABLE = 5


_JOIN = [(f" {p}", p) for p in (",", ".", ";", ":", "!", "?", "%", ")", "]", "'s ", "n't ",
                                "'re ", "'ve ", "'ll ", "'d ")] + [("( ", "("), ("[ ", "[")]


def detok(text: str) -> str:
    """Undo HybridQA's tokenisation: ``"Farah ( GBR ) , 1959"`` -> ``"Farah (GBR), 1959"``."""
    text = " ".join(text.split()) + " "  # the trailing space lets "'s" match at the very end
    for old, new in _JOIN:  # plain replaces: ~20x faster than regular expressions here
        text = text.replace(old, new)
    return text.rstrip()


def shared_dir(repo_root: str | Path | None = None) -> Path:
    """The ``../shared`` folder next to the repo root (``$WIDESEEK_SHARED`` overrides)."""
    import os

    env = os.environ.get("WIDESEEK_SHARED")
    if env:
        return Path(env)
    root = Path(repo_root) if repo_root else Path(__file__).resolve().parents[2]
    return root.parent / "shared"


def _link_title(link: str) -> str:
    return unquote(link.rsplit("/", 1)[-1]).replace("_", " ")


def _kind(cells: list[str]) -> tuple[ColumnKind, float]:
    """Column type and number tolerance from its known cells."""
    if all(_URL.match(c) for c in cells):
        return "url", 0.0
    numbers = [parse_number(c) for c in cells]
    if all(n is not None for n in numbers):
        ints = all(float(n).is_integer() for n in numbers)  # type: ignore[arg-type]
        small = max(abs(n) for n in numbers) <= 3000  # type: ignore[arg-type]
        return "number", 0.0 if ints and small else (0.05 if ints else 0.01)
    if all(_DATE.match(c) for c in cells):
        return "date", 0.0
    if sum(len(c.split()) for c in cells) / len(cells) <= 4 and max(map(len, cells)) <= 40:
        return "category", 0.0
    return "text", 0.0


def table_to_source(d: dict[str, Any], split: str, passages: dict[str, str],
                    used: set[str] | None = None) -> SourceTable | None:
    """One HybridQA table as a source table, or ``None`` when it cannot make tasks. The links
    whose passages go onto entity pages are added to ``used``."""
    headers = [detok(h[0]) for h in d["header"]]
    rows = [[detok(c[0]) for c in r] for r in d["data"]]
    links = [[c[1] for c in r] for r in d["data"]]
    if len(rows) < 5 or len(headers) < 3:
        return None
    rows = [[("" if c in MISSING else c) for c in r] for r in rows]

    def key_score(j: int) -> tuple[float, float, int] | None:
        cells = [r[j] for r in rows]
        if not headers[j] or not all(cells) or max(map(len, cells)) > 80:
            return None
        if _kind(cells)[0] in ("number", "date", "url"):
            return None
        distinct = len({c.lower() for c in cells}) / len(cells)
        if distinct < 0.8:
            return None
        linked = sum(1 for r in links if r[j]) / len(links)
        return (distinct, linked, -j)

    scored = [(s, j) for j in range(len(headers)) if (s := key_score(j)) is not None]
    if not scored:
        return None
    key_j = max(scored)[1]
    keep, seen = [], set()
    for i, r in enumerate(rows):
        if r[key_j].lower() not in seen:
            seen.add(r[key_j].lower())
            keep.append(i)
    if len(keep) < 5:
        return None
    attr_js, names = [], {headers[key_j].lower().replace(" ", "")}
    for j, h in enumerate(headers):
        norm = h.lower().replace(" ", "")
        if j == key_j or not h or norm in names:
            continue
        names.add(norm)
        attr_js.append(j)
    if len(attr_js) < 2:
        return None
    article, section = detok(d["title"]), detok(d["section_title"])
    cols = []
    for j in attr_js:
        known = [rows[i][j] for i in keep if rows[i][j]]
        if not known:
            continue
        kind, tol = _kind(known)
        counts = Counter(known)
        listable = kind == "category" and 2 <= len(counts) <= len(known) // 2
        cols.append((j, Column(headers[j], kind, phrase=headers[j].lower() if not
                               headers[j].isupper() else headers[j], tolerance=tol,
                               list_title=f"{article} — {section}: entries with {headers[j]} {{v}}"
                               if listable else "",
                               filter_text=f"whose {headers[j]} is {{v}}" if listable else "")))
    if len(cols) < 2:
        return None
    key_passages = []
    for i in keep:
        ls = links[i][key_j]
        # An unlinked key still gets the passage of the article with its exact title, if any.
        link = ls[0] if ls else "/wiki/" + rows[i][key_j].replace(" ", "_")
        key_passages.append(detok(passages.get(link, "")))
        if used is not None and link in passages:
            used.add(link)
    table_rows = tuple(tuple([rows[i][key_j]] + [rows[i][j] for j, _ in cols]) for i in keep)
    scope = f"entries of the table '{section}' in the Wikipedia article '{article}'"
    uid = slugify(d["uid"])
    source_url = f"{d['url']}#{slugify(section)}"
    source_text = "\n\n".join(t for t in (d.get("intro", ""), d.get("section_text", "")) if t)
    return SourceTable(
        id=d["uid"], split=split, group=d["url"], singular="entry", plural=scope, scope=scope,
        list_url_prefix=f"{BASE_URL}/table/{uid}",
        key=Column(headers[key_j], "category"), columns=tuple(c for _, c in cols),
        rows=table_rows, url_prefix=f"{BASE_URL}/entity", merge_entities=True,
        passages=tuple(key_passages), row_ids=tuple(slugify(r[0])[:80] for r in table_rows),
        context=f"{{e}} is an entry of the table '{section}' in the Wikipedia article "
                f"'{article}'.",
        list_title=f"{article} — {section}: list of entries ({headers[key_j]})",
        extra_pages=(StoredPage(id=source_url.split("://", 1)[1], url=source_url,
                                title=f"{article} — {section}",
                                text=source_text or article, kind="source"),),
        tasks_wanted=TASKS_PER_TABLE,
    )


def read_hybridqa(path: str | Path, *, max_tables: int | None = None
                  ) -> tuple[list[SourceTable], dict[str, str], set[str]]:
    """Source tables, all passages (link -> text) and the links used by entity pages."""
    path = Path(path)
    tables_file, passages_file = path / "tables.jsonl.gz", path / "passages.jsonl.gz"
    for f in (tables_file, passages_file):
        if not f.is_file():
            raise FileNotFoundError(f"HybridQA folder {path} has no {f.name}")
    passages: dict[str, str] = {}
    with gzip.open(passages_file, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            try:
                d = json.loads(line)
                passages[d["link"]] = d["text"]
            except (json.JSONDecodeError, KeyError) as e:
                raise ValueError(f"{passages_file}:{lineno}: bad passage line ({e})") from e
    raw: list[dict[str, Any]] = []
    with gzip.open(tables_file, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            try:
                d = json.loads(line)
                _ = (d["uid"], d["split"], d["url"], d["header"], d["data"], d["title"])
            except (json.JSONDecodeError, KeyError) as e:
                raise ValueError(f"{tables_file}:{lineno}: bad table line ({e})") from e
            raw.append(d)
            if max_tables is not None and len(raw) >= max_tables:
                break
    dev_articles = {d["url"] for d in raw if d["split"] != "train"}
    tables, used = [], set()
    for d in raw:
        split = "test" if d["url"] in dev_articles else "train"
        t = table_to_source(d, split, passages, used)
        if t is not None:
            tables.append(t)
    return tables, passages, used


def passage_pages(passages: dict[str, str], used: set[str]) -> Iterator[StoredPage]:
    """Unrelated pages: the passages no entity page carries, at their Wikipedia address."""
    for link in sorted(passages):
        if link in used:
            continue
        url = f"https://en.wikipedia.org{link}"
        yield StoredPage(id=url.split("://", 1)[1], url=url, title=_link_title(link),
                         text=detok(passages[link]))


def build_hybridqa_world(path: str | Path, out_dir: str | Path, *, seed: int = 0,
                         max_tables: int | None = None, engines: tuple[str, ...] = ("tantivy",),
                         overwrite: bool = False, progress: bool = True,
                         recall_sample: int | None = 20_000,
                         max_other_pages: int | None = None) -> Path:
    """Build the HybridQA world from the folder ``path`` into ``out_dir``.

    ``max_tables`` and ``max_other_pages`` cap the tables read and the unrelated passage pages
    written (quick worlds for tests); ``recall_sample`` caps the recall@3 measurement."""
    import itertools

    from wideseek_env.worlds.builder import build_world

    tables, passages, used = read_hybridqa(path, max_tables=max_tables)
    card = {
        "source": "hybridqa", "source_path": str(Path(path).resolve()),
        "sources": {"hybridqa": {"licence": "MIT (HybridQA / OTT-QA); text from Wikipedia, "
                                            "CC BY-SA 3.0: keep attribution"}},
        "options": {"max_tables": max_tables, "recall_sample": recall_sample,
                    "max_other_pages": max_other_pages},
        "split_note": "HybridQA dev is the test split; articles with tables in both splits "
                      "were moved to test whole.",
    }
    return build_world(tables, out_dir, name="hybridqa" if max_tables is None else "hybridqa-small",
                       seed=seed, engines=engines,
                       other_pages=itertools.islice(passage_pages(passages, used), max_other_pages),
                       card=card, overwrite=overwrite, progress=progress,  # type: ignore[arg-type]
                       recall_sample=recall_sample, isolate_cells=False)
