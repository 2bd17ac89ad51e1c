"""Deterministic, realistic sample workloads in the blueprint's log schema (blueprint-spec §1).

The demo, the quickstart and the tests need logs that look like a real application's traffic
without shipping a data set: this module makes them from templates, entity lists and a seeded
random generator, so the same seed always gives the same records and another seed gives others.

Two workloads are offered:

* :func:`generate_customer_service_logs`: a tool-calling customer-service agent for an online
  shop (nine tools, uneven tool mix, a share of plain answers, multi-turn context). Every tool
  call's argument values are copied from, or follow plainly from, the user's words, so a small
  model can learn the mapping by fine-tuning.
* :func:`generate_generic_logs`: a workload without tools (short answers to shop FAQ questions).

Each record is one logged LLM call: ``workload_id``, ``client_id``, ``timestamp`` (ISO 8601 UTC,
strictly increasing), ``request`` (the OpenAI ``chat.completions.create`` payload) and
``response`` (an OpenAI ``ChatCompletion``, tool-call arguments as JSON *strings*, as the raw API
returns them). Generation is pure; :func:`write_jsonl` is the only function that touches disk.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

__all__ = [
    "CUSTOMER_SERVICE_TOOLS",
    "DEFAULT_START",
    "generate_customer_service_logs",
    "generate_generic_logs",
    "write_jsonl",
]

DEFAULT_START = datetime(2025, 5, 5, 7, 30, tzinfo=UTC)
"""Start of the sample traffic when no ``start`` is given: fixed, so output is reproducible."""

_SPAN = timedelta(days=5)
"""About how long the generated traffic lasts, whatever ``n`` is ("several days" of logs)."""

_SHOP = "Northwind Outfitters"

# --- tools ----------------------------------------------------------------------------------

_ORDER_ID = {"type": "string", "description": "6-character order id, e.g. A1B2C3"}

_REFUND_REASONS = ["damaged", "wrong_item", "not_as_described", "changed_mind", "never_arrived"]
_CANCEL_REASONS = ["ordered_by_mistake", "found_cheaper", "too_slow", "other"]
_SIZES = ["XS", "S", "M", "L", "XL"]
_HELP_CATEGORIES = ["returns", "shipping", "payments", "account", "warranty"]
_ESCALATION_REASONS = ["asked_for_human", "complaint", "repeated_issue", "legal"]


def _tool(
    name: str, description: str, properties: dict[str, Any], required: list[str]
) -> dict[str, Any]:
    """One OpenAI function tool definition."""
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


CUSTOMER_SERVICE_TOOLS: list[dict[str, Any]] = [
    _tool(
        "lookup_order",
        "Get the status, items and total of an order.",
        {"order_id": _ORDER_ID},
        ["order_id"],
    ),
    _tool(
        "track_shipment",
        "Get the carrier, tracking status and delivery estimate of a shipped order.",
        {"order_id": _ORDER_ID},
        ["order_id"],
    ),
    _tool(
        "request_refund",
        "Open a refund request for a delivered order.",
        {
            "order_id": _ORDER_ID,
            "reason": {"type": "string", "enum": _REFUND_REASONS},
            "item_count": {
                "type": "integer",
                "minimum": 1,
                "description": "items to refund; omit to refund the whole order",
            },
        },
        ["order_id", "reason"],
    ),
    _tool(
        "cancel_order",
        "Cancel an order that has not shipped yet.",
        {"order_id": _ORDER_ID, "reason": {"type": "string", "enum": _CANCEL_REASONS}},
        ["order_id"],
    ),
    _tool(
        "update_shipping_address",
        "Change the delivery address of an order that has not shipped yet.",
        {
            "order_id": _ORDER_ID,
            "street": {"type": "string", "description": "house number and street"},
            "city": {"type": "string"},
            "postal_code": {"type": "string"},
        },
        ["order_id", "street", "city", "postal_code"],
    ),
    _tool(
        "check_product_availability",
        "Check whether a product is in stock, optionally in a size and quantity.",
        {
            "product_name": {"type": "string", "description": "product name as in the catalog"},
            "size": {"type": "string", "enum": _SIZES},
            "quantity": {"type": "integer", "minimum": 1},
        },
        ["product_name"],
    ),
    _tool(
        "apply_discount_code",
        "Apply a promo code to an order that has not shipped yet.",
        {"order_id": _ORDER_ID, "code": {"type": "string", "description": "promo code"}},
        ["order_id", "code"],
    ),
    _tool(
        "search_help_center",
        "Search the help-center articles on shop policies.",
        {
            "query": {"type": "string", "description": "the topic, in the customer's words"},
            "category": {"type": "string", "enum": _HELP_CATEGORIES},
        },
        ["query"],
    ),
    _tool(
        "escalate_to_human",
        "Hand the conversation over to a human support agent.",
        {
            "reason": {"type": "string", "enum": _ESCALATION_REASONS},
            "priority": {"type": "string", "enum": ["normal", "high"]},
            "order_id": _ORDER_ID,
        },
        ["reason", "priority"],
    ),
]

_TOOL_WEIGHTS: dict[str, int] = {
    "lookup_order": 20,
    "track_shipment": 18,
    "request_refund": 13,
    "check_product_availability": 12,
    "search_help_center": 10,
    "cancel_order": 7,
    "update_shipping_address": 7,
    "apply_discount_code": 4,
    "escalate_to_human": 3,
}
"""Uneven tool mix, as in real traffic: order status questions dominate, escalations are rare."""

_CS_SYSTEM_PROMPT = (
    f"You are the customer-service assistant of {_SHOP}, an online outdoor and apparel shop. "
    "Help with orders, shipping, refunds, cancellations, product stock and shop policies. "
    "Use a tool whenever one fits; copy order ids (6 characters, e.g. A1B2C3), product names "
    "and addresses exactly as the customer wrote them. Never invent order data. If a request "
    "is not about the shop, say politely that you can only help with shop questions. "
    "Keep answers short and friendly."
)

# --- entities -------------------------------------------------------------------------------


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

# --- text styling ---------------------------------------------------------------------------

_TONES = ("polite", "neutral", "casual", "angry")
_TONE_WEIGHTS = (30, 35, 25, 10)

_OPENERS = {
    "polite": ["Hi,", "Hello,", "Good morning,", "Hi there!", "Hello, hope you're well.", "Hey,"],
    "neutral": ["", "", "", "Hi.", "Question:", "Hello."],
    "casual": ["hey", "hi", "yo", "heyy", "hello", "", ""],
    "angry": [
        "This is unacceptable.",
        "Seriously?",
        "I'm really frustrated.",
        "Not happy at all.",
        "Third time asking.",
        "Ugh.",
    ],
}
_CLOSERS = {
    "polite": ["Thank you!", "Thanks in advance.", "Many thanks.", "Thanks a lot!", "Cheers.", ""],
    "neutral": ["", "", "", "Thanks.", "Thx."],
    "casual": ["thx", "ty", "pls", "cheers", "", "", "thanks!!"],
    "angry": ["Fix this now.", "I expect an answer today!", "Terrible service.", "!!!", ""],
}

_PLACEHOLDER = re.compile(r"(\{[a-z_]+\})")


def _typo(rng: random.Random, text: str) -> str:
    """Swap two adjacent inner letters of one longer word, as a hurried typist would."""
    words = [m for m in re.finditer(r"[A-Za-z]{5,}", text)]
    if not words:
        return text
    match = rng.choice(words)
    i = rng.randrange(match.start() + 1, match.end() - 2)
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def _style(
    rng: random.Random, template: str, tone: str, wrap: bool = True, greet: bool = True
) -> str:
    """Apply a tone (casing, greeting, sign-off, typos) to a template's literal text only.

    Placeholders such as ``{order_id}`` are left untouched, so the entity values inserted later
    appear in the message exactly as they appear in the tool-call arguments. ``wrap=False``
    skips the greeting and sign-off (a "hi" needs no "Hello," in front of it); ``greet=False``
    skips only the greeting (the conversation is already under way).
    """
    opener = rng.choice(_OPENERS[tone]) if wrap and greet else ""
    closer = rng.choice(_CLOSERS[tone]) if wrap else ""
    if opener.endswith(",") and re.match(r"[A-Z][a-z']", template) and template[:2] != "I'":
        template = template[0].lower() + template[1:]  # "Hi, can you …", not "Hi, Can you …"
    elif opener.endswith((".", "!", "?")) and tone != "casual":
        template = template[:1].upper() + template[1:]  # "Hello. What can …"
    if closer and tone != "casual" and not template.endswith((".", "?", "!")):
        template += "."
    text = " ".join(part for part in (opener, template, closer) if part)
    parts = _PLACEHOLDER.split(text)
    styled: list[str] = []
    for part in parts:
        if _PLACEHOLDER.fullmatch(part):
            styled.append(part)
            continue
        if tone == "casual":
            part = part.lower().replace("i'm", "im").replace("don't", "dont")
        if tone == "angry" and rng.random() < 0.3:
            part = re.sub(r"\b(now|today|again)\b", lambda m: m.group(1).upper(), part)
        if part.strip() and rng.random() < (0.35 if tone == "casual" else 0.08):
            part = _typo(rng, part)
        styled.append(part)
    text = "".join(styled)
    if tone == "casual" and text.endswith((".", "?")) and rng.random() < 0.6:
        text = text[:-1]
    return text


def _render(
    rng: random.Random,
    template: str,
    entities: dict[str, Any],
    tone: str,
    wrap: bool = True,
    greet: bool = True,
) -> str:
    """Style a template for a tone, then fill in the entity values verbatim."""
    styled = _style(rng, template, tone, wrap, greet)
    return styled.format_map({k: str(v) for k, v in entities.items()})


def _pick_tone(rng: random.Random, allowed: tuple[str, ...] = _TONES) -> str:
    weights = [w for t, w in zip(_TONES, _TONE_WEIGHTS, strict=True) if t in allowed]
    return rng.choices([t for t in _TONES if t in allowed], weights=weights)[0]


# --- entity makers --------------------------------------------------------------------------


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


# --- intents --------------------------------------------------------------------------------


@dataclass
class _Turn:
    """The user's request of one logged call, before styling, and the expected answer."""

    template: str
    entities: dict[str, Any] = field(default_factory=dict)
    tool: str | None = None
    arguments: dict[str, Any] | None = None
    reply: str | None = None
    tones: tuple[str, ...] = _TONES
    wrap: bool = True


