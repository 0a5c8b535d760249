"""Generate WideSearch-shaped tasks from a source table.

A task picks a set of rows (5-50, or the ``rows`` range given to :class:`TaskGenerator`) and a key column plus 2-6 attribute columns. Row sets are
described the way a person would ask for them:

- ``all``: every entity of a table (small tables only);
- ``category``: those with a category value ("cities located in Norway");
- ``threshold``: those above/below a round number ("countries with an area of more than
  1,000,000 km²"), alone or inside a category;
- ``top``: the n largest by a number ("the 10 most populous ...", only without ties at the cut);
- ``explicit``: a named list of entities.

``explicit_only`` draws only the last kind: a world whose splits hold out entities of the same
tables (``holdout="entities"``) needs it, since a category, threshold or top-n over part of a
table would disagree with list pages that name the whole table.

Each column's preprocess and metric follow its type (:data:`PIPELINES`), the query names the
columns in order and ends with WideSearch's output-format instruction, and the gold table holds
the cells exactly as the entity pages state them. Everything is drawn from a generator seeded
with the world seed and the table id, so a table's tasks do not depend on the other tables.
"""

from __future__ import annotations

import math
import random
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from wideseek_env.tasks import ColumnEval, GoldTable, Task, norm_column
from wideseek_env.worlds.schema import Column, SourceTable

MIN_ROWS, MAX_ROWS = 5, 50
MIN_ATTRS, MAX_ATTRS = 2, 6
JUDGE_CRITERION = (
    "It is sufficient if the semantics are approximately the same as the reference answer or if "
    "they point to the same entity. There is no need for a word-for-word correspondence."
)
FORMAT_TAIL = (
    "Don't ask me any questions, just output the results according to the columns without "
    "omitting cells arbitrarily. The output format is ```markdown\n{data_content}\n```."
)
INTROS: tuple[str, ...] = (
    "I'm compiling data on {sel}. For each one, I need {attrs}.",
    "Could you find {sel} and, for each of them, report {attrs}?",
    "Please help me build a table of {sel}, including {attrs} for every entry.",
    "For a research project, list {sel}. Each row should give {attrs}.",
    "I need a complete overview of {sel}: {attrs} of each.",
)
TABLE_LINES: tuple[str, ...] = (
    "Please organize the results in one Markdown table with the following columns in order:",
    "Please output the organized data in the format of one Markdown table. The column names "
    "in the table are as follows in sequence:",
    "Present the data in one Markdown table with these column names, in this order:",
)
_NUMBER = re.compile(r"^[-+]?\d[\d,]*(\.\d+)?$")


def parse_number(cell: str) -> float | None:
    """The value of a plain numeric cell (``"1,234.5"``), else ``None``."""
    text = cell.strip()
    return float(text.replace(",", "")) if _NUMBER.match(text) else None


def column_eval(column: Column, is_key: bool = False) -> ColumnEval:
    """Preprocess, metric and criterion for a column of this type (WideSearch's vocabulary)."""
    if is_key or column.kind in ("category", "code"):
        return ColumnEval(("norm_str",), ("exact_match",), None)
    if column.kind == "number":
        return ColumnEval(("extract_number",), ("number_near",), float(column.tolerance))
    if column.kind == "date":
        return ColumnEval(("norm_date",), ("date_near",), None)
    if column.kind == "url":
        return ColumnEval(("norm_str",), ("url_match",), None)
    return ColumnEval(("norm_str",), ("llm_judge",), JUDGE_CRITERION)


@dataclass(frozen=True)
class Selection:
    """A described set of rows of one table."""

    kind: str
    rows: tuple[int, ...]
    text: str
    filter: dict[str, Any]


def _nice_threshold(hi: float, lo: float) -> float | None:
    """A round number ``t`` with ``lo <= t < hi`` (``None`` if ``hi <= lo``)."""
    if hi <= lo:
        return None
    span = max(abs(hi), abs(lo), 1.0)
    for d in range(int(math.log10(span)) + 1, -4, -1):
        step = 10.0**d
        t = math.floor(hi / step) * step
        if t == hi:
            t -= step
        if lo <= t < hi:
            return t
    return None


