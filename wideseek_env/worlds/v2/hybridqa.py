"""HybridQA v2: HybridQA's own structure as a world, with tasks that join sibling tables.

HybridQA pairs Wikipedia tables with the lead passages of the articles their cells link to; its
questions need both. This world keeps that structure:

- an **article page** per table: the article's introduction and section text, then the table
  (key column and the other columns), then the table's links ("→ Silvio O. Conte ( R ):
  Silvio O. Conte — <url>");
- a **passage page** per linked row entity: its real Wikipedia lead passage, at an opaque URL;
- **passage columns**: a column whose values the rows' own passages state (for at least 80 % of
  the rows, checked word for word) is left blank in the article's table wherever the passage
  states the value, so those cells are found only by following the row's link. Every task asks
  for at least one passage column (so only tables that have one make tasks); the card reports
  how many cells come only from passages;
- **joined tasks**: tables of one split with the same section and header whose article titles
  differ only in their numbers (the 1948, 1949 ... editions of "NFL Draft") are asked as one
  task, keyed on the entity and the edition, reaching WideSearch's row counts.

Every gold cell records its provenance (the article line, or the link line and the passage's
exact words) and is re-derived by the checker of :mod:`.provenance`. HybridQA's text is real:
no fact is counterfactual (the card says so).
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from wideseek_env.search.docstore import StoredPage
from wideseek_env.tasks import ColumnEval, GoldTable, Task, norm_column
from wideseek_env.worlds.sources_hybridqa import _kind, detok, table_to_source
from wideseek_env.worlds.taskgen import FORMAT_TAIL
from wideseek_env.worlds.v2.model import stable_hash
from wideseek_env.worlds.v2.queries import OPENINGS, REQUESTS, TABLE_LINES
from wideseek_env.worlds.v2.requests import JUDGE_CRITERION
from wideseek_env.worlds.v2.surface import Transform, derive

BASE_URL = "https://hybridqa.wideseek.local"
PASSAGE_SHARE = 0.8  # a column is a passage column when its rows' passages state this share
TASKS_PER_TABLE = 3
TASKS_PER_JOIN = 4


@dataclass
class Table:
    """One HybridQA table, read through the easy tier's parser (key column, cleaned cells)."""

    uid: str
    split: str
    article: str
    section: str
    intro: str
    headers: list[str]
    rows: list[list[str]]
    links: list[str | None]  # the key cell's link, per row
    passages: list[str]
    url: str = ""
    stated: dict[tuple[int, int], str] = field(default_factory=dict)  # (row, col) -> words
    passage_cols: set[int] = field(default_factory=set)


def _url(*parts: object) -> str:
    return f"{BASE_URL}/d/{stable_hash(*parts, n=12)}"


def _title(link: str) -> str:
    return unquote(link.rsplit("/", 1)[-1]).replace("_", " ")


def _stated(value: str, passage: str) -> str | None:
    """The words of ``passage`` that state ``value`` (case aside, as whole words), or None."""
    if len(value) < 2 or not passage:
        return None
    m = re.search(r"(?<![\w])" + re.escape(value) + r"(?![\w])", passage, re.IGNORECASE)
    return m.group(0) if m else None