_IntentMaker = Callable[[random.Random, str | None], _Turn]
"""Builds a turn; the second argument is an order id already known from earlier context, in
which case the message may refer to "it" instead of repeating the id."""


def _lookup_order(rng: random.Random, known: str | None) -> _Turn:
    direct = [
        "What's the status of order {order_id}?",
        "Can you check on my order {order_id}?",
        "I placed order #{order_id} last week, any update?",
        "Where is my order? The number is {order_id}.",
        "order {order_id} - has it shipped yet?",
        "Could you look up {order_id} for me? I want to know what's in it.",
        "Is order {order_id} confirmed? I never got an email.",
        "I'd like an update on my purchase, order number {order_id}.",
        "What did I pay for order {order_id}?",
        "Has my order {order_id} been processed?",
    ]
    oid = _order_id(rng)
    return _Turn(rng.choice(direct), {"order_id": oid}, "lookup_order", {"order_id": oid})


def _track_shipment(rng: random.Random, known: str | None) -> _Turn:
    direct = [
        "Can you track the package for order {order_id}?",
        "Where is my package right now? Order {order_id}.",
        "When will order {order_id} be delivered?",
        "Tracking for {order_id} hasn't updated in 3 days, where is it?",
        "What's the delivery estimate for order #{order_id}?",
        "Which carrier has my parcel? Order {order_id}.",
        "Is order {order_id} out for delivery today?",
        "I need the tracking info for {order_id}.",
        "My package for order {order_id} still hasn't arrived, can you track it?",
    ]
    followup = [
        "Can you track it?",
        "Where is the package right now?",
        "When exactly will it arrive?",
        "Which carrier is delivering it?",
        "Can I get the tracking details?",
    ]
    oid = known or _order_id(rng)
    template = rng.choice(followup if known else direct)
    return _Turn(template, {"order_id": oid}, "track_shipment", {"order_id": oid})


