"""HybridQA's own dev questions as QA tasks over the HybridQA v2 world.

``questions_dev.jsonl.gz`` (beside ``tables.jsonl.gz``) holds 3,466 real multi-hop questions
(``question_id``, ``question``, ``table_id``, ``answer``). A question becomes a QA task of the
world's **test** split when its table is in the world and its answer is written on the table's
article page (a cell: one hop) or on the page of a passage linked from any cell of the table (the
passage: two hops, the table then the passage), matched as whole words, case aside. The
provenance records the page and the exact words; :func:`~.qa.check_qa` re-reads them.

Held out: the article of every table a dev question points at goes to the test split (with all
its tables), so no training task of the world is built from a table a test question asks about
(:func:`question_tables` feeds :func:`~.hybridqa.read_tables`).

Training QA tasks are generated from the training tables (:func:`generated_qa`): a cell of a row
("In the Draft table of 1948 NFL Draft, what is the College of Bob Smith?"), read on the article
page (one hop) or, for a cell the article leaves blank, in the row's linked passage (two hops:
the article's link line, then the passage's words).
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path
from typing import Any

from wideseek_env.qa import qa_task
from wideseek_env.worlds.v2.qa import QAItem

QUESTIONS_FILE = "questions_dev.jsonl.gz"


def _questions(path: Path) -> list[dict[str, Any]]:
    file = path / QUESTIONS_FILE
    if not file.is_file():
        return []
    out = []
    with gzip.open(file, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            try:
                q = json.loads(line)
                out.append({k: q[k] for k in ("question_id", "question", "table_id", "answer")})
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise ValueError(f"{file}:{lineno}: bad question line ({e})") from e
    return out


def question_tables(path: str | Path) -> frozenset[str]:
    """The table ids the dev questions point at (empty without the questions file)."""
    return frozenset(q["table_id"] for q in _questions(Path(path)))


def _cell_links(path: Path, uids: set[str]) -> dict[str, list[str]]:
    """Every link of every cell of the tables ``uids`` (in table order)."""
    out: dict[str, list[str]] = {}
    with gzip.open(path / "tables.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            if d["uid"] in uids:
                out[d["uid"]] = list(dict.fromkeys(
                    link for row in d["data"] for cell in row for link in cell[1]))
    return out


def hybridqa_qa(content: Any, name: str) -> dict[str, list[QAItem]]:
    """QA tasks from the dev questions whose answer a page of the world states (test split)."""
    from wideseek_env.worlds.v2.hybridqa import _stated, _url

    questions = _questions(content.path)
    if not questions:
        return {}
    tables = {t.uid: t for t in content.tables}
    links = _cell_links(content.path, {q["table_id"] for q in questions if q["table_id"] in tables})
    others = set(content.other_links())
    made: list[QAItem] = []
    dropped = {"table_not_in_world": 0, "answer_not_on_a_page": 0}
    articles: dict[str, str] = {}
    for q in questions:
        t = tables.get(q["table_id"])
        if t is None:
            dropped["table_not_in_world"] += 1
            continue
        if t.uid not in articles:
            articles[t.uid] = content.article_page(t).text
        steps, hops = None, 0
        if words := _stated(q["answer"], articles[t.uid]):
            steps, hops = [[t.url, words]], 1
        else:
            for link in links.get(t.uid, ()):
                url = content.passage_url.get(link) or (
                    _url("other", link) if link in others else None)
                if url and (words := _stated(q["answer"], content.passages.get(link, ""))):
                    steps, hops = [[t.url, t.article], [url, words]], 2
                    break
        if steps is None:
            dropped["answer_not_on_a_page"] += 1
            continue
        iid = f"{name}-test-qa-{len(made):05d}"
        made.append((qa_task(iid, q["question"], [q["answer"]], meta={
            "world": name, "split": "test", "source": "hybridqa-dev",
            "question_id": q["question_id"], "table_id": t.uid, "hops": hops}),
            {"instance_id": iid, "hops": hops, "steps": steps,
             "answer_sources": [steps[-1]], "table_id": t.uid}))
    content.qa_dropped = dropped
    return {"test": made}


def generated_qa(content: Any, name: str, want: int) -> list[QAItem]:
    """``want`` questions about cells of the training tables, answerable by construction."""
    from wideseek_env.worlds.v2.hybridqa import _title

    rng = random.Random(f"{content.seed}:v2:hybridqa:qa")
    tables = [t for t in content.tables if t.split == "train"]
    rng.shuffle(tables)
    made: list[QAItem] = []
    seen: set[str] = set()
    for t in tables * 3:  # a few questions per table when the tables are few
        if len(made) >= want:
            break
        cells = [(i, j) for i, row in enumerate(t.rows) for j in range(1, len(t.headers))
                 if row[j] and row[0] and len(row[j]) >= 2]
        if not cells:
            continue
        i, j = rng.choice(cells)
        key, value = t.rows[i][0].replace("|", "/"), t.rows[i][j].replace("|", "/")
        q = f"In the {t.section} table of {t.article}, what is the {t.headers[j]} of {key}?"
        if q in seen:
            continue
        seen.add(q)
        if (i, j) in t.stated:  # blank in the article: the row's passage states it
            link = t.links[i]
            steps = [[t.url, _title(link)], [content.passage_url[link], t.stated[(i, j)]]]
            answers = list(dict.fromkeys([t.stated[(i, j)], value]))
        else:
            steps, answers = [[t.url, value]], [value]
        iid = f"{name}-train-qa-{len(made):05d}"
        made.append((qa_task(iid, q, answers, meta={
            "world": name, "split": "train", "source": "hybridqa-generated", "table_id": t.uid,
            "hops": len(steps)}),
            {"instance_id": iid, "hops": len(steps), "steps": steps,
             "answer_sources": [steps[-1]] + ([[t.url, value]] if len(steps) == 1 else []),
             "table_id": t.uid}))
    return made