def read_tables(path: Path, passages: dict[str, str], max_tables: int | None = None,
                held_out: frozenset[str] = frozenset()) -> list[Table]:
    """The tables of ``path``; an article is in the test split when one of its tables is from
    HybridQA's dev split or is among ``held_out`` (the tables dev questions ask about)."""
    import gzip
    import json

    raw = []
    with gzip.open(path / "tables.jsonl.gz", "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            try:
                raw.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path / 'tables.jsonl.gz'}:{lineno}: bad table line ({e})") \
                    from e
            if max_tables is not None and len(raw) >= max_tables:
                break
    dev_articles = {d["url"] for d in raw if d["split"] != "train" or d["uid"] in held_out}
    out = []
    for d in raw:
        split = "test" if d["url"] in dev_articles else "train"
        st = table_to_source(d, split, passages)
        if st is None:
            continue
        headers = [detok(h[0]) for h in d["header"]]
        key_j = headers.index(st.key.name)
        link_of: dict[str, str | None] = {}
        for r in d["data"]:
            text = detok(r[key_j][0])
            link_of.setdefault(text.lower(), r[key_j][1][0] if r[key_j][1] else None)
        t = Table(d["uid"], split, detok(d["title"]), detok(d["section_title"]),
                  detok(" ".join(x for x in (d.get("intro", ""), d.get("section_text", "")) if x)),
                  [st.key.name, *(c.name for c in st.columns)], [list(r) for r in st.rows],
                  [link_of.get(r[0].lower()) for r in st.rows], list(st.passages))
        t.url = _url("article", t.uid)
        for j in range(1, len(t.headers)):
            hits = {}
            for i, row in enumerate(t.rows):
                if t.links[i] and row[j] and (w := _stated(row[j], t.passages[i])):
                    hits[(i, j)] = w
            if len(hits) >= PASSAGE_SHARE * len(t.rows):
                t.passage_cols.add(j)
                t.stated.update(hits)
        out.append(t)
    return out


def siblings(tables: list[Table]) -> list[list[Table]]:
    """Groups of two or more tables of one split whose article titles differ only in numbers,
    with the same section and header (the editions of a yearly event)."""
    groups: dict[tuple, list[Table]] = defaultdict(list)
    for t in tables:
        groups[(t.split, re.sub(r"\d+", "#", t.article), t.section,
                tuple(h.lower() for h in t.headers))].append(t)
    return [sorted(g, key=lambda t: t.article) for g in groups.values() if len(g) >= 2]


def _edition(t: Table) -> str:
    """The number that tells a table's edition ("1948" of "1948 NFL Draft"), as written in its
    title; the whole title when the title holds several numbers."""
    numbers = re.findall(r"\d+(?:[–-]\d+)?", t.article)
    return numbers[0] if len(numbers) == 1 else t.article