_REFUND_PHRASES = {
    "damaged": [
        "it arrived damaged",
        "the item came broken",
        "the box was crushed and the product is broken",
        "it arrived with a big tear",
    ],
    "wrong_item": [
        "you sent me the wrong item",
        "I received a different product than I ordered",
        "the package had someone else's item in it",
    ],
    "not_as_described": [
        "it looks nothing like the photos",
        "it's not as described on the website",
        "the color and material are not what the listing said",
    ],
    "changed_mind": [
        "I changed my mind",
        "I don't need it anymore",
        "I decided I don't want it after all",
    ],
    "never_arrived": [
        "it never arrived",
        "the package never showed up",
        "tracking says delivered but I never got it",
    ],
}


def _request_refund(rng: random.Random, known: str | None) -> _Turn:
    direct = [
        "I want a refund for order {order_id}, {reason}.",
        "Please refund order {order_id} because {reason}.",
        "Order {order_id}: {reason}. I'd like my money back.",
        "Can I get a refund? {reason} (order {order_id}).",
        "Requesting a refund on #{order_id}, {reason}.",
        "{reason}, so I need a refund for order {order_id}.",
    ]
    partial = [
        "I'd like a refund for {item_count} of the items in order {order_id}, {reason}.",
        "Please refund {item_count} items from order {order_id}: {reason}.",
    ]
    followup = [
        "Well, {reason}. Can I get a refund?",
        "I want a refund then, {reason}.",
        "Please refund it, {reason}.",
    ]
    reason = rng.choices(_REFUND_REASONS, weights=[30, 20, 18, 20, 12])[0]
    oid = known or _order_id(rng)
    args: dict[str, Any] = {"order_id": oid, "reason": reason}
    entities: dict[str, Any] = {"order_id": oid}
    if known:
        template = rng.choice(followup)
    elif rng.random() < 0.2:
        template = rng.choice(partial)
        count = rng.randint(1, 3)
        args["item_count"] = count
        entities["item_count"] = count
    else:
        template = rng.choice(direct)
    phrase = rng.choice(_REFUND_PHRASES[reason])
    if template.startswith("{reason}"):
        phrase = phrase[0].upper() + phrase[1:]
    template = template.replace("{reason}", phrase)
    tones = ("polite", "neutral", "casual", "angry")
    return _Turn(template, entities, "request_refund", args, tones=tones)


_CANCEL_PHRASES = {
    "ordered_by_mistake": ["I ordered it by mistake", "I clicked buy twice by accident"],
    "found_cheaper": ["I found it cheaper somewhere else", "another store has it for less"],
    "too_slow": ["the delivery takes way too long", "I can't wait that long for it"],
    "other": ["my plans changed", "I no longer need it"],
}


def _cancel_order(rng: random.Random, known: str | None) -> _Turn:
    direct_plain = [
        "Please cancel order {order_id}.",
        "I need to cancel my order {order_id}.",
        "Can you cancel #{order_id} before it ships?",
        "cancel order {order_id} please",
    ]
    direct_reason = [
        "Please cancel order {order_id}, {reason}.",
        "I want to cancel {order_id} because {reason}.",
        "Cancel my order {order_id} - {reason}.",
    ]
    followup_plain = ["Then please cancel it.", "OK, cancel it please.", "Can you just cancel it?"]
    followup_reason = ["Please cancel it, {reason}.", "Cancel it then, {reason}."]
    oid = known or _order_id(rng)
    args: dict[str, Any] = {"order_id": oid}
    if rng.random() < 0.65:
        reason = rng.choice(_CANCEL_REASONS)
        args["reason"] = reason
        template = rng.choice(followup_reason if known else direct_reason)
        template = template.replace("{reason}", rng.choice(_CANCEL_PHRASES[reason]))
    else:
        template = rng.choice(followup_plain if known else direct_plain)
    return _Turn(template, {"order_id": oid}, "cancel_order", args)


