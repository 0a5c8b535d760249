"""Test domains of the default v2 world: chemical elements and their naturally occurring isotopes
(package ``periodictable``).

Identifiers stay real (names, symbols, atomic and mass numbers, period, block, which isotopes
occur naturally); measured values are counterfactual: atomic and isotopic masses, densities,
covalent radii and abundances are moved by a few per cent (abundances renormalised to 100 % per
element), and melting points, discovery years and discoverers are generated. An element's atomic
mass is the abundance-weighted mean of its isotopes' masses in this world, as in ours.
"""

from __future__ import annotations

import math
import random
from datetime import date, timedelta

from wideseek_env.worlds.sources_default import _block as block_of
from wideseek_env.worlds.sources_default import _period as period_of
from wideseek_env.worlds.v2.model import AttrSpec, Domain, Entity
from wideseek_env.worlds.v2.names import person_name


def element_attrs() -> dict[str, AttrSpec]:
    attrs = [
        AttrSpec("symbol", "text", "Symbol", "chemical symbol", labels=("Sign", "Abbreviation"),
                 clauses=("is written {v} in formulas",), askable=False, filterable=False),
        AttrSpec("number", "number", "Atomic Number", "atomic number",
                 labels=("Z", "Proton count"), clauses=("has {v} protons in its nucleus",),
                 unit="count", tolerance=0.0, askable=False, filterable=False),
        AttrSpec("mass", "number", "Atomic Mass", "standard atomic weight",
                 labels=("Standard weight", "Atomic weight", "Ar"),
                 clauses=("weighs in at {v} per atom on average",
                          "has an average atomic weight of {v}"),
                 unit="u", decimals=4, tolerance=0.001),
        AttrSpec("density", "number", "Density", "density",
                 labels=("Specific mass", "Mass density", "ρ"),
                 clauses=("packs {v} at room temperature", "is {v} dense in its usual form"),
                 unit="g_cm3", alt_units=("kg_m3",), decimals=3, tolerance=0.05),
        AttrSpec("melting", "number", "Melting Point", "melting point",
                 labels=("Fusion point", "Melts at", "m.p."),
                 clauses=("turns liquid at {v}", "melts at {v}"),
                 unit="K", alt_units=("C",), decimals=1, tolerance=0.02),
        AttrSpec("radius", "number", "Covalent Radius", "covalent radius",
                 labels=("Bond radius", "Radius (covalent)", "r_cov"),
                 clauses=("forms bonds with a radius of {v}", "has a bonding radius of {v}"),
                 unit="pm", alt_units=("angstrom",), tolerance=0.05),
        AttrSpec("discovered", "date", "Discovery Date", "date of discovery",
                 labels=("First isolated", "Identified", "Discovered"),
                 clauses=("was first isolated on {v}", "was identified on {v}")),
        AttrSpec("discoverer", "text", "Discovered By", "discoverer",
                 labels=("Isolated by", "First described by", "Credited to"),
                 clauses=("was first isolated by {v}", "owes its discovery to {v}")),
        AttrSpec("period", "number", "Period", "period", labels=("Row", "Table row"),
                 clauses=("sits in row {v} of the table",), unit="count", tolerance=0.0,
                 askable=False),
        AttrSpec("block", "text", "Block", "block", labels=("Orbital block", "Sub-shell block"),
                 clauses=("fills the {v}",)),
        AttrSpec("isotopes", "list", "Natural Isotopes", "naturally occurring isotopes",
                 labels=("Stable forms", "Isotopes in nature", "Natural nuclides"),
                 clauses=("occurs in nature as {v}", "is found in nature as {v}")),
    ]
    return {a.key: a for a in attrs}


def isotope_attrs() -> dict[str, AttrSpec]:
    attrs = [
        AttrSpec("element", "ref", "Element", "element", labels=("Parent element", "Of"),
                 clauses=("is a nuclide of {v}",), ref="elements", askable=False),
        AttrSpec("mass", "number", "Isotopic Mass", "isotopic mass",
                 labels=("Nuclide mass", "Mass (u)", "Atomic mass"),
                 clauses=("has a mass of {v}", "weighs {v}"),
                 unit="u", decimals=5, tolerance=0.0001),
        AttrSpec("abundance", "number", "Natural Abundance", "natural abundance",
                 labels=("Share in nature", "Isotopic fraction", "Occurrence"),
                 clauses=("makes up {v} of the element in nature",
                          "accounts for {v} of natural samples"),
                 unit="pct", decimals=3, tolerance=0.02),
        AttrSpec("identified", "date", "First Identified", "date it was first identified",
                 labels=("Identified", "First observed", "Discovery"),
                 clauses=("was first observed on {v}", "was identified on {v}")),
        AttrSpec("spin", "text", "Nuclear Spin", "nuclear spin",
                 labels=("Spin-parity", "J^π", "Ground-state spin"),
                 clauses=("has a ground-state spin of {v}",)),
        AttrSpec("neutrons", "number", "Neutron Number", "neutron number",
                 labels=("N", "Neutrons"), clauses=("carries {v} neutrons",),
                 unit="count", tolerance=0.0, askable=False),
    ]
    return {a.key: a for a in attrs}


