"""Find the answer table in a model's response, and render tables the reader gets back.

Extraction follows the official WideSearch evaluator step by step (see docs/scoring.md):

1. the text of the first fenced block opened by ```` ```markdown ````; without one, and when the
   response has at least four ``|``, the run of lines starting at the first ``|`` (the first line
   from that ``|`` on, then every following line that starts with ``|``);
2. its first line has its spaces removed and is lower-cased (the header); every line is stripped,
   lines made only of ``|``, ``-``, ``:`` and spaces (alignment rows, blank lines) and lines
   without ``|`` are dropped, and every cell is stripped;
3. the lines are read as ``|``-separated values the way pandas reads them (quotes, implicit
   index, width errors; :mod:`.pdtable`), and columns named ``Unnamed: i`` (from the empty cells
   before the first and after the last ``|``) are dropped.

One documented fix: when the response has several ```` ```markdown ```` blocks and the first holds
no table line (a model echoing the prompt's ```` ```markdown {data_content}``` ```` format), the
first block that holds one is used.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .pdtable import Frame, TableParseError, build_frame, tokenize

__all__ = ["extract_frame", "extract_table", "read_markdown_table", "render_markdown_table"]

_BLOCK_RE = re.compile(r"```markdown(.*?)```", re.DOTALL)
_PIPE_RUN_RE = re.compile(r"(?:\|.*\n?)+")
_FILLER = "|- :"
_CELL_SPACE_RE = re.compile(r"\s*\|\s*")
_LINE_BREAK_RE = re.compile(r"\r\n|\r|\n")


def _table_lines(text: str, lower_header: bool = True) -> list[str]:
    """Step 2 above: the lines the evaluator hands to the CSV reader."""
    lines = text.strip().split("\n")
    if lower_header:
        lines[0] = lines[0].replace(" ", "").lower()
    kept = []
    for line in lines:
        line = line.strip()
        # ``not line.strip("|- :")``: every character is one of "|- :" (alignment row, blank).
        if "|" not in line or not line.strip(_FILLER):
            continue
        # Strip every cell: the same as splitting on "|", str.strip() and joining again
        # (``\s`` and str.strip() share Python's definition of whitespace).
        kept.append(_CELL_SPACE_RE.sub("|", line))
    return kept


def _table_lines_of(response: str, lower_header: bool = True) -> list[str] | None:
    """Steps 1-2 above: the table lines of the response, or ``None`` without a table."""
    blocks = _BLOCK_RE.findall(response)
    if blocks:
        first_lines = None
        for block in blocks:
            lines = _table_lines(block, lower_header)
            if lines:
                return lines
            if first_lines is None:
                first_lines = lines
        return first_lines
    first = response.find("|")
    if first < 0 or response.count("|") < 4:
        return None
    last = response.rfind("|")
    start = max(response.rfind("\n", 0, first), 0)
    end = response.find("\n", last)
    if end < 0:
        end = len(response)
    match = _PIPE_RUN_RE.search(response, start, end)
    return _table_lines(match.group(0), lower_header) if match else None


def extract_frame(response: str) -> Frame | None:
    """The answer table as a column-wise :class:`Frame`, or ``None`` when there is none.

    ``None`` covers every way the official evaluator fails to read a table: no table at all, no
    line with a ``|``, an unclosed quote, a row wider than the header and the first row.
    """
    lines = _table_lines_of(response)
    if not lines:
        return None
    try:
        records, starts = tokenize("\n".join(lines), "|")
        frame = build_frame(records, starts)
    except TableParseError:
        return None
    keep = [i for i, name in enumerate(frame.names) if not name.startswith("Unnamed")]
    if len(keep) == len(frame.names):
        return frame
    return Frame(tuple(frame.names[i] for i in keep), tuple(frame.columns[i] for i in keep))


def extract_table(response: str) -> tuple[list[str], list[list[str]]] | None:
    """The answer table as ``(header, rows)`` of raw cell strings, or ``None`` if there is none.

    Header names are as the evaluator sees them before column-name normalisation (the first
    table line lower-cased without spaces); cells are stripped, missing cells are ``""``.
    """
    frame = extract_frame(response)
    if frame is None:
        return None
    rows = [list(row) for row in zip(*frame.columns)] if frame.columns else []
    return list(frame.names), rows


def read_markdown_table(text: str) -> tuple[list[str], list[list[str]]]:
    """Read a gold table written in markdown (e.g. the WideSeek-R1 ``answer`` field).

    Same rules as :func:`extract_table` except that the header keeps its case and spaces.
    Raises :class:`~.pdtable.TableParseError` when there is no readable table.
    """
    lines = _table_lines_of(text, lower_header=False)
    if not lines:
        raise TableParseError("no markdown table found")
    records, starts = tokenize("\n".join(lines), "|")
    frame = build_frame(records, starts)
    keep = [i for i, name in enumerate(frame.names) if not name.startswith("Unnamed")]
    rows = [list(row) for row in zip(*(frame.columns[i] for i in keep))]
    return [frame.names[i] for i in keep], rows


def _render_cell(value: str) -> str:
    text = _LINE_BREAK_RE.sub(" ", value).strip()
    if text.startswith('"') or "|" in text:
        # CSV-quote: the official reader keeps a quoted "|" and returns the inner text.
        return '"' + text.replace('"', '""') + '"'
    return text


def render_markdown_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Render a table as a ```` ```markdown ```` block that :func:`extract_table` reads back.

    Cells are stripped and line breaks become spaces (a markdown row is one line). A cell that
    starts with ``"`` or contains ``|`` is written CSV-quoted (``"a|b"``), which the official
    evaluator's reader (pandas) turns back into the cell text; a row whose cells are all made of
    ``-``, ``:`` and spaces (or empty) gets its first cell quoted so it is not taken for an
    alignment row. A cell containing ```` ``` ```` would end the block early; no escape exists for
    it in the official reader, so avoid such cells.
    """
    width = len(columns)

    def line(values: Sequence[str]) -> str:
        cells = [_render_cell(str(c)) for c in values]
        if cells and all(not c.strip(_FILLER) for c in cells):
            cells[0] = f'"{cells[0]}"'  # "" or "-" still reads back as the same cell
        return "| " + " | ".join(cells) + " |"

    lines = [line(columns), "|" + "---|" * width]
    for row in rows:
        if len(row) != width:
            raise ValueError(f"row has {len(row)} cells, the header has {width}: {row!r}")
        lines.append(line(row))
    return "```markdown\n" + "\n".join(lines) + "\n```"
