"""WideSearch's per-cell preprocessing steps and metrics.

Preprocessing (applied to the response cell and the gold cell alike, in the listed order):

* ``norm_str``: lower-case, strip surrounding whitespace, remove every space and ``*``;
* ``extract_number``: drop ``,`` and keep the first number (``-1.5``, ``.5``, ``12%``), or
  ``"NULL"`` when there is none;
* ``norm_date``: the date as ``YYYY-MM-DD`` when :func:`.dates.parse_date` reads it, else the text
  unchanged.

Metrics (response first, gold second; each returns 0.0 or 1.0):

* ``exact_match``: equal after lower-casing;
* ``number_near``: both parse as floats (a ``%`` divides by 100) and
  ``|response - gold| <= |gold| * criterion``; when either does not parse, 1.0 only if neither
  parses and the texts are equal;
* ``date_near``: both read as dates at most 31 days apart, or neither reads as a date;
* ``url_match``: the sets of host names (``netloc``) of the URLs found in each are equal (so two
  cells without URLs match); a URL that :func:`urllib.parse.urlsplit` rejects contributes the
  text between ``://`` and the next ``/`` instead of crashing the evaluation (a documented fix);
* ``llm_judge``: decided by a :class:`~wideseek_env.scoring.judge.Judge`; without one it falls
  back to ``exact_match``;
* ``set_match`` (ours, not in WideSearch's vocabulary; for multi-valued cells such as "English,
  French and Spanish"): both cells are split into items at ``,`` ``;`` ``/`` ``|`` ``&``, line
  breaks, full-width separators and the word "and"; items are compared after ``norm_str``; 1.0
  when the two item sets are equal (order and separators aside), or, with a numeric criterion
  ``c``, when their Jaccard overlap is at least ``c``.

Every preprocessing step is a pure function of its input, so results are memoised.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from urllib.parse import urlsplit

from .dates import parse_date

__all__ = [
    "METRICS",
    "PREPROCESSORS",
    "date_near",
    "exact_match",
    "extract_number",
    "norm_date",
    "norm_str",
    "number_near",
    "set_match",
    "split_items",
    "url_match",
]

_NUMBER_RE = re.compile(r"[-+]?\d*\.\d+%?|[-+]?\d+\.?\d*%?")
# WideSearch's URL pattern, written out: after the scheme, a run of ASCII letters and of the
# characters from "$" to "_" (digits, upper case and most punctuation) plus "!".
_URL_RE = re.compile(r"http[s]?://[!$-_a-z]+")
_CACHE_SIZE = 1 << 17


@lru_cache(maxsize=_CACHE_SIZE)
def norm_str(content: str) -> str:
    """Lower-case, strip, and remove all spaces and ``*`` (markdown emphasis)."""
    return content.lower().strip().replace(" ", "").replace("*", "")


@lru_cache(maxsize=_CACHE_SIZE)
def extract_number(content: str) -> str:
    """The first number in the text once ``,`` is removed, or ``"NULL"``."""
    m = _NUMBER_RE.search(content.replace(",", ""))
    return m.group(0) if m else "NULL"


@lru_cache(maxsize=_CACHE_SIZE)
def norm_date(content: str) -> str:
    """The date as ``YYYY-MM-DD`` when it reads as one, else the text unchanged."""
    parsed = parse_date(content)
    return content if parsed is None else f"{parsed.year:04d}-{parsed.month:02d}-{parsed.day:02d}"


PREPROCESSORS: dict[str, Callable[[str], str]] = {
    "norm_str": norm_str,
    "extract_number": extract_number,
    "norm_date": norm_date,
}


def exact_match(response: str, target: str) -> float:
    return 1.0 if response == target or response.lower() == target.lower() else 0.0


def _to_number(text: str) -> float | None:
    try:
        if "%" in text:
            return float(text.replace("%", "")) / 100.0
        return float(text)
    except ValueError:
        return None


def number_near(response: str, target: str, criterion: float) -> float:
    r, t = _to_number(response), _to_number(target)
    if r is None or t is None:
        return 1.0 if r is None and t is None and response == target else 0.0
    return 1.0 if abs(r - t) <= abs(t) * criterion else 0.0


def date_near(response: str, target: str) -> float:
    r, t = parse_date(response), parse_date(target)
    if r is None or t is None:
        return 1.0 if r is None and t is None else 0.0
    return 1.0 if abs((r - t).days) <= 31 else 0.0


def _host(url: str) -> str:
    try:
        return urlsplit(url).netloc
    except ValueError:  # e.g. "Invalid IPv6 URL"; the official evaluator crashes here
        rest = url.split("://", 1)[1]
        return rest.split("/", 1)[0]


@lru_cache(maxsize=_CACHE_SIZE)
def _hosts(text: str) -> frozenset[str]:
    return frozenset(_host(u) for u in _URL_RE.findall(text))


def url_match(response: str, target: str) -> float:
    return 1.0 if _hosts(response) == _hosts(target) else 0.0


_ITEM_SEP = re.compile(r"\s*(?:[,;/|&\n，；、]|\band\b)\s*", re.IGNORECASE)


@lru_cache(maxsize=_CACHE_SIZE)
def split_items(content: str) -> frozenset[str]:
    """The items of a multi-valued cell, each after ``norm_str`` (empty items dropped)."""
    return frozenset(x for x in (norm_str(p) for p in _ITEM_SEP.split(content)) if x)


def set_match(response: str, target: str, criterion: float | None = None) -> float:
    r, t = split_items(response), split_items(target)
    if criterion is None or isinstance(criterion, str):
        return 1.0 if r == t else 0.0
    union = r | t
    return 1.0 if not union or len(r & t) / len(union) >= criterion else 0.0


METRICS: dict[str, Callable[[str, str, float], float]] = {
    "exact_match": lambda r, t, c: exact_match(r, t),
    "number_near": number_near,
    "date_near": lambda r, t, c: date_near(r, t),
    "url_match": lambda r, t, c: url_match(r, t),
    "llm_judge": lambda r, t, c: exact_match(r, t),  # the no-judge fallback
    "set_match": set_match,
}
