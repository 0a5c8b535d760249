"""Surface forms of values, and the transformations from a surface form to a gold cell.

A v2 world states every fact in *source* formats that vary from page to page: numbers with or
without separators, with scale words ("1.23 million") or in other units ("942 sq mi" for an area
kept in km²), dates in several styles ("17 October 1828", "Oct. 17, 1828", "1828-10-17"), lists
written as prose ("English, French and Spanish") or with other separators. A task states the
format it wants ("areas in square kilometres, rounded to whole numbers", "dates as YYYY-MM-DD"),
and its gold cell is what that request makes of one surface form on one page.

Two halves, used by the generator and by the answerability checker alike:

- **writing**: :func:`number_surface`, :func:`date_surface`, :func:`list_surface` turn a value
  into one surface string (the style is a parameter; the generator draws it);
- **reading**: :func:`derive` applies a :class:`Transform` (a small JSON-able record: what kind of
  value, which unit and scale to give, how many decimals, which date style) to a surface string.
  The checker re-reads the surface from the page and calls :func:`derive` again, so a gold cell
  is proved by the page, not by the generator's memory.

Everything here is pure and deterministic.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any, Literal

# ------------------------------------------------------------------------------ units


@dataclass(frozen=True)
class Unit:
    """A unit of one dimension: ``factor`` converts a value in this unit to the dimension's base
    unit (``offset`` is added first, for temperatures). ``names`` are how pages write it (the
    first is the short symbol)."""

    id: str
    dim: str
    names: tuple[str, ...]
    factor: float = 1.0
    offset: float = 0.0


UNITS: dict[str, Unit] = {u.id: u for u in (
    Unit("km2", "area", ("km²", "square kilometres", "sq km")),
    Unit("mi2", "area", ("sq mi", "square miles"), 2.589988110336),
    Unit("ha", "area", ("ha", "hectares"), 0.01),
    Unit("m", "length", ("m", "metres", "meters")),
    Unit("ft", "length", ("ft", "feet"), 0.3048),
    Unit("pm", "small_length", ("pm", "picometres")),
    Unit("angstrom", "small_length", ("Å", "ångström"), 100.0),
    Unit("g_cm3", "density", ("g/cm³", "grams per cubic centimetre")),
    Unit("kg_m3", "density", ("kg/m³", "kilograms per cubic metre"), 0.001),
    Unit("u", "mass", ("u", "Da", "g/mol")),
    Unit("K", "temperature", ("K", "kelvin")),
    Unit("C", "temperature", ("°C", "degrees Celsius"), 1.0, 273.15),
    Unit("pct", "share", ("%", "percent")),
    Unit("count", "count", ("",)),
    Unit("year", "year", ("",)),
    Unit("passengers", "count", ("passengers",)),
)}
SCALE_WORDS = {"thousand": 1e3, "million": 1e6, "billion": 1e9}


def convert(value: float, from_unit: str, to_unit: str) -> float:
    """``value`` in ``from_unit`` expressed in ``to_unit`` (same dimension)."""
    a, b = UNITS[from_unit], UNITS[to_unit]
    if a.dim != b.dim:
        raise ValueError(f"cannot convert {a.id} ({a.dim}) to {b.id} ({b.dim})")
    base = (value + a.offset) * a.factor
    return base / b.factor - b.offset


# ------------------------------------------------------------------------------ numbers

NumberStyle = Literal["sep", "plain", "space", "scale"]


def _group(text: str, sep: str) -> str:
    whole, _, frac = text.partition(".")
    neg = whole.startswith("-")
    digits = whole.lstrip("-")
    groups = []
    while len(digits) > 3:
        groups.insert(0, digits[-3:])
        digits = digits[:-3]
    groups.insert(0, digits)
    out = ("-" if neg else "") + sep.join(groups)
    return out + ("." + frac if frac else "")


def fmt_decimal(value: float, decimals: int) -> str:
    """``value`` rounded half away from zero to ``decimals`` places, without separators."""
    q = 10 ** decimals
    scaled = abs(value) * q
    rounded = math.floor(scaled + 0.5 + 1e-9)
    sign = "-" if value < 0 and rounded else ""
    whole, frac = divmod(rounded, q)
    return f"{sign}{whole}" + (f".{frac:0{decimals}d}" if decimals else "")


def number_surface(value: float, unit: str, decimals: int, style: NumberStyle,
                   unit_name: int = 0) -> str:
    """One way a page writes ``value`` (in ``unit``, with ``decimals`` places): ``sep``
    ``1,234,567 km²``, ``plain`` ``1234567 km²``, ``space`` ``1 234 567 km²``, ``scale``
    ``1.23 million km²`` (three significant figures; only for values of a million or more, else
    ``sep``). ``unit_name`` picks one of the unit's names."""
    text = fmt_decimal(value, decimals)
    if style == "scale" and abs(value) >= 1e6:
        word = "billion" if abs(value) >= 1e9 else "million"
        scaled = value / SCALE_WORDS[word]
        places = max(0, 2 - math.floor(math.log10(abs(scaled))))
        text = f"{fmt_decimal(scaled, places)} {word}"
    elif style in ("sep", "scale"):
        text = _group(text, ",")
    elif style == "space":
        text = _group(text, " ")
    names = UNITS[unit].names
    name = names[unit_name % len(names)]
    if not name:
        return text
    return f"{text}{name}" if name in ("%",) else f"{text} {name}"


