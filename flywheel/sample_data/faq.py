"""The generic workload without tools: short answers to shop FAQ questions."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flywheel.sample_data.entities import _COUNTRIES, _PRODUCTS
from flywheel.sample_data.records import (
    _completion,
    _greeting_context,
    _log_record,
    _timestamps,
    _to_start,
)
from flywheel.sample_data.styling import _pick_tone, _render
from flywheel.sample_data.tools import _SHOP

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
        records.append(_log_record(workload_id, client_id, when, request, response))
    return records
