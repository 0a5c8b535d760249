"""pandas' C tokenizer for delimited text, in Python (used by :mod:`.pdtable`).

The state machine of ``pandas/_libs/src/parser/tokenizer.c`` with ``read_csv``'s defaults: quote
character ``"``, doubled quotes inside quoted fields, quoted fields spanning lines, text after a
closing quote kept (non-strict mode), ``\n``, ``\r\n`` and a lone ``\r`` ending a line, blank
and whitespace-only lines skipped. A fast path handles text without ``\r`` line by line.
"""

from __future__ import annotations

__all__ = ["TableParseError", "tokenize"]


class TableParseError(ValueError):
    """The text cannot be read as a table (pandas would raise here)."""


def tokenize(text: str, sep: str) -> tuple[list[list[str]], list[int]]:
    """Split ``text`` into records of fields the way pandas' C tokenizer does.

    Returns the records and, for each, the 1-based line number where it starts (for error
    messages). Raises :class:`TableParseError` for a quoted field that never closes.
    """
    if "\r" in text or sep in ' \t"\n':
        return _tokenize_slow(text, sep)
    records: list[list[str]] = []
    starts: list[int] = []
    lines = text.split("\n")
    n_lines = len(lines)
    k = 0
    while k < n_lines:
        line = lines[k]
        k += 1
        if not line or not line.strip(" \t"):
            continue  # blank or whitespace-only line: skipped
        starts.append(k)
        if '"' not in line:
            records.append(line.split(sep))
            continue
        # A line with quotes: walk its fields; a quoted field may run on over later lines.
        fields: list[str] = []
        pos = 0
        while True:
            if line.startswith('"', pos):
                chunks: list[str] = []
                pos += 1
                while True:
                    close = line.find('"', pos)
                    if close < 0:  # the quoted field goes on to the next line
                        chunks.append(line[pos:])
                        if k >= n_lines:
                            raise TableParseError(
                                f"EOF inside a quoted field starting at line {starts[-1]}"
                            )
                        chunks.append("\n")
                        line = lines[k]
                        k += 1
                        pos = 0
                        continue
                    chunks.append(line[pos:close])
                    pos = close + 1
                    if line.startswith('"', pos):  # doubled quote: a literal one
                        chunks.append('"')
                        pos += 1
                        continue
                    break
                end = line.find(sep, pos)
                # Text after the closing quote is kept, up to the next separator.
                chunks.append(line[pos:] if end < 0 else line[pos:end])
                fields.append("".join(chunks))
            else:
                end = line.find(sep, pos)
                fields.append(line[pos:] if end < 0 else line[pos:end])
            if end < 0:
                break
            pos = end + 1
        records.append(fields)
    return records, starts


# States of the slow tokenizer (names follow pandas' tokenizer.c).
_START_RECORD, _START_FIELD, _IN_FIELD, _IN_QUOTED, _QUOTE_IN_QUOTED = range(5)
_EAT_CRNL, _EAT_CRNL_NOP, _WHITESPACE_LINE = range(5, 8)


def _tokenize_slow(text: str, sep: str) -> tuple[list[list[str]], list[int]]:
    records: list[list[str]] = []
    starts: list[int] = []
    fields: list[str] = []
    chars: list[str] = []
    state = _START_RECORD
    line_no = 1
    record_line = 1
    quote_line = 1
    line_start = 0
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if state == _START_RECORD:
            if c == "\n":
                line_no += 1
                i += 1
                continue
            if c == "\r":
                state = _EAT_CRNL_NOP
                i += 1
                continue
            if c in " \t" and c != sep:
                state = _WHITESPACE_LINE
                line_start = i
                i += 1
                continue
            state = _START_FIELD
            record_line = line_no
            continue  # handle c again as the start of a field
        if state == _WHITESPACE_LINE:
            if c == "\n":
                line_no += 1
                state = _START_RECORD
            elif c == "\r":
                state = _EAT_CRNL_NOP
            elif not (c in " \t" and c != sep):
                # Not a blank line after all: parse it from its first character.
                i = line_start
                state = _START_FIELD
                record_line = line_no
                continue
            i += 1
            continue
        if state == _EAT_CRNL_NOP:
            state = _START_RECORD
            line_no += 1
            if c == "\n":
                i += 1
            continue
        if state == _EAT_CRNL:
            records.append(fields)
            starts.append(record_line)
            fields = []
            state = _START_RECORD
            line_no += 1
            if c == "\n":
                i += 1
            continue  # otherwise a lone "\r" ended the line: parse c as a new record
        if state == _START_FIELD:
            if c == "\n":
                fields.append("")
                records.append(fields)
                starts.append(record_line)
                fields = []
                line_no += 1
                state = _START_RECORD
            elif c == "\r":
                fields.append("")
                state = _EAT_CRNL
            elif c == '"':
                quote_line = line_no
                state = _IN_QUOTED
            elif c == sep:
                fields.append("")
            else:
                chars.append(c)
                state = _IN_FIELD
            i += 1
            continue
        if state == _IN_FIELD:
            # Consume a run of ordinary characters at once.
            j = i
            while j < n and text[j] not in ("\n", "\r", sep):
                j += 1
            if j > i:
                chars.append(text[i:j])
                i = j
                continue
            fields.append("".join(chars))
            chars = []
            if c == "\n":
                records.append(fields)
                starts.append(record_line)
                fields = []
                line_no += 1
                state = _START_RECORD
            elif c == "\r":
                state = _EAT_CRNL
            else:
                state = _START_FIELD
            i += 1
            continue
        if state == _IN_QUOTED:
            j = text.find('"', i)
            if j < 0:
                raise TableParseError(f"EOF inside a quoted field starting at line {quote_line}")
            chunk = text[i:j]
            chars.append(chunk)
            line_no += chunk.count("\n") + chunk.count("\r") - chunk.count("\r\n")
            i = j + 1
            state = _QUOTE_IN_QUOTED
            continue
        # _QUOTE_IN_QUOTED
        if c == '"':
            chars.append('"')
            state = _IN_QUOTED
            i += 1
            continue
        if c in ("\n", "\r") or c == sep:
            fields.append("".join(chars))
            chars = []
            if c == "\n":
                records.append(fields)
                starts.append(record_line)
                fields = []
                line_no += 1
                state = _START_RECORD
            elif c == "\r":
                state = _EAT_CRNL
            else:
                state = _START_FIELD
            i += 1
            continue
        chars.append(c)  # text after a closing quote is kept (non-strict mode)
        state = _IN_FIELD
        i += 1
    # End of input.
    if state == _IN_QUOTED:
        raise TableParseError(f"EOF inside a quoted field starting at line {quote_line}")
    if state in (_IN_FIELD, _START_FIELD, _QUOTE_IN_QUOTED):
        fields.append("".join(chars))
        records.append(fields)
        starts.append(record_line)
    elif state == _EAT_CRNL:
        records.append(fields)
        starts.append(record_line)
    return records, starts