def surface_precision(surface: str) -> float:
    """The resolution of a number surface in its own unit (``1.23 million`` -> 10,000)."""
    m = _NUM.search(surface)
    if not m:
        raise ValueError(f"no number in {surface!r}")
    digits = m.group("num")
    frac = digits.split(".", 1)[1] if "." in digits else ""
    scale = SCALE_WORDS.get((m.group("scale") or "").lower(), 1.0)
    return scale * 10.0 ** (-len(frac))


_NUM = re.compile(r"(?P<num>[-−]?\d{1,3}(?:[, ]\d{3})+(?:\.\d+)?|[-−]?\d+(?:\.\d+)?)"
                  r"(?:\s*(?P<scale>thousand|million|billion)\b)?", re.IGNORECASE)


def read_number(surface: str) -> tuple[float, str | None]:
    """The value and the unit id of a number surface written by :func:`number_surface`."""
    m = _NUM.search(surface)
    if not m:
        raise ValueError(f"no number in surface {surface!r}")
    value = float(m.group("num").replace(",", "").replace(" ", "").replace("−", "-"))
    value *= SCALE_WORDS.get((m.group("scale") or "").lower(), 1.0)
    rest = surface[m.end():].strip().lower()
    unit = None
    if rest:
        best = 0
        for u in UNITS.values():
            for name in u.names:
                if name and rest.startswith(name.lower()) and len(name) > best:
                    unit, best = u.id, len(name)
    return value, unit


# ------------------------------------------------------------------------------ dates

DateStyle = Literal["dmy", "mdy", "iso", "abbr", "year"]
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
_ABBR = ("Jan.", "Feb.", "Mar.", "Apr.", "May", "June", "July", "Aug.", "Sept.", "Oct.",
         "Nov.", "Dec.")


def date_surface(d: date, style: DateStyle) -> str:
    """``17 October 1828`` (dmy), ``October 17, 1828`` (mdy), ``1828-10-17`` (iso),
    ``Oct. 17, 1828`` (abbr), ``1828`` (year)."""
    if style == "dmy":
        return f"{d.day} {MONTHS[d.month - 1]} {d.year}"
    if style == "mdy":
        return f"{MONTHS[d.month - 1]} {d.day}, {d.year}"
    if style == "iso":
        return d.isoformat()
    if style == "abbr":
        return f"{_ABBR[d.month - 1]} {d.day}, {d.year}"
    if style == "year":
        return str(d.year)
    raise ValueError(f"unknown date style {style!r}")