def _article(noun: str) -> str:
    return "an" if noun[:1].lower() in "aeiou" else "a"


def _fmt_number(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,.4f}".rstrip("0").rstrip(".")


class TaskGenerator:
    """Draws tasks for one table; call :meth:`generate`."""

    def __init__(self, table: SourceTable, seed: int,
                 rows: tuple[int, int] = (MIN_ROWS, MAX_ROWS), *,
                 explicit_only: bool = False) -> None:
        if not 1 <= rows[0] <= rows[1]:
            raise ValueError(f"rows must be (min, max) with 1 <= min <= max, got {rows}")
        self.table = table
        self.explicit_only = explicit_only
        self.min_rows, self.max_rows = rows
        self.rng = random.Random(f"{seed}:tasks:{table.id}")
        t = table
        self.numbers = {c: [parse_number(r[c]) if r[c] else None for r in t.rows]
                        for c, col in enumerate(t.columns, 1) if col.kind == "number"}
        self.categories: dict[int, dict[str, list[int]]] = {}
        for c, col in enumerate(t.columns, 1):
            if col.list_title:
                groups: dict[str, list[int]] = defaultdict(list)
                for i, r in enumerate(t.rows):
                    if r[c]:
                        groups[r[c]].append(i)
                if groups:  # isolation may have dropped every row that had a value
                    self.categories[c] = dict(groups)

    # -- row sets -----------------------------------------------------------------------------
    def _filter_text(self, c: int, value: str) -> str:
        col = self.table.columns[c - 1]
        return col.filter_text.format(v=value) if col.filter_text else \
            f"whose {col.attr} is {value}"

    def _base(self) -> tuple[list[int], str, dict[str, Any]]:
        """All rows, or one category's rows (half the time when the table has categories)."""
        if self.categories and self.rng.random() < 0.6:
            c = self.rng.choice(sorted(self.categories))
            value = self.rng.choice(sorted(self.categories[c]))
            return (list(self.categories[c][value]), " " + self._filter_text(c, value),
                    {"column": self.table.columns[c - 1].name, "equals": value})
        return list(range(len(self.table.rows))), "", {}

    def select(self) -> Selection | None:
        t, rng = self.table, self.rng
        if self.explicit_only:
            kind, rows, filt_text, filt = "explicit", list(range(len(t.rows))), "", {}
        else:
            kind = rng.choices(["base", "threshold", "top", "explicit"], [4, 3, 2, 3])[0]
            rows, filt_text, filt = self._base()
        if kind in ("threshold", "top") and self.numbers:
            c = rng.choice(sorted(self.numbers))
            col = t.columns[c - 1]
            vals = sorted(((self.numbers[c][i], i) for i in rows
                           if self.numbers[c][i] is not None), reverse=True)
            if len(vals) < self.min_rows + 1 or len(vals) < len(rows):
                return None  # a row without the value could not be placed above or below
            n = rng.randint(self.min_rows, min(self.max_rows, len(vals) - 1))
            more = rng.random() < 0.7
            if not more:
                vals = vals[::-1]
            if vals[n - 1][0] == vals[n][0]:
                return None
            unit = f" {col.unit}" if col.unit else ""
            if kind == "top":
                word = "highest" if more else "lowest"
                return Selection("top", tuple(i for _, i in vals[:n]),
                                 f"the {n} {t.scope}{filt_text} with the {word} {col.attr}",
                                 {**filt, "top": n, "by": col.name, "order": word})
            # "more than th": vals[n] <= th < vals[n-1]; "less than th": vals[n-1] < th <= vals[n]
            # (found by negating both ends, so one search for a round number serves both)
            sign = 1.0 if more else -1.0
            th = _nice_threshold(sign * vals[n - 1][0], sign * vals[n][0])
            if th is None:
                return None
            th *= sign
            chosen = tuple(sorted(i for v, i in vals if (v > th if more else v < th)))
            rel = "more than" if more else "less than"
            joiner = " and" if filt_text else ""
            return Selection("threshold", chosen,
                             f"all {t.scope}{filt_text}{joiner} with {_article(col.attr)} {col.attr} of {rel} "
                             f"{_fmt_number(th)}{unit}",
                             {**filt, "number_column": col.name, rel.replace(" ", "_"): th})
        if kind == "explicit" or not self.min_rows <= len(rows) <= self.max_rows:
            if len(rows) < self.min_rows:
                return None
            n = rng.randint(self.min_rows, min(20, self.max_rows, len(rows)))
            chosen = tuple(sorted(rng.sample(rows, n)))
            names = [t.rows[i][0] for i in chosen]
            sep = "; " if any("," in x for x in names) else ", "
            return Selection("explicit", chosen,
                             f"the following {n} {t.plural}: {sep.join(names)}",
                             {"names": names})
        if filt:
            return Selection("category", tuple(rows), f"all {t.scope}{filt_text}", filt)
        return Selection("all", tuple(rows), f"all {t.scope}", {})

    # -- columns, query, gold -----------------------------------------------------------------
    def pick_columns(self, rows: Sequence[int]) -> list[int] | None:
        t = self.table
        seen = {norm_column(t.key.name)}
        usable = []
        for c, col in enumerate(t.columns, 1):
            norm = norm_column(col.name)
            if norm in seen or not all(t.rows[i][c] for i in rows):
                continue
            seen.add(norm)
            usable.append(c)
        if len(usable) < MIN_ATTRS:
            return None
        n = self.rng.randint(MIN_ATTRS, min(MAX_ATTRS, len(usable)))
        return sorted(self.rng.sample(usable, n))

    def make_query(self, sel: Selection, cols: Sequence[int]) -> tuple[str, int]:
        t, rng = self.table, self.rng
        attrs = [t.columns[c - 1].attr for c in cols]
        attr_text = "the " + (", the ".join(attrs[:-1]) + " and the " + attrs[-1])
        p = rng.randrange(len(INTROS))
        intro = INTROS[p].format(sel=sel.text, attrs=attr_text)
        headers = [t.key.name] + [t.columns[c - 1].name for c in cols]
        notes = []
        numeric = [t.columns[c - 1].name for c in cols if t.columns[c - 1].kind == "number"]
        if numeric:
            notes.append("Give " + ", ".join(numeric) + " as Arabic numerals, without units.")
        if any(t.columns[c - 1].kind == "url" for c in cols):
            notes.append("Give web addresses as full URLs.")
        query = (f"{intro}\n\n{rng.choice(TABLE_LINES)}\n{', '.join(headers)}\n"
                 + "".join(n + "\n" for n in notes) + "\n" + FORMAT_TAIL)
        return query, p

    def generate(self, count: int) -> list[tuple[Selection, list[int], str, dict[str, Any]]]:
        """Up to ``count`` distinct tasks as ``(selection, columns, query, info)``."""
        out = []
        seen: set[tuple[tuple[int, ...], tuple[int, ...]]] = set()
        attempts = 0
        while len(out) < count and attempts < 20 * count:
            attempts += 1
            sel = self.select()
            if sel is None or not self.min_rows <= len(sel.rows) <= self.max_rows:
                continue
            cols = self.pick_columns(sel.rows)
            if cols is None:
                continue
            sig = (tuple(sorted(sel.rows)), tuple(cols))
            if sig in seen:
                continue
            seen.add(sig)
            query, phrasing = self.make_query(sel, cols)
            out.append((sel, cols, query, {"phrasing": phrasing}))
        return out

    def to_task(self, instance_id: str, sel: Selection, cols: Sequence[int], query: str,
                meta: dict[str, Any]) -> Task:
        t = self.table
        columns = [t.key, *(t.columns[c - 1] for c in cols)]
        headers = tuple(col.name for col in columns)
        norms = tuple(norm_column(h) for h in headers)
        pipeline = {norms[0]: column_eval(t.key, is_key=True)}
        pipeline.update({n: column_eval(col) for n, col in zip(norms[1:], columns[1:])})
        rows = tuple(tuple(t.rows[i][c] for c in (0, *cols)) for i in sel.rows)
        return Task(instance_id=instance_id, query=query, language="en",
                    unique_columns=(norms[0],), required=norms, eval_pipeline=pipeline,
                    gold=GoldTable(columns=headers, rows=rows),
                    meta={**meta, "selection": sel.kind, "filter": sel.filter})
