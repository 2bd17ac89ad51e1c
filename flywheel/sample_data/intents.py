"""User turns: one maker per tool (direct or follow-up phrasing) and plain no-tool turns."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flywheel.sample_data.entities import (
    _CITIES,
    _COUNTRIES,
    _PRODUCTS,
    _PROMO_CODES,
    _address,
    _order_id,
)
from flywheel.sample_data.styling import _TONES
from flywheel.sample_data.tools import _CANCEL_REASONS, _REFUND_REASONS, _SHOP, _SIZES


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