_MONTH_NUM = {m.lower(): i for i, m in enumerate(MONTHS, 1)}
_MONTH_NUM.update({a.lower().rstrip("."): i for i, a in enumerate(_ABBR, 1)})
_DMY = re.compile(r"^(\d{1,2}) ([A-Za-z]+) (\d{4})$")
_MDY = re.compile(r"^([A-Za-z]+)\.? (\d{1,2}), (\d{4})$")
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def read_date(surface: str) -> date:
    """The date a surface written by :func:`date_surface` (not ``year``) states."""
    s = surface.strip()
    if m := _ISO.match(s):
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    if m := _DMY.match(s):
        return date(int(m.group(3)), _MONTH_NUM[m.group(2).lower()], int(m.group(1)))
    if m := _MDY.match(s):
        return date(int(m.group(3)), _MONTH_NUM[m.group(1).lower().rstrip(".")], int(m.group(2)))
    raise ValueError(f"not a date surface: {surface!r}")


# ------------------------------------------------------------------------------ lists

ListStyle = Literal["and", "semicolon", "dot"]
_LIST_SPLIT = re.compile(r"\s*(?:,\s*and\s+|;\s*|,\s*|\s+and\s+|\s+·\s+)\s*")


def list_surface(items: list[str], style: ListStyle) -> str:
    """``English, French and Spanish`` (and), ``English; French; Spanish`` (semicolon),
    ``English · French · Spanish`` (dot)."""
    if style == "and":
        return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
    if style == "semicolon":
        return "; ".join(items)
    if style == "dot":
        return " · ".join(items)
    raise ValueError(f"unknown list style {style!r}")


def list_style_for(items: list[str], preferred: ListStyle) -> ListStyle:
    """``preferred``, unless an item holds a comma or " and " (then ``semicolon``: the only
    style that reads back unambiguously)."""
    if preferred == "and" and any("," in i or " and " in i for i in items):
        return "semicolon"
    if preferred == "dot" and any("·" in i for i in items):
        return "semicolon"
    return preferred


def read_list(surface: str) -> list[str]:
    """The items of a list surface (any style of :func:`list_surface`)."""
    s = surface.strip()
    if ";" in s:
        parts = s.split(";")
    elif " · " in s:
        parts = s.split(" · ")
    else:
        parts = _LIST_SPLIT.split(s)
    return [p.strip() for p in parts if p.strip()]


# ------------------------------------------------------------------------------ transforms

Op = Literal["text", "number", "date", "list", "year"]


@dataclass(frozen=True)
class Transform:
    """What a task's request makes of a surface string (kept with every gold cell).

    ``text``: the surface itself; ``number``: read the number (and its unit, else
    ``from_unit``), convert to ``unit``, divide by ``scale``, round to ``decimals``;
    ``date``: read the date and write it in ``style``; ``year``: the four-digit year of a date
    surface or the number itself; ``list``: the items joined by ``", "``.
    """

    op: Op
    unit: str = ""
    from_unit: str = ""
    scale: float = 1.0
    decimals: int = 0
    style: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The fields that differ from their defaults (compact JSON)."""
        defaults = Transform("text")
        return {k: v for k, v in asdict(self).items()
                if k == "op" or v != getattr(defaults, k) or type(v) is not type(
                    getattr(defaults, k))}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Transform:
        return cls(**d)


def derive(surface: str, t: Transform) -> str:
    """The gold cell ``t`` makes of ``surface``; ``ValueError`` when the surface does not read."""
    if t.op == "text":
        return surface.strip()
    if t.op == "number":
        value, unit = read_number(surface)
        value = convert(value, unit or t.from_unit or t.unit, t.unit) if t.unit else value
        return fmt_decimal(value / t.scale, t.decimals)
    if t.op == "date":
        return date_surface(read_date(surface), t.style)  # type: ignore[arg-type]
    if t.op == "year":
        s = surface.strip()
        return s if re.fullmatch(r"\d{4}", s) else str(read_date(s).year)
    if t.op == "list":
        return ", ".join(read_list(surface))
    raise ValueError(f"unknown transform op {t.op!r}")