def _day(rng: random.Random, year: int) -> date:
    return date(year, 1, 1) + timedelta(days=rng.randrange(365))


def _nudge(rng: random.Random, x: float, lo: float, hi: float) -> float:
    return x * (1 + rng.choice((-1, 1)) * rng.uniform(lo, hi))


def science_domains(seed: int, limit: int | None = None) -> list[Domain]:
    import periodictable as pt

    elements, isotopes = [], []
    for el in pt.elements:
        if el.number == 0 or (limit is not None and el.number > limit):
            continue
        rng = random.Random(f"{seed}:v2:element:{el.number}")
        name = el.name.capitalize()
        natural = [(a, el[a]) for a in el.isotopes if el[a].abundance > 0]
        iso_ids = []
        if natural:
            shares = [_nudge(rng, iso.abundance, 0.02, 0.3) for _, iso in natural]
            total = sum(shares)
            for (a, iso), share in zip(natural, shares):
                mass = iso.mass + rng.choice((-1, 1)) * rng.uniform(0.002, 0.08)
                iso_id = f"isotopes/{el.number}-{a}"
                iso_ids.append((iso_id, mass, 100 * share / total))
                isotopes.append(Entity(
                    id=iso_id, domain="isotopes", key=(name, str(a)),
                    values={"element": f"elements/{el.number}", "mass": round(mass, 5),
                            "abundance": round(100 * share / total, 3),
                            "neutrons": float(a - el.number),
                            "identified": _day(rng, rng.randint(1910, 1975)),
                            "spin": "0+" if a % 2 == 0 and el.number % 2 == 0 else
                            f"{rng.choice((1, 3, 5, 7, 9))}/2{rng.choice('+-')}"},
                    source={"element": f"elements/{el.number}", "mass": iso.mass,
                            "abundance": iso.abundance, "neutrons": float(a - el.number)},
                    groups={"element": name, "period": f"period {period_of(el.number)}"},
                    title=f"{name}-{a}", aliases=(f"{el.symbol}-{a}",)))
        mass = (sum(m * s for _, m, s in iso_ids) / 100 if iso_ids
                else _nudge(rng, el.mass, 0.005, 0.03))
        values = {
            "symbol": el.symbol, "number": float(el.number), "mass": round(mass, 4),
            "period": float(period_of(el.number)), "block": block_of(el.number),
            "melting": round(math.exp(rng.gauss(math.log(1_200), 0.7)), 1),
            "discovered": _day(rng, rng.randint(1680, 1950) if el.number <= 100
                               else rng.randint(1950, 2010)),
            "discoverer": person_name(rng),
        }
        source = {"symbol": el.symbol, "number": float(el.number), "mass": el.mass,
                  "period": values["period"], "block": values["block"]}
        if el.density:
            values["density"] = round(_nudge(rng, el.density, 0.04, 0.25), 3)
            source["density"] = el.density
        radius = getattr(el, "covalent_radius", None)
        if radius:
            values["radius"] = float(round(_nudge(rng, radius * 100, 0.05, 0.2)))
            source["radius"] = radius * 100
        if natural:
            values["isotopes"] = [f"{name}-{a}" for a, _ in natural]
            source["isotopes"] = values["isotopes"]
        elements.append(Entity(
            id=f"elements/{el.number}", domain="elements", key=(name,), values=values,
            source=source, groups={"block": values["block"],
                                   "period": f"period {period_of(el.number)}"}))
    return [
        Domain("elements", "test", "chemical element", "chemical elements", ("Element",),
               element_attrs(), elements, intro="{e} is a chemical element of the {block}.",
               task_share=0.2, title="{e} ({symbol})"),
        Domain("isotopes", "test", "isotope", "naturally occurring isotopes",
               ("Element", "Mass Number"), isotope_attrs(), isotopes,
               intro="{e} is a naturally occurring isotope of {element}.", task_share=0.2,
               intro_uses_title=True),
    ]