def _update_address(rng: random.Random, known: str | None) -> _Turn:
    direct = [
        "Please change the shipping address of order {order_id} to {street}, {city} {postal_code}.",
        "I moved! Can you send order {order_id} to {street}, {city}, {postal_code} instead?",
        "Update the delivery address for #{order_id}: {street}, {city} {postal_code}.",
        "Wrong address on order {order_id}, it should be {street}, {city} {postal_code}.",
        "Ship {order_id} to {street} in {city}, zip {postal_code} please.",
    ]
    followup = [
        "Can you ship it to {street}, {city} {postal_code} instead?",
        "Please change the address to {street}, {city}, {postal_code}.",
        "I moved, new address is {street}, {city} {postal_code}.",
    ]
    oid = known or _order_id(rng)
    address = _address(rng)
    template = rng.choice(followup if known else direct)
    args = {"order_id": oid, **address}
    return _Turn(template, {"order_id": oid, **address}, "update_shipping_address", args)


def _check_availability(rng: random.Random, known: str | None) -> _Turn:
    product = rng.choice(_PRODUCTS)
    plain = [
        "Is the {product} in stock?",
        "Do you still have the {product}?",
        "When will the {product} be available again?",
        "Can I buy the {product} right now or is it sold out?",
        "Any {product} left?",
    ]
    sized = [
        "Do you have the {product} in size {size}?",
        "Is the {product} available in {size}?",
        "Looking for the {product}, size {size}. In stock?",
    ]
    counted = [
        "Do you have {quantity} of the {product} in stock?",
        "I need {quantity} units of the {product} for a group trip, available?",
    ]
    sized_counted = ["Do you have {quantity} {product} in size {size}?"]
    entities: dict[str, Any] = {"product": product.name}
    args: dict[str, Any] = {"product_name": product.name}
    with_size = product.apparel and rng.random() < 0.7
    with_qty = rng.random() < 0.2
    if with_size:
        entities["size"] = args["size"] = rng.choice(_SIZES)
    if with_qty:
        entities["quantity"] = args["quantity"] = rng.randint(2, 12)
    if with_size and with_qty:
        template = rng.choice(sized_counted)
    elif with_size:
        template = rng.choice(sized)
    elif with_qty:
        template = rng.choice(counted)
    else:
        template = rng.choice(plain)
    return _Turn(template, entities, "check_product_availability", args)


def _apply_code(rng: random.Random, known: str | None) -> _Turn:
    direct = [
        "I forgot to use code {code} on order {order_id}, can you apply it?",
        "Please apply the promo code {code} to my order {order_id}.",
        "Can I still use {code} on #{order_id}?",
        "Add discount code {code} to order {order_id} please.",
    ]
    followup = [
        "Can you apply the code {code} to it?",
        "I forgot my promo code {code}, can you still add it?",
    ]
    oid = known or _order_id(rng)
    code = rng.choice(_PROMO_CODES)
    template = rng.choice(followup if known else direct)
    args = {"order_id": oid, "code": code}
    return _Turn(template, {"order_id": oid, "code": code}, "apply_discount_code", args)


_HELP_TOPICS = [
    ("the return policy for sale items", "returns"),
    ("returning a gift", "returns"),
    ("exchanging for a different size", "returns"),
    ("how long refunds take", "returns"),
    ("international shipping", "shipping"),
    ("express delivery", "shipping"),
    ("shipping to a PO box", "shipping"),
    ("free shipping thresholds", "shipping"),
    ("paying with PayPal", "payments"),
    ("buying now and paying later", "payments"),
    ("gift card balances", "payments"),
    ("a double charge on my card", "payments"),
    ("resetting my password", "account"),
    ("deleting my account", "account"),
    ("changing the email on my account", "account"),
    ("the warranty on electronics", "warranty"),
    ("repairs for broken zippers", "warranty"),
    ("warranty claims for boots", "warranty"),
]


def _search_help(rng: random.Random, known: str | None) -> _Turn:
    templates = [
        "Where can I read about {topic}?",
        "Do you have a help article on {topic}?",
        "What's your policy on {topic}?",
        "I have a question about {topic}.",
        "Can you find me info about {topic}?",
        "How does it work with {topic}?",
        "Is there a FAQ page for {topic}?",
    ]
    topic, category = rng.choice(_HELP_TOPICS)
    args: dict[str, Any] = {"query": topic}
    if rng.random() < 0.75:
        args["category"] = category
    return _Turn(rng.choice(templates), {"topic": topic}, "search_help_center", args)


