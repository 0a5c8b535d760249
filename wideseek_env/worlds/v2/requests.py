"""What a task asks of each column: the format it wants, how it is scored, and which surface forms
can prove its gold cell.

A :class:`Request` couples a :class:`~.surface.Transform` (how a surface becomes the gold cell),
the sentence of the query that states the format (``Give Land Area in square miles, rounded to
whole numbers.``) and the WideSearch evaluation of the column (preprocess, metric, criterion).
Lists are scored by ``set_match`` (order-free, see docs/scoring.md).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from wideseek_env.tasks import ColumnEval
from wideseek_env.worlds.v2 import surface as S
from wideseek_env.worlds.v2.model import AttrSpec
from wideseek_env.worlds.v2.pages import ALT_DECIMALS, Surface

JUDGE_CRITERION = (
    "It is sufficient if the semantics are approximately the same as the reference answer or if "
    "they point to the same entity. There is no need for a word-for-word correspondence."
)
UNIT_WORDS = {"km2": "square kilometres", "mi2": "square miles", "ha": "hectares", "m": "metres",
              "ft": "feet", "pm": "picometres", "angstrom": "ångströms", "g_cm3": "g/cm³",
              "kg_m3": "kg/m³", "u": "daltons (u)", "K": "kelvin", "C": "degrees Celsius",
              "pct": "per cent"}
#: Text attributes scored by the judge (free names), the rest by exact match.
JUDGED_TEXT = frozenset({"discoverer", "demonym", "currency", "subregion"})


@dataclass(frozen=True)
class Request:
    """One column's wanted format: ``transform`` (surface -> gold), the query's ``note`` about it
    (may be empty) and the column's ``evaluation``."""

    transform: S.Transform
    note: str
    evaluation: ColumnEval


def key_request() -> Request:
    return Request(S.Transform("text"), "", ColumnEval(("norm_str",), ("exact_match",), None))


def year_request() -> Request:
    return Request(S.Transform("text"), "",
                   ColumnEval(("extract_number",), ("number_near",), 0.0))


def _decimals_text(d: int) -> str:
    return "rounded to whole numbers" if d == 0 else \
        f"rounded to {d} decimal place{'s' if d > 1 else ''}"


def number_options(spec: AttrSpec, values: Sequence[float]) -> list[tuple[str, float, int]]:
    """The ``(unit, scale, decimals)`` a task may ask for this attribute."""
    out: list[tuple[str, float, int]] = []
    for unit in (spec.unit, *spec.alt_units):
        d = spec.decimals if unit == spec.unit else ALT_DECIMALS.get(unit, 0)
        out.append((unit, 1.0, min(d, 2)))
        if d > 1:
            out.append((unit, 1.0, d - 1))
        if 0 < d <= 1:
            out.append((unit, 1.0, 0))
    mid = statistics.median(abs(v) for v in values) if values else 0
    if spec.unit in ("count", "passengers") and mid >= 1e4:
        out.append((spec.unit, 1e3, 1))
    if spec.unit in ("count", "passengers") and mid >= 1e5:
        out.append((spec.unit, 1e6, 2))
    return list(dict.fromkeys(out))


def number_request(spec: AttrSpec, header: str, option: tuple[str, float, int]) -> Request:
    unit, scale, decimals = option
    t = S.Transform("number", unit=unit, from_unit=spec.unit if spec.unit in ("count", "year",
                    "passengers") else "", scale=scale, decimals=decimals)
    if spec.unit == "year":
        note = ""
    elif scale == 1e6:
        note = f"Give {header} in millions, {_decimals_text(decimals)} (e.g. 1.25 for 1,250,000)."
    elif scale == 1e3:
        note = f"Give {header} in thousands, {_decimals_text(decimals)} (e.g. 12.3 for 12,300)."
    elif unit in UNIT_WORDS:
        note = f"Give {header} in {UNIT_WORDS[unit]}, {_decimals_text(decimals)}, without the unit."
    else:
        note = f"Give {header} as plain numbers, {_decimals_text(decimals)}."
    tol = spec.tolerance
    return Request(t, note, ColumnEval(("extract_number",), ("number_near",), float(tol)))


DATE_OPTIONS = ("iso", "mdy", "dmy", "year")


def date_request(header: str, style: str) -> Request:
    if style == "iso":
        return Request(S.Transform("date", style="iso"), f"Write {header} as YYYY-MM-DD.",
                       ColumnEval(("norm_date",), ("date_near",), None))
    if style == "mdy":
        return Request(S.Transform("date", style="mdy"),
                       f"Write {header} with the month spelled out, e.g. March 5, 1850.",
                       ColumnEval(("norm_date",), ("date_near",), None))
    if style == "dmy":
        return Request(S.Transform("date", style="dmy"),
                       f"Write {header} day first, e.g. 5 March 1850.",
                       ColumnEval(("norm_date",), ("date_near",), None))
    return Request(S.Transform("year"), f"For {header}, give the year only.",
                   ColumnEval(("extract_number",), ("number_near",), 0.0))


def text_request(spec: AttrSpec) -> Request:
    if spec.key in JUDGED_TEXT:
        return Request(S.Transform("text"), "",
                       ColumnEval(("norm_str",), ("llm_judge",), JUDGE_CRITERION))
    return Request(S.Transform("text"), "", ColumnEval(("norm_str",), ("exact_match",), None))


def list_request(header: str) -> Request:
    return Request(S.Transform("list"),
                   f"Put all {header} of a row in one cell, separated by commas.",
                   ColumnEval((), ("set_match",), None))


def verbatim_rate(request: Request, facts: Sequence[Sequence[Surface]],
                  values: Sequence[float | None]) -> float:
    """Share of ``facts`` (each the surfaces of one cell) whose gold cell in ``request``'s format
    is written verbatim in one of its own surfaces: what a request that needs no normalisation
    looks like (a task prefers formats the pages do not use)."""
    hits = n = 0
    for surfaces, value in zip(facts, values):
        ok = [s for s in surfaces if not s.on_list and usable(s, request, value)]
        if not ok:
            continue
        gold = S.derive(ok[0].text, request.transform)
        n += 1
        hits += any(contains_token(s.text, gold) for s in surfaces)
    return hits / n if n else 1.0


def contains_token(text: str, token: str) -> bool:
    """``token`` occurs in ``text`` as a whole token: not inside a word, and a number not inside
    a longer number (``2440`` is not in ``2,440.3`` nor in ``2440.3``)."""
    start = text.find(token)
    while start >= 0:
        end = start + len(token)
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        after2 = text[end + 1] if end + 1 < len(text) else " "
        if not (before.isalnum() or before in "_.,") and not (
                after.isalnum() or after == "_" or (after in ".," and after2.isdigit())):
            return True
        start = text.find(token, start + 1)
    return False


def usable(s: Surface, request: Request, value: float | None = None) -> bool:
    """Can ``s`` prove a gold cell in ``request``'s format? Numbers need a surface at least as
    precise as the rounding asked for (or within a fifth of the tolerance of the value)."""
    t = request.transform
    if t.op != "number":
        return True
    unit = s.unit or t.from_unit or t.unit
    if t.unit and unit != t.unit and S.UNITS[unit].dim != S.UNITS[t.unit].dim:
        return False
    step = abs(S.convert(s.precision, unit, t.unit) - S.convert(0.0, unit, t.unit)) if t.unit \
        else s.precision
    step /= t.scale
    if step <= 10.0 ** (-t.decimals) * 1.0001:
        return True
    tol = request.evaluation.criterion
    return bool(value and isinstance(tol, float) and step <= 0.2 * tol * abs(value) / t.scale)
