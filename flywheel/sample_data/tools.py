"""The customer-service agent's tool schemas, tool mix and system prompt."""

from __future__ import annotations

from typing import Any

_SHOP = "Northwind Outfitters"

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

COMPACT_TOOL_NAMES = (
    "lookup_order",
    "track_shipment",
    "request_refund",
    "check_product_availability",
    "search_help_center",
)
"""The five commonest tools: the compact variant for small models on a CPU (short prompts)."""


def _compact(tool: dict[str, Any]) -> dict[str, Any]:
    """``tool`` without parameter descriptions (the names and enums carry the meaning)."""
    function = tool["function"]
    parameters = function["parameters"]
    properties = {
        name: {k: v for k, v in schema.items() if k != "description"}
        for name, schema in parameters["properties"].items()
    }
    return _tool(function["name"], function["description"], properties, parameters["required"])


COMPACT_TOOLS: list[dict[str, Any]] = [
    _compact(tool)
    for tool in CUSTOMER_SERVICE_TOOLS
    if tool["function"]["name"] in COMPACT_TOOL_NAMES
]

_COMPACT_SYSTEM_PROMPT = (
    f"You are the support assistant of {_SHOP}, an outdoor shop. Use a tool when one fits and "
    "copy order ids and product names exactly."
)
