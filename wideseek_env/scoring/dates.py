"""A small, fast, deterministic date parser standing in for ``dateparser`` in ``norm_date``.

The official evaluator calls ``dateparser.parse(text, settings={"PREFER_DAY_OF_MONTH": "first"})``
for every date cell. That library is slow (milliseconds per call), reads anything (``"nan"`` and
``"NA"`` become dates, ``"12"`` becomes the 1st of December) and fills missing parts from the
current date, so its results change with the calendar. This parser reads the formats that occur
in WideSearch gold tables and in answers to them, and returns ``None`` for the rest:

* ISO-like ``2024-04-11``, ``2024/4/1``, ``2024.04.11``, ``2016-09`` (a month: day 1), with an
  optional time part; a "month" above 12 with a day up to 12 is swapped (as dateparser does);
* numeric ``04/11/2024`` (month first, as dateparser's English default; day first when the first
  number exceeds 12), two-digit years as in ``strptime`` (69-99 -> 19xx, 00-68 -> 20xx);
* English month names, abbreviated or not, with weekday names, ordinals and commas ignored:
  ``Mar 05, 1981``, ``5 March 2021``, ``April 11th, 2024``, ``March 2021``, ``March 5``;
* Chinese ``2021年3月5日``, ``21年3月5日``, ``2021年3月``, ``3月5日``, ``10月`` (not ``2021年03月``,
  which dateparser does not read either);
* ``9/2021`` (month and year) and a bare four-digit year (``2019``, also ``-, 1984``);
* any of these with symbols or punctuation around them (``$2017/7/27``, ``(2017/7/27)``,
  ``2017/7/27%``), ``about`` before or after, or a ``UTC``/``GMT`` zone, which dateparser ignores;
* ``nan`` -- what a missing cell becomes -- as 1 August of :data:`REFERENCE_YEAR`, as dateparser
  reads it (so a missing gold date matches a missing answer, and not an unreadable one).

Missing parts are filled deterministically: a missing day is the 1st (``PREFER_DAY_OF_MONTH``),
a missing month is January and a missing year is :data:`REFERENCE_YEAR` (dateparser would take
today's month and year; see docs/scoring.md). Impossible dates (``2024-02-30``) are ``None``.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from functools import lru_cache

__all__ = ["REFERENCE_YEAR", "parse_date"]

REFERENCE_YEAR = 2026
"""Year given to dates written without one (``March 5``, ``3月5日``)."""

_MONTHS = {
    "jan": 1, "january": 1, "feb": 2, "february": 2, "mar": 3, "march": 3, "apr": 4,
    "april": 4, "may": 5, "jun": 6, "june": 6, "jul": 7, "july": 7, "aug": 8, "august": 8,
    "sep": 9, "sept": 9, "september": 9, "oct": 10, "october": 10, "nov": 11, "november": 11,
    "dec": 12, "december": 12,
}  # fmt: skip
_WEEKDAYS = frozenset(
    [
        "mon",
        "monday",
        "tue",
        "tues",
        "tuesday",
        "wed",
        "wednesday",
        "thu",
        "thur",
        "thurs",
        "thursday",
        "fri",
        "friday",
        "sat",
        "saturday",
        "sun",
        "sunday",
    ]
)
_DASHES = str.maketrans({"–": "-", "—": "-", "−": "-", "／": "/"})
_TIME_RE = re.compile(
    r"(?:[ t]+|(?<=\d)t)\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:z|[+-]\d{2}:?\d{2})?$"
)
# dateparser ignores symbols and punctuation around a date ("$2017/7/27", "2017/7/27%",
# "(2017/7/27)"), the word "about" and a UTC/GMT zone.
_NOISE_RE = re.compile(r"^about\b|about$|\W*\b(?:utc|gmt)\W*$|\*")


def _strip_edges(s: str) -> str:
    """Drop whitespace, punctuation and symbols (not zero-width format characters) at both ends."""
    start, end = 0, len(s)
    while start < end and (s[start].isspace() or unicodedata.category(s[start])[0] in "PS"):
        start += 1
    while end > start and (s[end - 1].isspace() or unicodedata.category(s[end - 1])[0] in "PS"):
        end -= 1
    return s[start:end]


_YMD_RE = re.compile(r"(\d{4})([-/.])(\d{1,2})(?:\2(\d{1,2}))?")
_MDY_RE = re.compile(r"(\d{1,2})([-/.])(\d{1,2})\2(\d{4}|\d{2})")
_YEAR_RE = re.compile(r"\d{4}")
_ZH_RE = re.compile(
    r"(?:(\d{4}|\d{2})年)?(\d{1,2})月(?:(\d{1,2})日)?(?:\s*[(（]?(?:星期|周)[一二三四五六日天][)）]?)?"
)
_MY_RE = re.compile(r"(\d{1,2})[-/.](\d{4})")
_WORD_TOKEN_RE = re.compile(r"([a-z]+)\.?|(\d+)(?:st|nd|rd|th)?|([\s,/-]+)")


def _make(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _two_digit_year(text: str) -> int:
    year = int(text)
    if len(text) == 2:
        year += 1900 if year >= 69 else 2000
    return year


def _parse_words(text: str) -> date | None:
    """English forms: a sequence of month-name, number, weekday and separator tokens."""
    numbers: list[str] = []
    months: list[int] = []
    order: list[str] = []
    pos = 0
    while pos < len(text):
        m = _WORD_TOKEN_RE.match(text, pos)
        if m is None:
            return None
        pos = m.end()
        word, number = m.group(1), m.group(2)
        if word is not None:
            if word in _MONTHS:
                months.append(_MONTHS[word])
                order.append("M")
            elif word not in _WEEKDAYS and word != "of":
                return None
        elif number is not None:
            numbers.append(number)
            order.append("Y" if len(number) == 4 else "N")
    if len(months) != 1:
        return None
    month = months[0]
    pattern = "".join(order)
    if pattern in ("MNY", "NMY"):  # Mar 5, 2021 / 5 March 2021
        return _make(int(numbers[1]), month, int(numbers[0]))
    if pattern == "NMN" and len(numbers[1]) == 2:  # 05-Sep-21
        return _make(_two_digit_year(numbers[1]), month, int(numbers[0]))
    if pattern == "YMN":  # 2021 March 5
        return _make(int(numbers[0]), month, int(numbers[1]))
    if pattern in ("MY", "YM"):
        return _make(int(numbers[0]), month, 1)
    if pattern in ("MN", "NM"):
        return _make(REFERENCE_YEAR, month, int(numbers[0]))
    if pattern == "M":
        return _make(REFERENCE_YEAR, month, 1)
    return None


@lru_cache(maxsize=65536)
def parse_date(text: str) -> date | None:
    """Parse one date cell (see the module docstring for the formats), or ``None``."""
    s = _strip_edges(text.translate(_DASHES).lower())
    s = _strip_edges(_TIME_RE.sub("", _NOISE_RE.sub("", s)))
    if not s:
        return None
    if s == "nan":  # a missing cell; dateparser reads "nan" as 1 August of the current year
        return _make(REFERENCE_YEAR, 8, 1)
    m = _YMD_RE.fullmatch(s)
    if m:
        year, month = int(m.group(1)), int(m.group(3))
        day = int(m.group(4)) if m.group(4) else 1
        if month > 12 and m.group(4) and day <= 12:
            month, day = day, month
        return _make(year, month, day)
    m = _MDY_RE.fullmatch(s)
    if m:
        first, second = int(m.group(1)), int(m.group(3))
        year = _two_digit_year(m.group(4))
        if first > 12:
            first, second = second, first
        return _make(year, first, second)
    if _YEAR_RE.fullmatch(s):
        return _make(int(s), 1, 1)
    m = _MY_RE.fullmatch(s)
    if m:
        return _make(int(m.group(2)), int(m.group(1)), 1)
    m = _ZH_RE.fullmatch(s)
    if m:
        year = _two_digit_year(m.group(1)) if m.group(1) else REFERENCE_YEAR
        if m.group(3) is None and m.group(1) and m.group(2).startswith("0"):
            return None  # dateparser reads "2023年05月" as nothing (but "2023年05月10日" fine)
        return _make(year, int(m.group(2)), int(m.group(3)) if m.group(3) else 1)
    if s.isascii():
        return _parse_words(s)
    return None