def _escalate(rng: random.Random, known: str | None) -> _Turn:
    options: list[tuple[str, str, str]] = [
        ("asked_for_human", "normal", "Can I talk to a real person please?"),
        ("asked_for_human", "normal", "I'd rather speak with a human agent."),
        ("asked_for_human", "high", "Get me a human agent right now, this is urgent!"),
        ("complaint", "normal", "I'd like to file a formal complaint about your service."),
        ("complaint", "high", "I want a manager IMMEDIATELY about order {order_id}."),
        ("repeated_issue", "normal", "This is the third time order {order_id} has gone wrong, "
         "please pass me to someone who can fix it."),
        ("repeated_issue", "high", "Same problem with {order_id} AGAIN. Escalate this urgently."),
        ("legal", "high", "If order {order_id} isn't sorted out I'm contacting my lawyer. "
         "Escalate this now."),
    ]  # fmt: skip
    reason, priority, template = rng.choice(options)
    args: dict[str, Any] = {"reason": reason, "priority": priority}
    entities: dict[str, Any] = {}
    if "{order_id}" in template:
        oid = _order_id(rng)
        entities["order_id"] = args["order_id"] = oid
    tones = ("neutral", "angry") if priority == "high" else ("polite", "neutral", "casual")
    return _Turn(template, entities, "escalate_to_human", args, tones=tones)


_INTENTS: dict[str, _IntentMaker] = {
    "lookup_order": _lookup_order,
    "track_shipment": _track_shipment,
    "request_refund": _request_refund,
    "check_product_availability": _check_availability,
    "search_help_center": _search_help,
    "cancel_order": _cancel_order,
    "update_shipping_address": _update_address,
    "apply_discount_code": _apply_code,
    "escalate_to_human": _escalate,
}

_FOLLOWUPS_BY_STATUS = {
    "processing": ["cancel_order", "update_shipping_address", "apply_discount_code"],
    "shipped": ["track_shipment"],
    "delivered": ["request_refund"],
}
"""Which follow-up request makes sense after an order lookup returned this status."""

# --- plain (no tool) turns ------------------------------------------------------------------

_SMALL_TALK: list[tuple[list[str], list[str]]] = [
    (
        ["hi", "hello", "hey there", "good morning", "hi, is anyone there?", "hello?",
         "hey, quick question", "hi, I need some help"],
        ["Hi! How can I help you today?", "Hello! What can I do for you today?",
         "Hi there! I can help with orders, shipping, returns and products. What do you need?"],
    ),
    (
        ["thanks, that's all", "great, thank you!", "perfect, thanks a lot", "ok thx",
         "awesome, that helps", "thank you so much for your help", "cool, appreciate it"],
        ["You're welcome! Anything else I can help with?", "Happy to help! Have a great day.",
         "Glad I could help. Enjoy your gear!"],
    ),
    (
        ["what can you do?", "what kind of questions can you answer?", "are you a bot?",
         "am I talking to a real person?", "how does this chat work?"],
        [f"I'm the {_SHOP} virtual assistant. I can look up and track orders, handle refunds, "
         "cancellations and address changes, check stock and find help articles.",
         "I'm an automated assistant. I can help with orders, shipping, returns and products, "
         "and hand you over to a human agent if you need one."],
    ),
    (
        ["can you write me a poem about {topic}?", "what's the weather like in {city}?",
         "who won the game last night?", "tell me a joke about {topic}",
         "what's the capital of {country}?", "can you help with my math homework?",
         "recommend me a good movie", "what do you think about {topic}?"],
        ["Sorry, I can only help with questions about your orders and our shop. Is there "
         "anything shop-related I can do for you?",
         f"That's outside what I can help with here. I'm happy to assist with anything about "
         f"{_SHOP} orders, shipping or products."],
    ),
]  # fmt: skip

_OFFTOPIC_SUBJECTS = ["cats", "the ocean", "autumn", "mountains", "coffee", "my dog", "Mondays"]


def _plain_turn(rng: random.Random, after_help: bool) -> _Turn:
    """A greeting, thanks, capability question or out-of-scope request, answered without tools.

    ``after_help`` (an earlier exchange resolved something) makes a thank-you most likely.
    """
    if after_help:  # no fresh "hi" mid-conversation: mostly thanks, else a side question
        group = rng.choices(range(4), [0, 70, 10, 20])[0]
    else:
        group = rng.choices(range(4), [30, 22, 18, 30])[0]
    prompts, replies = _SMALL_TALK[group]
    template = rng.choice(prompts)
    entities = {
        "topic": rng.choice(_OFFTOPIC_SUBJECTS),
        "city": rng.choice(_CITIES)[0],
        "country": rng.choice(list(_COUNTRIES)).removeprefix("the "),
    }
    tones = _TONES if group >= 2 else ("polite", "neutral", "casual")
    return _Turn(template, entities, reply=rng.choice(replies), tones=tones, wrap=group >= 2)


# --- record assembly ------------------------------------------------------------------------


def _timestamps(rng: random.Random, n: int, start: datetime) -> list[datetime]:
    """``n`` strictly increasing times after ``start`` (aware) over about :data:`_SPAN`.

    Gaps are random and longer at night, as in real traffic.
    """
    t = start
    mean_gap = _SPAN.total_seconds() / max(n, 1)
    out: list[datetime] = []
    for _ in range(n):
        night = t.hour < 7 or t.hour >= 22
        gap = rng.expovariate(1.0 / (mean_gap * (2.5 if night else 0.8)))
        t = t + timedelta(seconds=max(1, round(gap)))
        out.append(t)
    return out


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _tokens(text: str) -> int:
    """A rough token count (about four characters a token), enough for plausible usage."""
    return max(1, round(len(text) / 4))


