"""Generated names for long-tail synthetic entities (towns, people), drawn from word parts.

Test worlds use them where the source data has no such entity (the seat of a county, the person
who isolated an element): a model cannot know these from pre-training, so its answers must come
from the pages.
"""

from __future__ import annotations

import random

_TOWN_HEAD = (
    "Ash", "Bel", "Birch", "Brook", "Cedar", "Clear", "Cold", "Copper", "Deer", "Eagle", "Elm",
    "Fair", "Fox", "Glen", "Gold", "Granite", "Green", "Hazel", "High", "Holly", "Iron", "Juniper",
    "Lake", "Laurel", "Lime", "Lin", "Maple", "Marble", "Meadow", "Mill", "Moss", "Oak", "Orchard",
    "Pine", "Plum", "Quarry", "Raven", "Red", "River", "Rock", "Rose", "Salt", "Sand", "Shady",
    "Silver", "Spring", "Stone", "Summer", "Sun", "Thorn", "Timber", "Walnut", "Wheat", "White",
    "Willow", "Wind", "Winter", "Wolf", "Wood", "Yew",
)
_TOWN_TAIL = (
    "bank", "borough", "bridge", "brook", "burg", "bury", "crest", "dale", "field", "ford",
    "gate", "glen", "grove", "haven", "hill", "hurst", "land", "leigh", "mont", "moor", "port",
    "ridge", "side", "stead", "ton", "vale", "view", "ville", "water", "wick", "wood",
)
_TOWN_PREFIX = ("", "", "", "", "North ", "South ", "East ", "West ", "New ", "Port ", "Mount ",
                "Fort ", "Lake ")
_GIVEN = (
    "Ada", "Agnes", "Albin", "Anselm", "Aurelia", "Benedikt", "Bertha", "Casimir", "Clara",
    "Cornelius", "Dagny", "Edvard", "Elin", "Emil", "Ernestine", "Felix", "Frida", "Gottlieb",
    "Greta", "Gustav", "Hedda", "Henrik", "Ida", "Ignaz", "Ingrid", "Johan", "Karin", "Leopold",
    "Lisette", "Ludvig", "Magda", "Matthias", "Nils", "Olga", "Oskar", "Petra", "Quirin",
    "Rosalind", "Rudolf", "Selma", "Sigrid", "Theodor", "Tilde", "Ulrich", "Valdemar", "Vera",
    "Wilhelmina", "Xaver", "Yvette", "Zeno",
)
_FAMILY_HEAD = (
    "Adler", "Berg", "Blom", "Dahl", "Eck", "Falk", "Gran", "Hart", "Holm", "Kessel", "Lind",
    "Lund", "Mohr", "Nord", "Ost", "Quist", "Rosen", "Sand", "Stern", "Strand", "Thal", "Vogel",
    "Wahl", "Wester", "Zell",
)
_FAMILY_TAIL = ("berg", "gren", "hagen", "heim", "lund", "mann", "qvist", "rath", "ström", "stein",
                "wald", "wright", "field", "ton", "by")


def town_name(rng: random.Random) -> str:
    """A plausible, probably fictional, place name (``Cedarbrook``, ``West Millford``)."""
    return rng.choice(_TOWN_PREFIX) + rng.choice(_TOWN_HEAD) + rng.choice(_TOWN_TAIL)


def person_name(rng: random.Random) -> str:
    """A plausible fictional person (``Greta Lindqvist``)."""
    return f"{rng.choice(_GIVEN)} {rng.choice(_FAMILY_HEAD)}{rng.choice(_FAMILY_TAIL)}"
