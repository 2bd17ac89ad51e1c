"""Shop entities (products, places, promo codes, names) and the id and address makers."""

from __future__ import annotations

import random
import string
from dataclasses import dataclass


@dataclass(frozen=True)
class _Product:
    name: str
    category: str
    apparel: bool
    material: str


_PRODUCTS = [
    _Product("Trailblazer Hiking Boots", "footwear", False, "leather"),
    _Product("AeroFit Running Shoes", "footwear", False, "mesh"),
    _Product("Nordic Wool Sweater", "apparel", True, "wool"),
    _Product("Classic Denim Jacket", "apparel", True, "denim"),
    _Product("Cascade Rain Jacket", "apparel", True, "nylon"),
    _Product("Cozy Fleece Hoodie", "apparel", True, "fleece"),
    _Product("Merino Base Layer", "apparel", True, "wool"),
    _Product("Ridge Softshell Pants", "apparel", True, "nylon"),
    _Product("Summit 40L Backpack", "gear", False, "nylon"),
    _Product("HydroSteel Water Bottle", "gear", False, "steel"),
    _Product("Basecamp 2-Person Tent", "gear", False, "nylon"),
    _Product("Polar Down Sleeping Bag", "gear", False, "down"),
    _Product("Lumo Headlamp", "electronics", False, "plastic"),
    _Product("Pulse Wireless Earbuds", "electronics", False, "plastic"),
    _Product("Orbit GPS Watch", "electronics", False, "plastic"),
    _Product("Ember Camping Stove", "gear", False, "steel"),
]

_CITIES = [
    ("Portland", "972"),
    ("Denver", "802"),
    ("Austin", "787"),
    ("Seattle", "981"),
    ("Boston", "021"),
    ("Chicago", "606"),
    ("Minneapolis", "554"),
    ("Salt Lake City", "841"),
    ("San Diego", "921"),
    ("Raleigh", "276"),
    ("Boulder", "803"),
    ("Madison", "537"),
]

_STREET_NAMES = [
    "Maple", "Oak", "Cedar", "Pine", "Elm", "Willow", "Birch", "Lakeview", "Hillcrest",
    "Sunset", "River", "Meadow", "Highland", "Park", "Juniper", "Aspen",
]  # fmt: skip
_STREET_KINDS = ["Street", "Avenue", "Road", "Lane", "Drive", "Court", "Way", "Blvd"]

_PROMO_CODES = [
    "SPRING20", "WELCOME10", "FREESHIP", "HIKE15", "SUMMER25", "NEWSLETTER5", "OUTDOOR12",
    "LOYAL10", "BACK2SCHOOL", "CAMP30",
]  # fmt: skip

_COUNTRIES = {
    "Canada": (5, 9, "$14.95"),
    "Mexico": (6, 10, "$19.95"),
    "the UK": (5, 8, "$24.95"),
    "Germany": (5, 8, "$24.95"),
    "France": (6, 9, "$24.95"),
    "Australia": (8, 14, "$34.95"),
    "Japan": (7, 12, "$29.95"),
    "Ireland": (5, 9, "$24.95"),
}
"""Destination → (min business days, max business days, standard shipping cost)."""

_FIRST_NAMES = ["Sam", "Priya", "Jordan", "Lena", "Marco", "Aisha", "Tom", "Mei", "Carlos", "Nora"]


def _order_id(rng: random.Random) -> str:
    """A 6-character order id alternating letter and digit, like ``A1B2C3``."""
    letters = string.ascii_uppercase.replace("O", "").replace("I", "")
    return "".join(rng.choice(letters) + rng.choice("123456789") for _ in range(3))


def _address(rng: random.Random) -> dict[str, str]:
    city, prefix = rng.choice(_CITIES)
    street = f"{rng.randint(2, 4999)} {rng.choice(_STREET_NAMES)} {rng.choice(_STREET_KINDS)}"
    return {"street": street, "city": city, "postal_code": f"{prefix}{rng.randint(1, 99):02d}"}


def _random_id(rng: random.Random, prefix: str, length: int) -> str:
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(rng.choice(alphabet) for _ in range(length))
