"""Gold tables as CSV files: read as pandas tokenizes them (raw cell strings), checked against a
task's required columns, and written so that both pandas and this reader read them back unchanged.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path

from wideseek_env.scoring.gold import gold_column_index
from wideseek_env.scoring.pdtable import TableParseError, tokenize
from wideseek_env.tasks.records import GoldTable, TaskFormatError


def read_gold_csv(path: str | os.PathLike[str]) -> GoldTable:
    """Read a gold CSV (UTF-8, BOM allowed) into raw cell strings, as pandas tokenizes it."""
    try:
        text = Path(path).read_bytes().decode("utf-8")  # keep "\r\n" inside cells, as pandas does
    except UnicodeDecodeError as exc:
        raise TaskFormatError(path, None, None, f"not UTF-8: {exc}") from None
    text = text.removeprefix("\ufeff")
    try:
        records, starts = tokenize(text, ",")
    except TableParseError as exc:
        raise TaskFormatError(path, None, None, str(exc)) from None
    if not records:
        raise TaskFormatError(path, 1, None, "empty gold table (no header)")
    header = tuple(records[0])
    rows = []
    for record, line in zip(records[1:], starts[1:]):
        if len(record) != len(header):
            raise TaskFormatError(
                path, line, None, f"row has {len(record)} fields, the header has {len(header)}"
            )
        rows.append(tuple(record))
    return GoldTable(header, tuple(rows))


def check_gold(gold: GoldTable, required: Sequence[str], path: str, line: int | None) -> None:
    index = gold_column_index(gold.columns)
    missing = [c for c in required if c not in index]
    if missing:
        raise TaskFormatError(
            path,
            line,
            "evaluation.required",
            f"columns {missing} not in the gold header {list(gold.columns)}",
        )


def write_gold_csv(gold: GoldTable, path: Path) -> None:
    buf = io.StringIO()
    minimal = csv.writer(buf, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    quote_all = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    for row in (gold.columns, *gold.rows):
        # A one-column row of blanks would be a blank line, which readers skip: quote it.
        writer = quote_all if len(row) == 1 and not row[0].strip(" \t") else minimal
        writer.writerow(row)
    path.write_text("\ufeff" + buf.getvalue(), encoding="utf-8", newline="")