def _tool_call(rng: random.Random, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": _random_id(rng, "call_", 24),
        "type": "function",
        "function": {"name": name, "arguments": orjson.dumps(arguments).decode()},
    }


def _completion(
    rng: random.Random,
    when: datetime,
    model: str,
    request: dict[str, Any],
    message: dict[str, Any],
    finish_reason: str,
) -> dict[str, Any]:
    """An OpenAI ``ChatCompletion`` for ``message``, with plausible usage and creation time."""
    prompt_text = orjson.dumps(request["messages"]).decode()
    prompt_tokens = _tokens(prompt_text) + 4 * len(request["messages"])
    if request.get("tools"):
        prompt_tokens += _tokens(orjson.dumps(request["tools"]).decode())
    completion_tokens = _tokens(orjson.dumps(message).decode()) - 2
    return {
        "id": _random_id(rng, "chatcmpl-", 29),
        "object": "chat.completion",
        "created": int(when.timestamp()) + rng.randint(0, 3),
        "model": model,
        "choices": [{"index": 0, "finish_reason": finish_reason, "message": message}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": max(1, completion_tokens),
            "total_tokens": prompt_tokens + max(1, completion_tokens),
        },
    }


def _order_context(
    rng: random.Random, statuses: list[str] | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """An earlier exchange: the user asks about an order, the assistant looks it up, answers.

    The order's status is drawn from ``statuses`` (default: any). Returns the order id and the
    four messages (user, assistant tool call, tool result, assistant summary) that precede the
    logged user message.
    """
    oid = _order_id(rng)
    status = rng.choice(statuses or list(_FOLLOWUPS_BY_STATUS))
    product = rng.choice(_PRODUCTS)
    qty = rng.choice([1, 1, 1, 2])
    total = round(qty * rng.uniform(19, 249), 2)
    ask = rng.choice(
        [
            f"Hi, can you check order {oid}?",
            f"What's going on with my order {oid}?",
            f"status of order {oid}?",
            f"I have a question about order #{oid}.",
        ]
    )
    call = _tool_call(rng, "lookup_order", {"order_id": oid})
    result = {
        "order_id": oid,
        "status": status,
        "items": [{"name": product.name, "quantity": qty}],
        "total_usd": total,
    }
    summaries = {
        "processing": f"Order {oid} ({qty}x {product.name}, ${total:.2f}) is still being "
        "processed and hasn't shipped yet.",
        "shipped": f"Order {oid} ({qty}x {product.name}) has shipped and is on its way.",
        "delivered": f"Order {oid} ({qty}x {product.name}) was delivered. Is everything okay "
        "with it?",
    }
    messages = [
        {"role": "user", "content": ask},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": orjson.dumps(result).decode()},
        {"role": "assistant", "content": summaries[status]},
    ]
    return oid, messages


def _greeting_context(rng: random.Random) -> list[dict[str, Any]]:
    """An earlier greeting exchange before the actual request."""
    name = rng.choice(_FIRST_NAMES)
    user = rng.choice(["hi", "hello", f"Hi, this is {name}", "hey there", "good afternoon"])
    reply = rng.choice(
        [
            "Hi! How can I help you today?",
            f"Hello{', ' + name if name in user else ''}! What can I do for you?",
            "Hi there! What do you need help with?",
        ]
    )
    return [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]


def _allocate(rng: random.Random, n: int, weights: dict[str, int], minimum: int) -> list[str]:
    """Draw ``n`` labels by weight, then top up rare labels to ``minimum`` from the most common.

    The top-up keeps every tool represented (curation and the split need several examples per
    class) without making the mix flat.
    """
    labels = rng.choices(list(weights), weights=list(weights.values()), k=n)
    counts = {label: labels.count(label) for label in weights}
    for label in weights:
        while counts[label] < minimum:
            donor = max(counts, key=lambda k: counts[k])
            if counts[donor] <= minimum:
                break
            labels[labels.index(donor)] = label
            counts[donor] -= 1
            counts[label] += 1
    rng.shuffle(labels)
    return labels


def _fresh_tools() -> list[dict[str, Any]]:
    """A private copy of the tool list, so editing one record never changes another."""
    return orjson.loads(orjson.dumps(CUSTOMER_SERVICE_TOOLS))


def _to_start(start: datetime | None) -> datetime:
    """Where the traffic begins: ``start`` as aware UTC (naive means UTC), or the default."""
    if start is None:
        return DEFAULT_START
    return start.astimezone(UTC) if start.tzinfo else start.replace(tzinfo=UTC)


def generate_customer_service_logs(
    n: int = 400,
    *,
    seed: int = 0,
    workload_id: str = "customer-service",
    client_id: str = "sample-app",
    start: datetime | None = None,
    production_model: str = "meta/llama-3.3-70b-instruct",
) -> list[dict[str, Any]]:
    """Logs of a tool-calling customer-service agent, ``n`` records, oldest first.

    About 12% of the calls are plain answers (greetings, thanks, out-of-scope questions); the
    rest call one of :data:`CUSTOMER_SERVICE_TOOLS` with an uneven mix, every tool at least five
    times once ``n`` is about 300 or more. Some requests carry earlier turns: a greeting
    exchange, or an order lookup (assistant tool call + tool result) that the logged request
    follows up on. Tool-call argument values are taken from the user's words (order ids,
    product names, addresses, promo codes, help topics) or follow from them (enum reasons), so
    the mapping is learnable. ``start`` (naive means UTC) is just before the first timestamp.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    rng = random.Random(f"customer-service:{seed}")
    times = _timestamps(rng, n, _to_start(start))
    n_plain = round(n * rng.uniform(0.11, 0.14))
    n_tool = n - n_plain
    minimum = min(5, n_tool // (2 * len(_TOOL_WEIGHTS)))
    labels: list[str | None] = [*_allocate(rng, n_tool, _TOOL_WEIGHTS, minimum)]
    labels += [None] * n_plain
    rng.shuffle(labels)

    seen: set[str] = set()
    records: list[dict[str, Any]] = []
    for when, label in zip(times, labels, strict=True):
        messages: list[dict[str, Any]] = []
        turn = _Turn("")
        user_text = ""
        for _attempt in range(25):
            messages = [{"role": "system", "content": _CS_SYSTEM_PROMPT}]
            roll = rng.random()
            known: str | None = None
            if label is None:
                if roll < 0.25:
                    messages += _order_context(rng)[1]
                turn = _plain_turn(rng, after_help=len(messages) > 1)
            else:
                followups = [s for s, tools in _FOLLOWUPS_BY_STATUS.items() if label in tools]
                if followups and roll < 0.18:
                    oid, context = _order_context(rng, followups)
                    messages += context
                    known = oid
                elif roll < 0.35:
                    messages += _greeting_context(rng)
                turn = _INTENTS[label](rng, known)
            tone = _pick_tone(rng, turn.tones)
            greet = len(messages) == 1  # no second "hi" once the conversation is under way
            user_text = _render(rng, turn.template, turn.entities, tone, turn.wrap, greet)
            if user_text not in seen:
                break
        seen.add(user_text)
        messages.append({"role": "user", "content": user_text})
        request = {
            "model": production_model,
            "messages": messages,
            "tools": _fresh_tools(),
            "temperature": 0.2,
            "max_tokens": 512,
        }
        if turn.tool is not None:
            assert turn.arguments is not None
            message: dict[str, Any] = {
                "role": "assistant",
                "content": None,
                "tool_calls": [_tool_call(rng, turn.tool, turn.arguments)],
            }
            finish = "tool_calls"
        else:
            message = {"role": "assistant", "content": turn.reply}
            finish = "stop"
        response = _completion(rng, when, production_model, request, message, finish)
        records.append(
            {
                "workload_id": workload_id,
                "client_id": client_id,
                "timestamp": _iso(when),
                "request": request,
                "response": response,
            }
        )
    return records


# --- generic FAQ workload -------------------------------------------------------------------

_FAQ_SYSTEM_PROMPT = (
    f"You answer frequently asked questions for {_SHOP}, an online outdoor and apparel shop. "
    "Answer in one to three sentences, using only the shop's policies. If you don't know, "
    "point the customer to the help center."
)

_WARRANTY_YEARS = {"footwear": 1, "apparel": 1, "gear": 2, "electronics": 2}
_CARE = {
    "leather": "wipe it clean with a damp cloth, let it air-dry away from heat and treat the "
    "leather with conditioner every few months",
    "mesh": "hand-wash it in cold water with mild soap and let it air-dry; no dryer",
    "wool": "hand-wash it cold or use the wool cycle, then dry it flat; never tumble-dry",
    "denim": "wash it inside out in cold water and hang it to dry to keep the color",
    "nylon": "machine-wash it cold on a gentle cycle and hang it to dry; re-apply a DWR spray "
    "when water stops beading",
    "fleece": "machine-wash it cold and tumble-dry on low; skip fabric softener",
    "steel": "it is dishwasher safe, but hand-washing keeps the finish looking new",
    "down": "wash it in a front-loader with down soap and dry it on low with tennis balls",
    "plastic": "wipe it with a slightly damp cloth and keep it away from strong solvents",
}


@dataclass(frozen=True)
class _Faq:
    """One FAQ topic: question templates and the function that writes the shop's answer."""

    questions: tuple[str, ...]
    answer: Callable[[dict[str, Any]], str]
    needs: str | None = None  # "product", "apparel" or "country"


_FAQS: list[tuple[int, _Faq]] = [
    (
        14,
        _Faq(
            (
                "What is your return policy?",
                "How many days do I have to return something?",
                "Can I return an item I already wore once?",
                "how do returns work",
                "Do you accept returns on sale items?",
            ),
            lambda e: (
                "Unworn items can be returned within 30 days of delivery for a full "
                "refund; sale items within 14 days. Start a return under Orders > Return an item."
            ),
        ),
    ),
    (
        14,
        _Faq(
            (
                "How long does shipping to {country} take?",
                "Do you ship to {country}?",
                "What does delivery to {country} cost?",
                "I live in {country}, can I order from you?",
            ),
            lambda e: (
                f"Yes, we ship to {e['country']}: standard delivery takes {e['days']} "
                f"business days and costs {e['cost']}. Duties may be charged on arrival."
            ),
            needs="country",
        ),
    ),
    (
        10,
        _Faq(
            (
                "Which payment methods do you accept?",
                "Can I pay with PayPal?",
                "Do you take Apple Pay?",
                "can i pay in installments",
            ),
            lambda e: (
                "We accept Visa, Mastercard, American Express, PayPal, Apple Pay, gift "
                "cards and pay-in-4 installments through Klarna at checkout."
            ),
        ),
    ),
    (
        10,
        _Faq(
            (
                "What's the warranty on the {product}?",
                "Is the {product} covered by a warranty?",
                "How long is the guarantee for the {product}?",
            ),
            lambda e: (
                f"The {e['product']} has a {e['years']}-year warranty against "
                "manufacturing defects. File a claim in your account with a photo and the order id."
            ),
            needs="product",
        ),
    ),
    (
        10,
        _Faq(
            (
                "Does the {product} run true to size?",
                "What size should I get in the {product}?",
                "Is the {product} true to size or should I size up?",
            ),
            lambda e: (
                f"The {e['product']} runs true to size. If you're between sizes, size up "
                "for layering; the size chart is on the product page."
            ),
            needs="apparel",
        ),
    ),
    (
        10,
        _Faq(
            (
                "How do I wash the {product}?",
                "How should I clean my {product}?",
                "Care instructions for the {product}?",
            ),
            lambda e: f"For the {e['product']}, {e['care']}.",
            needs="product",
        ),
    ),
    (
        8,
        _Faq(
            (
                "Do gift cards expire?",
                "How do I check my gift card balance?",
                "Can I use two gift cards on one order?",
            ),
            lambda e: (
                "Gift cards never expire and you can combine up to three on one order. "
                "Check the balance under Account > Gift cards."
            ),
        ),
    ),
    (
        8,
        _Faq(
            (
                "When is customer support available?",
                "What are your support hours?",
                "Can I call you on weekends?",
            ),
            lambda e: (
                "Our support team is available Monday to Friday 8am-8pm and Saturday "
                "9am-5pm Eastern, by chat or at 1-800-555-0199."
            ),
        ),
    ),
    (
        6,
        _Faq(
            ("Do you price match?", "Will you match a lower price from another store?"),
            lambda e: (
                "Yes: if an authorized retailer lists the same item for less within 14 "
                "days of your purchase, we refund the difference. Contact support with a link."
            ),
        ),
    ),
    (
        5,
        _Faq(
            ("Do you have a student discount?", "Are there discounts for students?"),
            lambda e: (
                "Students get 10% off full-price items after verifying through "
                "Student Beans in their account."
            ),
        ),
    ),
    (
        5,
        _Faq(
            ("Can I change my order after placing it?", "How long do I have to edit an order?"),
            lambda e: (
                "You can change or cancel an order within one hour of placing it under "
                "Orders; after that, contact support before it ships."
            ),
        ),
    ),
]


def generate_generic_logs(
    n: int = 200,
    *,
    seed: int = 0,
    workload_id: str = "faq-answers",
    client_id: str = "sample-app",
    start: datetime | None = None,
    production_model: str = "meta/llama-3.3-70b-instruct",
) -> list[dict[str, Any]]:
    """Logs of a workload without tools: short answers to shop FAQ questions, oldest first.

    Questions vary by topic, template, entity (product, destination country) and tone; the
    answer of a given topic and entity is always the same, as a production model grounded in
    fixed policies would give it. A few requests carry an earlier greeting exchange.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    rng = random.Random(f"faq:{seed}")
    times = _timestamps(rng, n, _to_start(start))
    weights = [w for w, _ in _FAQS]
    seen: set[str] = set()
    records: list[dict[str, Any]] = []
    for when in times:
        messages: list[dict[str, Any]] = []
        user_text = answer = ""
        for _attempt in range(25):
            messages = [{"role": "system", "content": _FAQ_SYSTEM_PROMPT}]
            if rng.random() < 0.12:
                messages += _greeting_context(rng)
            faq = rng.choices([f for _, f in _FAQS], weights=weights)[0]
            entities: dict[str, Any] = {}
            if faq.needs in ("product", "apparel"):
                pool = [p for p in _PRODUCTS if p.apparel or faq.needs == "product"]
                product = rng.choice(pool)
                entities = {
                    "product": product.name,
                    "years": _WARRANTY_YEARS[product.category],
                    "care": _CARE[product.material],
                }
            elif faq.needs == "country":
                country = rng.choice(list(_COUNTRIES))
                low, high, cost = _COUNTRIES[country]
                entities = {"country": country, "days": f"{low}-{high}", "cost": cost}
            tone = _pick_tone(rng, ("polite", "neutral", "casual"))
            greet = len(messages) == 1
            user_text = _render(rng, rng.choice(faq.questions), entities, tone, greet=greet)
            answer = faq.answer(entities)
            if user_text not in seen:
                break
        seen.add(user_text)
        messages.append({"role": "user", "content": user_text})
        request = {
            "model": production_model,
            "messages": messages,
            "temperature": 0.3,
            "max_tokens": 256,
        }
        message = {"role": "assistant", "content": answer}
        response = _completion(rng, when, production_model, request, message, "stop")
        records.append(
            {
                "workload_id": workload_id,
                "client_id": client_id,
                "timestamp": _iso(when),
                "request": request,
                "response": response,
            }
        )
    return records


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    """Write one compact JSON object a line (orjson) to ``path``; return how many were written.

    Parent folders are created; an existing file is replaced.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("wb") as fh:
        for record in records:
            fh.write(orjson.dumps(record))
            fh.write(b"\n")
            count += 1
    return count