class HybridQAContent:
    """Pages and tasks of the HybridQA v2 world (see the module docstring)."""

    def __init__(self, path: str | Path, seed: int = 0, max_tables: int | None = None,
                 max_other_pages: int | None = None) -> None:
        import gzip
        import json

        self.path = Path(path)
        for name in ("tables.jsonl.gz", "passages.jsonl.gz"):
            if not (self.path / name).is_file():
                raise FileNotFoundError(f"HybridQA folder {self.path} has no {name}")
        self.passages: dict[str, str] = {}
        with gzip.open(self.path / "passages.jsonl.gz", "rt", encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                try:
                    d = json.loads(line)
                    self.passages[d["link"]] = detok(d["text"])
                except (json.JSONDecodeError, KeyError) as e:
                    raise ValueError(f"{self.path / 'passages.jsonl.gz'}:{lineno}: bad passage "
                                     f"line ({e})") from e
        self.seed = seed
        from wideseek_env.worlds.v2.qa_hybridqa import question_tables

        self.held_out = question_tables(self.path)  # no training task over a test question's table
        self.tables = read_tables(self.path, self.passages, max_tables, self.held_out)
        self.qa_dropped: dict[str, int] = {}
        self.max_other_pages = max_other_pages
        self.max_tables = max_tables
        self.passage_url = {ln: _url("passage", ln) for t in self.tables for ln in t.links if ln}

    # -- pages -----------------------------------------------------------------------------
    def pages(self) -> Iterator[StoredPage]:
        for link, url in sorted(self.passage_url.items()):
            yield StoredPage(id=url.split("://", 1)[1], url=url, title=_title(link),
                             text=self.passages.get(link, ""), kind="entity", entity=_title(link))
        for t in self.tables:
            yield self.article_page(t)
        for link in self.other_links():
            url = _url("other", link)
            yield StoredPage(id=url.split("://", 1)[1], url=url, title=_title(link),
                             text=self.passages[link])

    def other_links(self) -> list[str]:
        """The passages that get a page of their own without being a row's linked passage."""
        used = set(self.passage_url)
        rest = [link for link in sorted(self.passages) if link not in used]
        return rest if self.max_other_pages is None else rest[: self.max_other_pages]

    def qa_tasks(self, name: str) -> dict[str, list[tuple[Any, dict[str, Any]]]]:
        """Generated questions over the training tables, HybridQA's dev questions over the test
        tables (:mod:`.qa_hybridqa`)."""
        from wideseek_env.worlds.v2.qa import QA_TASKS
        from wideseek_env.worlds.v2.qa_hybridqa import generated_qa, hybridqa_qa

        want = QA_TASKS["train"] if self.max_tables is None else 40
        return {"train": generated_qa(self, name, want), **hybridqa_qa(self, name)}

    def article_page(self, t: Table) -> StoredPage:
        lines = [t.intro or t.article, "", f"{t.section}:", "| " + " | ".join(t.headers) + " |",
                 "|" + "---|" * len(t.headers)]
        for i, row in enumerate(t.rows):
            cells = [("" if (i, j) in t.stated else c.replace("|", "/"))
                     for j, c in enumerate(row)]
            cells[0] = row[0].replace("|", "/")
            lines.append("| " + " | ".join(cells) + " |")
        if any(t.links):
            note = (" Values left blank above are given in each entry's own article."
                    if t.stated else "")
            lines += ["", "Linked articles." + note]
            lines += [f"→ {row[0].replace('|', '/')}: {_title(ln)} — {self.passage_url[ln]}"
                      for row, ln in zip(t.rows, t.links) if ln]
        return StoredPage(id=t.url.split("://", 1)[1], url=t.url,
                          title=f"{t.article} — {t.section}", text="\n".join(lines),
                          kind="source")

    # -- tasks -----------------------------------------------------------------------------
    def tasks(self, name: str) -> dict[str, list[tuple[Task, dict[str, Any]]]]:
        out: dict[str, list[tuple[Task, dict[str, Any]]]] = {"train": [], "test": []}
        rng = random.Random(f"{self.seed}:v2:hybridqa:tasks")
        units: list[tuple[list[Table], int]] = [(g, TASKS_PER_JOIN) for g in siblings(self.tables)]
        units += [([t], TASKS_PER_TABLE) for t in self.tables]
        for group, count in units:
            seen: set[tuple] = set()
            for _ in range(count * 4):
                made = self._task(group, rng)
                if made is None:
                    continue
                task, prov = made
                sig = task.gold.columns
                if sig in seen:
                    continue
                seen.add(sig)
                out[group[0].split].append((task, prov))
                if len(seen) >= count:
                    break
        for split, items in out.items():
            out[split] = [(_renamed(t, f"{name}-{split}-{i:05d}"),
                           {**p, "instance_id": f"{name}-{split}-{i:05d}"})
                          for i, (t, p) in enumerate(items)]
        return out

    def _task(self, group: list[Table], rng: random.Random
              ) -> tuple[Task, dict[str, Any]] | None:
        first = group[0]
        joined = len(group) > 1
        attr_js = list(range(1, len(first.headers)))
        shown = [j for j in attr_js if j not in first.passage_cols and all(
            row[j] for t in group for row in t.rows)]
        passage = [j for j in attr_js if all(j in t.passage_cols for t in group) and all(
            row[j] for t in group for row in t.rows)]
        if not passage:  # every task needs what only the linked passages state
            return None
        rng.shuffle(shown)
        rng.shuffle(passage)
        chosen = passage[: rng.randint(1, 2)] + shown[: rng.randint(2, 4)]
        if len(chosen) < 2:
            return None
        chosen.sort()
        headers = [first.headers[0]] + (["Edition"] if joined else []) + \
            [first.headers[j] for j in chosen]
        if len({norm_column(h) for h in headers}) != len(headers):
            return None
        rows, cells = [], []
        for t in group:
            for i, row in enumerate(t.rows):
                key = row[0].replace("|", "/")
                prov: list[list[list[str]]] = [[[t.url, key]]]
                gold = [key]
                if joined:
                    gold.append(_edition(t))
                    prov.append([[t.url, _edition(t)]])
                for j in chosen:
                    gold.append(row[j].replace("|", "/"))
                    if (i, j) in t.stated:
                        link = t.links[i]
                        assert link is not None
                        prov.append([[t.url, _title(link)],
                                     [self.passage_url[link], t.stated[(i, j)]]])
                    else:
                        prov.append([[t.url, row[j].replace("|", "/")]])
                rows.append(tuple(gold))
                cells.append(prov)
        keys = [r[: 2 if joined else 1] for r in rows]
        if len(set(keys)) != len(keys):
            return None
        norms = [norm_column(h) for h in headers]
        pipeline: dict[str, ColumnEval] = {}
        transforms: list[Transform] = []
        notes: list[str] = []
        for k, (n_, j) in enumerate(zip(norms, [0, *([-1] if joined else []), *chosen])):
            surfaces = [p[k][-1][1] for p in cells]
            if j <= 0:
                pipeline[n_] = ColumnEval(("norm_str",), ("exact_match",), None)
                transforms.append(Transform("text"))
                continue
            t_, ev, note = _request(headers[k], surfaces,
                                    _kind([r[j] for tb in group for r in tb.rows]))
            pipeline[n_], notes = ev, notes + ([note] if note else [])
            transforms.append(t_)
        # every gold cell is its surface read through the column's transform
        rows = [tuple(derive(p[k][-1][1], transforms[k]) for k in range(len(headers)))
                for p in cells]
        query = self._query(group, headers, chosen, rng, notes)
        n_keys = 2 if joined else 1
        task = Task("", query, "en", tuple(norms[:n_keys]), tuple(norms), pipeline,
                    GoldTable(tuple(headers), tuple(rows)),
                    {"domain": "hybridqa-join" if joined else "hybridqa",
                     "tables": [t.uid for t in group],
                     "hop_columns": [first.headers[j] for j in chosen if j in first.passage_cols],
                     "row_urls": [t.url for t in group for _ in t.rows]})
        prov_rec = {"instance_id": "", "cells": cells,
                    "transforms": [t.as_dict() for t in transforms],
                    "hops": [h in task.meta["hop_columns"] for h in headers]}
        return task, prov_rec

    def _query(self, group: list[Table], headers: list[str], chosen: list[int],
               rng: random.Random, notes: list[str]) -> str:
        first = group[0]
        key = first.headers[0]
        if len(group) > 1:
            event = re.sub(r"\s+", " ", re.sub(r"\d+(?:[–-]\d+)?", "", first.article)).strip()
            eds = [_edition(t) for t in group]
            sets = (f"the {key} entries listed under {first.section} in every edition of "
                    f"{event} from {eds[0]} to {eds[-1]}")
            extra = (" Give one row per entry and edition; the Edition column holds the number "
                     "that tells the edition apart (its year), or its full title when that has "
                     "several numbers.")
        else:
            sets = f"the {key} entries listed under {first.section} for {first.article}"
            extra = ""
        cols = [f"the {first.headers[j]}" for j in chosen]
        col_text = cols[0] if len(cols) == 1 else ", ".join(cols[:-1]) + " and " + cols[-1]
        opening = rng.choice(OPENINGS).format(topic=first.article)
        request = rng.choice(REQUESTS).format(set=sets, cond="", cols=col_text)
        request = request[0].upper() + request[1:]
        return (f"{opening} {request}{extra}\n\n{rng.choice(TABLE_LINES)}\n{', '.join(headers)}\n"
                + "".join(n + "\n" for n in notes) + f"\n{FORMAT_TAIL}")

    def card(self) -> dict[str, Any]:
        cols = sum(len(t.passage_cols) for t in self.tables)
        stated = sum(len(t.stated) for t in self.tables)
        return {"source": "hybridqa", "source_path": str(self.path.resolve()),
                "entities": sum(len(t.rows) for t in self.tables),
                "hybridqa": {"tables": len(self.tables), "passage_columns": cols,
                             "tables_held_out_for_dev_questions": sum(
                                 t.uid in self.held_out for t in self.tables),
                             "dev_questions_dropped": self.qa_dropped,
                             "cells_only_in_passages": stated,
                             "sibling_groups": len(siblings(self.tables)),
                             "passage_rule": f"a column whose rows' own passages state at least "
                                             f"{PASSAGE_SHARE:.0%} of its values, word for word"},
                "counterfactual": {"split": "test", "share_differs": 0.0, "facts": stated,
                                   "changed_from_source": 0, "generated": 0,
                                   "note": "HybridQA's text is real Wikipedia text; nothing is "
                                           "made counterfactual"},
                "sources": {"hybridqa": {"licence": "MIT (HybridQA / OTT-QA); text from "
                                                    "Wikipedia, CC BY-SA 3.0: keep attribution"}}}


def _request(header: str, surfaces: list[str], kind: tuple[str, float] | str
             ) -> tuple[Transform, ColumnEval, str]:
    """A column's format: dates re-written as YYYY-MM-DD and numbers with separators as plain
    integers when every surface reads so; the words themselves otherwise."""
    kind, tol = kind if isinstance(kind, tuple) else (kind, 0.0)
    iso = Transform("date", style="iso")
    if kind == "date" and _all_read(surfaces, iso):
        return iso, ColumnEval(("norm_date",), ("date_near",), None), \
            f"Write {header} as YYYY-MM-DD."
    plain = Transform("number", unit="count", from_unit="count")
    if kind == "number" and any("," in s for s in surfaces) and _all_read(surfaces, plain) and \
            all(re.fullmatch(r"-?\d{1,3}(?:,\d{3})*|-?\d+", s.strip()) for s in surfaces):
        return plain, ColumnEval(("extract_number",), ("number_near",), float(tol)), \
            f"Give {header} as plain numbers, without thousands separators."
    if kind == "number":
        return Transform("text"), ColumnEval(("extract_number",), ("number_near",),
                                             float(tol)), ""
    if kind in ("category", "date", "url"):
        return Transform("text"), ColumnEval(("norm_str",), ("exact_match",), None), ""
    return Transform("text"), ColumnEval(("norm_str",), ("llm_judge",), JUDGE_CRITERION), ""


def _all_read(surfaces: list[str], t: Transform) -> bool:
    try:
        for s in surfaces:
            derive(s, t)
    except (ValueError, KeyError):
        return False
    return True


def _renamed(task: Task, iid: str) -> Task:
    return Task(iid, task.query, task.language, task.unique_columns, task.required,
                task.eval_pipeline, task.gold, task.meta)


def build_hybridqa_v2_world(path: str | Path, out_dir: str | Path, *, seed: int = 0,
                            max_tables: int | None = None, max_other_pages: int | None = None,
                            engines: tuple[str, ...] = ("tantivy",), overwrite: bool = False,
                            progress: bool = True) -> Path:
    """Build the HybridQA v2 world from the HybridQA folder ``path`` into ``out_dir``."""
    from wideseek_env.worlds.v2.build import build_v2_world

    content = HybridQAContent(path, seed, max_tables, max_other_pages)
    name = "hybridqa" if max_tables is None else "hybridqa-small"
    return build_v2_world(content, out_dir, name=name, seed=seed,
                          engines=engines, overwrite=overwrite,  # type: ignore[arg-type]
                          progress=progress, card={"options": {
                              "max_tables": max_tables, "max_other_pages": max_other_pages}},
                          stats_sample=2_000 if max_tables is None else 400)
