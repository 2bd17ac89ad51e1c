"""PII redaction of logged calls: detectors, their order, every record location, copy-on-write."""

from __future__ import annotations

import copy
import json
import re
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flywheel.config import PIIConfig
from flywheel.curation.pii import (
    BUILTIN_DETECTORS,
    BUILTIN_ORDER,
    DEFAULT_REPLACEMENT,
    Detector,
    Redactor,
    build_redactor,
    custom_detector,
    luhn_valid,
)
from tests.curation.builders import make_record, tool_call


def redactor(*names: str, replacement: str = DEFAULT_REPLACEMENT) -> Redactor:
    """A redactor with the named built-ins (all of them when none is named), in the fixed order."""
    chosen = names or BUILTIN_ORDER
    return Redactor([BUILTIN_DETECTORS[n] for n in BUILTIN_ORDER if n in chosen], replacement)


def only(name: str, text: str) -> str:
    return redactor(name).redact_text(text)


def answer(record: dict[str, Any], choice: int = 0) -> dict[str, Any]:
    return record["response"]["choices"][choice]["message"]


# --- detectors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to john.doe@example.com", "write to [EMAIL]"),
        ("JOHN_DOE+tag@mail.example.co.uk!", "[EMAIL]!"),
        ("mail me: a.b-c%d@sub-domain.example.org.", "mail me: [EMAIL]."),
        ("<jane@example.io>, bob@example.net", "<[EMAIL]>, [EMAIL]"),
        ("5551234567@sms.example.com", "[EMAIL]"),
        ('{"to":"x@y.de"}', '{"to":"[EMAIL]"}'),
    ],
)
def test_email_positives(text: str, expected: str) -> None:
    assert only("email", text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "no at sign here",
        "@handle on social media",
        "user@localhost",  # no dotted domain
        "admin@192.168.0.1",  # no letter top-level domain
        "a@b.c",  # one-letter top-level domain
        "price @ 5.00",
        "name@ example.com",
    ],
)
def test_email_negatives(text: str) -> None:
    assert only("email", text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call (555) 123-4567 now", "call [PHONE] now"),
        ("call 555-123-4567.", "call [PHONE]."),
        ("555.123.4567 or 555 123 4567", "[PHONE] or [PHONE]"),
        ("toll free 1-800-555-0199", "toll free [PHONE]"),
        ("(555)123-4567", "[PHONE]"),
        ("+44 20 7946 0958", "[PHONE]"),
        ("+44 (0)20 7946 0958", "[PHONE]"),
        ("+1 (555) 123-4567", "[PHONE]"),
        ("+1-555-123-4567", "[PHONE]"),
        ("+15551234567", "[PHONE]"),
        ("+33 1 23 45 67 89", "[PHONE]"),
        ("+49 30 12345678", "[PHONE]"),
        ("020 7946 0958", "[PHONE]"),
        ("07700 900123", "[PHONE]"),
        ("(030) 1234-5678", "[PHONE]"),
        ("030-12345678", "[PHONE]"),
        ("01 23 45 67 89", "[PHONE]"),
        ("tel:+442079460958;", "tel:[PHONE];"),
        ("(call +1 555 123 4567)", "(call [PHONE])"),
        ("555-123-4567+44 20 7946 0958", "[PHONE][PHONE]"),  # touching numbers
        ("7(555) 123-4567", "7[PHONE]"),
        ("555-123-4567(030) 1234-5678", "[PHONE][PHONE]"),
    ],
)
def test_phone_positives(text: str, expected: str) -> None:
    assert only("phone", text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "order ORD-2024-001234 shipped",
        "order 12345678901 shipped",
        "5551234567",  # no separators and no "+": could be any id
        "in 2024 we sold 1500 units",
        "on 2024-01-15 at 10:30",
        "dates 01-02-2024, 12-31-2024, 15.01.2024, 01/02/2024, 2024 01 15",
        "$1,234,567.89 and 1 000 000 EUR",
        "between 100 200 3000",  # an area code never starts with 0 or 1
        "+12",  # too few digits
        "+1234 5678 9012 3456 78",  # more than 15 digits
        "x+1234567",  # glued to a word
        "++44 20 7946 0958",
        "555-123-45678",  # last group too long
        "ISBN 978-3-16-148410-0",
        "SSN-like 123-45-6789",
        "v555-123-4567",  # glued to a word
        "555-123-4567-89",  # part of a longer dashed number
    ],
)
def test_phone_negatives(text: str) -> None:
    assert only("phone", text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("visa 4111 1111 1111 1111 exp 12/25", "visa [CARD] exp 12/25"),
        ("4111-1111-1111-1111", "[CARD]"),
        ("4111111111111111", "[CARD]"),
        ("mc 5555555555554444.", "mc [CARD]."),
        ("amex 3782 822463 10005", "amex [CARD]"),
        ("amex 378282246310005", "amex [CARD]"),
        ("diners 3056 930902 5904", "diners [CARD]"),
        ("13 digits 4222222222222", "13 digits [CARD]"),
        ("19 digits 6011000990139424009", "19 digits [CARD]"),
        ("card:4012888888881881,", "card:[CARD],"),
    ],
)
def test_card_positives(text: str, expected: str) -> None:
    assert only("card", text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "4111 1111 1111 1112",  # Luhn-invalid
        "4111111111111112",
        "tracking 1234567890123456",
        "4111 1111-1111 1111",  # mixed separators
        "41111111111111111111",  # 20 digits
        "411111111111",  # 12 digits
        "id abc4111111111111111",  # glued to a word
        "sha 4111111111111111deadbeef",
        "order ORD-2024-001234",
    ],
)
def test_card_negatives(text: str) -> None:
    assert only("card", text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("host 192.168.0.1 is up", "host [IP] is up"),
        ("ip=10.0.0.1:8080", "ip=[IP]:8080"),
        ("ip:255.255.255.255.", "ip:[IP]."),
        ("0.0.0.0/0", "[IP]/0"),
        ("[8.8.8.8]", "[[IP]]"),
        ("v6 2001:db8::1", "v6 [IP]"),
        ("2001:0db8:85a3:0000:0000:8a2e:0370:7334", "[IP]"),
        ("loopback ::1", "loopback [IP]"),
        ("link fe80::1ff:fe23:4567:890a%eth0", "link [IP]%eth0"),
        ("fe80::", "[IP]"),
        ("mapped ::ffff:192.0.2.1", "mapped [IP]"),
        ("64:ff9b::192.0.2.33", "[IP]"),
        ("[2001:DB8:0:0:8:800:200C:417A]:443", "[[IP]]:443"),
    ],
)
def test_ip_positives(text: str, expected: str) -> None:
    assert only("ip", text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "version 1.2.3.4.5",
        "release 10.0.0.1.2 is out",
        "256.1.1.1",
        "1.2.3",
        "010.001.002.003",  # leading zeros: not an address
        "abc1.2.3.4",
        "1.2.3.4abc",
        "at 12:30:45",
        "mac 00:1A:2B:3C:4D:5E",
        "std::vector and a::b and dead::beef",
        "1:2:3:4:5:6:7:8:9",
        "15.01.2024",
    ],
)
def test_ip_negatives(text: str) -> None:
    assert only("ip", text) == text


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("4111111111111111", True),
        ("4111 1111 1111 1111", True),
        ("378282246310005", True),
        ("4222222222222", True),
        ("4111111111111112", False),
        ("411111111111", False),  # too short
        ("41111111111111111111", False),  # too long
        ("", False),
    ],
)
def test_luhn(number: str, valid: bool) -> None:
    assert luhn_valid(number) is valid


def test_all_detectors_together() -> None:
    text = (
        "Hi, I'm jane@example.com, call +1 (555) 123-4567; card 4111 1111 1111 1111; "
        "my IP is 203.0.113.9. Order ORD-2024-001234 from 2024-01-15 (v1.2.3.4.5)."
    )
    assert redactor().redact_text(text) == (
        "Hi, I'm [EMAIL], call [PHONE]; card [CARD]; "
        "my IP is [IP]. Order ORD-2024-001234 from 2024-01-15 (v1.2.3.4.5)."
    )


# --- order, template, custom patterns, counts ----------------------------------------------


def test_email_runs_before_ip() -> None:
    text = "1.2.3.4@example.com"
    assert redactor().redact_text(text) == "[EMAIL]"
    assert only("ip", text) == "[IP]@example.com"


def test_email_runs_before_phone() -> None:
    text = "+15551234567@sms.example.com"
    assert redactor().redact_text(text) == "[EMAIL]"
    assert only("phone", text) == "[PHONE]@sms.example.com"


def test_card_runs_before_phone() -> None:
    text = "+378282246310005"
    both = redactor("card", "phone")
    assert both.redact_text(text) == "+[CARD]"
    assert both.counts == {"card": 1}
    assert only("phone", text) == "[PHONE]"


def test_builtin_order_is_fixed_whatever_the_config_order() -> None:
    a = build_redactor(PIIConfig(enabled=True, detectors=["phone", "ip", "card", "email"]))
    b = build_redactor(PIIConfig(enabled=True, detectors=["email", "card", "ip", "phone"]))
    assert a is not None and b is not None
    assert [d.name for d in a.detectors] == [d.name for d in b.detectors] == list(BUILTIN_ORDER)


def test_custom_detectors_run_first_in_config_order() -> None:
    config = PIIConfig(
        enabled=True,
        custom={"staff": r"[a-z]+@corp\.example\.com", "ticket": r"TKT-\d{6}"},
    )
    red = build_redactor(config)
    assert red is not None
    assert [d.name for d in red.detectors] == ["staff", "ticket", *BUILTIN_ORDER]
    text = "ask bob@corp.example.com or ann@example.com about TKT-123456"
    assert red.redact_text(text) == "ask [STAFF] or [EMAIL] about [TICKET]"
    assert red.counts == {"staff": 1, "email": 1, "ticket": 1}


def test_custom_only_config() -> None:
    red = build_redactor(PIIConfig(enabled=True, detectors=[], custom={"emp_id": r"E\d{5}"}))
    assert red is not None
    assert red.redact_text("E12345 wrote to a@b.com") == "[EMP_ID] wrote to a@b.com"


def test_custom_detector_with_empty_matches_replaces_nothing() -> None:
    red = Redactor([custom_detector("ahead", r"(?=x)")])
    assert red.redact_text("xx yy") == "xx yy"
    assert red.counts == {}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("[{name}]", "to [EMAIL] or [PHONE]"),
        ("<{name}>", "to <EMAIL> or <PHONE>"),
        ("***", "to *** or ***"),
        ("{name}:{name}", "to EMAIL:EMAIL or PHONE:PHONE"),
        (r"\1 {x}", r"to \1 {x} or \1 {x}"),  # taken literally, not as a regex template
    ],
)
def test_replacement_template(template: str, expected: str) -> None:
    config = PIIConfig(enabled=True, replacement=template)
    red = build_redactor(config)
    assert red is not None
    assert red.redact_text("to a@b.com or 555-123-4567") == expected


def test_build_redactor_off() -> None:
    assert build_redactor(PIIConfig()) is None
    assert build_redactor(PIIConfig(enabled=False, custom={"x": "x"})) is None
    assert build_redactor(PIIConfig(enabled=True, detectors=[])) is None


def test_build_redactor_subset() -> None:
    red = build_redactor(PIIConfig(enabled=True, detectors=["email"]))
    assert red is not None
    assert red.redact_text("a@b.com 555-123-4567") == "[EMAIL] 555-123-4567"


def test_counts_accumulate_per_detector() -> None:
    red = redactor()
    red.redact_text("a@b.com and c@d.org")
    red.redact_text("555-123-4567, 4111111111111111, 4111111111111112")  # last: not Luhn
    red.redact_record(make_record("ip 10.0.0.1", content="reach me at e@f.io"))
    assert red.counts == {"email": 3, "phone": 1, "card": 1, "ip": 1}


def test_unchanged_text_is_the_same_object() -> None:
    red = redactor()
    for text in ["plain words", "order 12345 on 2024-01-15", "x@y", ""]:
        assert red.redact_text(text) is text
    assert red.counts == {}


@pytest.mark.parametrize(
    "text",
    [
        "555-123-4567(555) 123-4567",  # found by hypothesis: touching numbers
        "+1192.168.0.1::2024-01-15",
        "1.2.3.4.5::",
        "10.0.0.1::1",
        "a@b.com@x.com",
        "x@a.bc.d@e.fg",
        "4111111111111111+44 20 7946 0958",
    ],
)
def test_touching_matches_redact_idempotently(text: str) -> None:
    red = redactor()
    once = red.redact_text(text)
    assert red.redact_text(once) == once


def test_custom_pattern_matching_its_own_token_stops() -> None:
    red = Redactor([custom_detector("caps", r"[A-Z]+")])
    out = red.redact_text("ABC")
    assert out.startswith("[[") and out.count("CAPS") == 1
    assert red.counts["caps"] <= 8


def test_hints_gate_a_detector() -> None:
    detector = Detector("x", re.compile("a"), hints=(re.compile("b"),))
    red = Redactor([detector])
    assert red.redact_text("a a") == "a a"
    assert red.redact_text("a b") == "[X] b"


def test_token() -> None:
    assert Redactor([], "<{name}/{name}>").token("emp_id") == "<EMP_ID/EMP_ID>"


# --- records -------------------------------------------------------------------------------


def test_string_content_in_every_message() -> None:
    record = make_record(
        messages=[
            {"role": "system", "content": "Support: help@shop.example.com"},
            {"role": "user", "content": "I am at 555-123-4567"},
        ],
        content="We will call +44 20 7946 0958.",
    )
    out = redactor().redact_record(record)
    messages = out["request"]["messages"]
    assert messages[0] == {"role": "system", "content": "Support: [EMAIL]"}
    assert messages[1] == {"role": "user", "content": "I am at [PHONE]"}
    assert answer(out) == {"role": "assistant", "content": "We will call [PHONE]."}


def test_content_parts() -> None:
    image = {"type": "image_url", "image_url": {"url": "https://x.example/a@b.com.png"}}
    parts = [
        {"type": "text", "text": "mail a@b.com"},
        image,
        {"type": "text", "text": "nothing here"},
        "bare 10.0.0.1",
        7,
    ]
    record = make_record(messages=[{"role": "user", "content": parts}])
    out = redactor().redact_record(record)
    new_parts = out["request"]["messages"][0]["content"]
    assert new_parts[0] == {"type": "text", "text": "mail [EMAIL]"}
    assert new_parts[1] is image  # only text parts are redacted
    assert new_parts[2] is parts[2]
    assert new_parts[3:] == ["bare [IP]", 7]


def test_response_content_parts() -> None:
    record = make_record(content=[{"type": "text", "text": "ip 10.1.2.3"}])
    assert answer(redactor().redact_record(record))["content"] == [
        {"type": "text", "text": "ip [IP]"}
    ]


def test_tool_messages() -> None:
    record = make_record(
        messages=[
            {"role": "user", "content": "who ordered?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [tool_call("lookup", {"order": "ORD-2024-001234"}, "call_9")],
            },
            {"role": "tool", "tool_call_id": "call_9", "content": '{"email": "c@d.com"}'},
        ]
    )
    out = redactor().redact_record(record)
    tool_message = out["request"]["messages"][2]
    assert tool_message == {
        "role": "tool",
        "tool_call_id": "call_9",
        "content": '{"email": "[EMAIL]"}',
    }
    assert out["request"]["messages"][1] is record["request"]["messages"][1]


def test_request_tool_call_string_arguments() -> None:
    arguments = '{"to": "a@b.com", "body": "call 555-123-4567", "n": 3, "ok": true, "x": null}'
    record = make_record(
        messages=[
            {"role": "user", "content": "send it"},
            {"role": "assistant", "content": None, "tool_calls": [tool_call("send", arguments)]},
        ]
    )
    out = redactor().redact_record(record)
    call = out["request"]["messages"][1]["tool_calls"][0]
    assert call["function"]["arguments"] == (
        '{"to":"[EMAIL]","body":"call [PHONE]","n":3,"ok":true,"x":null}'
    )
    assert call["id"] == "call_1" and call["function"]["name"] == "send"


def test_request_tool_call_object_arguments() -> None:
    history_call = {
        "id": "call_0",
        "type": "function",
        "function": {
            "name": "crm",
            "arguments": {
                "contact": {"email": "a@b.com", "phones": ["555-123-4567", "none"]},
                "limit": 5,
            },
        },
    }
    record = make_record(
        messages=[
            {"role": "user", "content": "find"},
            {"role": "assistant", "content": None, "tool_calls": [history_call]},
        ]
    )
    out = redactor().redact_record(record)
    arguments = out["request"]["messages"][1]["tool_calls"][0]["function"]["arguments"]
    assert arguments == {"contact": {"email": "[EMAIL]", "phones": ["[PHONE]", "none"]}, "limit": 5}


def test_response_tool_call_arguments_string_and_object() -> None:
    calls = [
        tool_call("email", '{"to": "x@y.org"}', "call_a"),
        {
            "id": "call_b",
            "type": "function",
            "function": {"name": "geo", "arguments": {"ip": "8.8.4.4", "n": 1}},
        },
    ]
    record = make_record(tool="email", tool_calls=calls)
    out = redactor().redact_record(record)
    new_calls = answer(out)["tool_calls"]
    assert new_calls[0]["function"] == {"name": "email", "arguments": '{"to":"[EMAIL]"}'}
    assert new_calls[1]["function"] == {"name": "geo", "arguments": {"ip": "[IP]", "n": 1}}
    assert answer(out)["content"] is None


def test_every_response_choice() -> None:
    record = make_record(content="a@b.com")
    second = {"index": 1, "finish_reason": "stop", "message": {"role": "assistant", "content": ""}}
    third = {"index": 2, "finish_reason": "stop", "message": {"content": "c@d.com"}}
    record["response"]["choices"] += [second, third]
    out = redactor().redact_record(record)
    choices = out["response"]["choices"]
    assert [c["message"]["content"] for c in choices] == ["[EMAIL]", "", "[EMAIL]"]
    assert choices[1] is second
    assert choices[2]["index"] == 2


def test_legacy_function_call_arguments() -> None:
    record = make_record()
    answer(record)["function_call"] = {"name": "f", "arguments": '{"ip": "10.0.0.7"}'}
    out = redactor().redact_record(record)
    assert answer(out)["function_call"] == {"name": "f", "arguments": '{"ip":"[IP]"}'}


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ("call me at a@b.com", "call me at [EMAIL]"),  # not JSON at all
        ('{"to": "a@b.com"', '{"to": "[EMAIL]"'),  # truncated JSON
        ('{"n": NaN, "to": "a@b.com"}', '{"n": NaN, "to": "[EMAIL]"}'),  # not strict JSON
    ],
)
def test_arguments_that_are_not_json_are_redacted_as_text(arguments: str, expected: str) -> None:
    record = make_record(tool="send", arguments=arguments)
    out = redactor().redact_record(record)
    assert answer(out)["tool_calls"][0]["function"]["arguments"] == expected


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('"a@b.com"', '"[EMAIL]"'),  # a JSON string
        ('["a@b.com", 1, {"k": ["10.0.0.1"]}]', '["[EMAIL]",1,{"k":["[IP]"]}]'),
        ('{"to": "a\\u0040b.com"}', '{"to":"[EMAIL]"}'),  # an escape hides the "@"
        ('{"note": "café a@b.com ü"}', '{"note":"café [EMAIL] ü"}'),  # no \\u escapes added
    ],
)
def test_json_arguments_are_parsed_and_reserialised(arguments: str, expected: str) -> None:
    record = make_record(tool="send", arguments=arguments)
    out = redactor().redact_record(record)
    assert answer(out)["tool_calls"][0]["function"]["arguments"] == expected


def test_json_arguments_without_pii_keep_their_exact_text() -> None:
    arguments = '{ "q" :  "shoes",\n "size": 42 }'
    record = make_record(tool="search", arguments=arguments)
    out = redactor().redact_record(record)
    assert out is record
    assert answer(out)["tool_calls"][0]["function"]["arguments"] is arguments


def test_keys_are_never_changed() -> None:
    arguments = {"a@b.com": "c@d.com", "10.0.0.1": {"555-123-4567": ["x"]}}
    record = make_record(tool="f", arguments=json.dumps(arguments))
    answer(record)["tool_calls"].append(
        {"id": "call_2", "type": "function", "function": {"name": "g", "arguments": arguments}}
    )
    out = redactor().redact_record(record)
    string_call, object_call = answer(out)["tool_calls"]
    assert json.loads(string_call["function"]["arguments"]) == {
        "a@b.com": "[EMAIL]",
        "10.0.0.1": {"555-123-4567": ["x"]},
    }
    assert object_call["function"]["arguments"] == {
        "a@b.com": "[EMAIL]",
        "10.0.0.1": {"555-123-4567": ["x"]},
    }
    assert object_call["function"]["arguments"]["10.0.0.1"] is arguments["10.0.0.1"]


def test_schemas_roles_names_ids_and_metadata_are_untouched() -> None:
    record = make_record(
        messages=[
            {"role": "user", "name": "jane@example.com", "content": "hi a@b.com"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [tool_call("f", {"x": "1"}, "call_555-123-4567")],
            },
            {"role": "tool", "tool_call_id": "call_555-123-4567", "content": "ok"},
        ],
        tools=["notify"],
    )
    record["request"]["tools"][0]["function"]["description"] = "Email support@shop.example.com"
    record["workload_id"] = "ops@example.com"
    record["client_id"] = "10.0.0.1"
    record["timestamp"] = "2024-01-15T10:30:00Z"
    record["response"]["id"] = "chatcmpl-555-123-4567"
    answer(record)["tool_calls"] = [tool_call("notify_a@b.com", {"x": "y"}, "id_4111111111111111")]
    before = copy.deepcopy(record)

    out = redactor().redact_record(record)
    assert out["request"]["tools"] is record["request"]["tools"]
    assert out["request"]["tools"] == before["request"]["tools"]
    for key in ("workload_id", "client_id", "timestamp"):
        assert out[key] == before[key]
    assert out["response"]["id"] == before["response"]["id"]
    assert out["response"]["usage"] is record["response"]["usage"]
    messages = out["request"]["messages"]
    assert messages[0] == {"role": "user", "name": "jane@example.com", "content": "hi [EMAIL]"}
    assert messages[1] is record["request"]["messages"][1]
    assert messages[2] is record["request"]["messages"][2]
    assert answer(out)["tool_calls"] is answer(record)["tool_calls"]


def test_input_is_not_mutated() -> None:
    record = make_record(
        "a@b.com",
        tool="send",
        arguments={"to": "c@d.com", "nested": {"ip": ["10.0.0.1"]}},
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "555-123-4567"}]},
            {
                "role": "assistant",
                "content": "ok",
                "tool_calls": [
                    {
                        "id": "c",
                        "type": "function",
                        "function": {"name": "f", "arguments": {"e": ["x@y.com"]}},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c", "content": "4111 1111 1111 1111"},
        ],
    )
    before = copy.deepcopy(record)
    out = redactor().redact_record(record)
    assert record == before
    assert out != before


def test_record_without_pii_is_returned_as_is() -> None:
    record = make_record("order 42 please", tool="order", arguments={"item": 42}, tools=["order"])
    red = redactor()
    assert red.redact_record(record) is record
    assert red.counts == {}


def test_copy_on_write_shares_unchanged_parts() -> None:
    record = make_record(
        messages=[
            {"role": "system", "content": "be nice"},
            {"role": "user", "content": "mail a@b.com"},
            {"role": "user", "content": "thanks"},
        ],
        tool="send",
    )
    out = redactor().redact_record(record)
    assert out is not record
    assert out["request"] is not record["request"]
    assert out["request"]["messages"][0] is record["request"]["messages"][0]
    assert out["request"]["messages"][2] is record["request"]["messages"][2]
    assert out["request"]["tools"] is record["request"]["tools"]
    assert out["response"] is record["response"]  # nothing to redact in the answer

    answer_only = make_record(content="ip 10.0.0.1")
    out = redactor().redact_record(answer_only)
    assert out["request"] is answer_only["request"]
    assert out["response"]["usage"] is answer_only["response"]["usage"]


@pytest.mark.parametrize(
    "record",
    [
        {},
        {"request": None, "response": "x"},
        {"request": {"messages": "a@b.com"}, "response": {"choices": {"0": "a@b.com"}}},
        {"request": {"messages": [None, 1, "a@b.com", {"content": 5}]}},
        {"response": {"choices": [None, {"message": "a@b.com"}, {"message": {"tool_calls": 1}}]}},
        {"response": {"choices": [{"message": {"tool_calls": [None, {"function": "x"}]}}]}},
        {"response": {"choices": [{"message": {"tool_calls": [{"function": {"arguments": 5}}]}}]}},
    ],
)
def test_malformed_records_pass_through(record: dict[str, Any]) -> None:
    assert redactor().redact_record(record) is record


def test_non_dict_record_passes_through() -> None:
    for value in (None, [], "a@b.com"):
        assert redactor().redact_record(value) is value  # type: ignore[arg-type]


def test_patterns_stay_linear_on_adversarial_text() -> None:
    red = redactor()
    adversarial = [
        "a" * 100_000 + "@",
        "1." * 50_000,
        "+1 " * 35_000,
        "1:" * 50_000,
        "0 " * 50_000,
        "a@" + "b." * 50_000,
        "4111 " * 25_000,
        "::" * 50_000,
        ("x" * 70 + "@") * 1_500,
        "(555) " * 20_000,
        "12-" * 35_000,
    ]
    started = time.perf_counter()
    for text in adversarial:
        red.redact_text(text)
    assert time.perf_counter() - started < 5  # about 0.2 s; catastrophic backtracking: hours


# --- properties ----------------------------------------------------------------------------

_EMAIL_SHAPED = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")

_FRAGMENTS = [
    "john.doe@example.com",
    "a@b.co",
    "x@",
    "@y.org",
    "555-123-4567",
    "(555) 123-4567",
    "+44 20 7946 0958",
    "+1",
    "020 7946 0958",
    "01 23 45 67 89",
    "4111 1111 1111 1111",
    "4111111111111111",
    "378282246310005",
    "192.168.0.1",
    "1.2.3.4.5",
    "2001:db8::1",
    "::ffff:10.0.0.1",
    "::",
    "ORD-2024-001234",
    "2024-01-15",
    "[EMAIL]",
]
_pii_text = st.lists(
    st.one_of(
        st.sampled_from(_FRAGMENTS),
        st.text(alphabet="0123456789abcdefABC@.:+-() _[]", max_size=12),
        st.text(max_size=6),
    ),
    max_size=12,
).map("".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_pii_text)
def test_redact_text_is_idempotent_and_leaves_no_email(text: str) -> None:
    red = redactor()
    once = red.redact_text(text)
    assert red.redact_text(once) == once
    assert _EMAIL_SHAPED.search(once) is None


@given(st.text(alphabet=st.characters(blacklist_characters="@0123456789"), max_size=50))
def test_text_without_at_sign_or_digit_is_left_alone(text: str) -> None:
    assert redactor().redact_text(text) is text


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _pii_text,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["content", "text", "arguments", "x", "a@b.com"]), children
        )
    ),
    max_leaves=20,
)
_arguments = _json | _json.map(json.dumps) | _pii_text
_call = st.fixed_dictionaries(
    {}, optional={"id": _json, "function": _json | st.fixed_dictionaries({"arguments": _arguments})}
)
_message = _json | st.fixed_dictionaries(
    {},
    optional={
        "role": _json,
        "content": _json | _pii_text,
        "tool_calls": _json | st.lists(_call | _json, max_size=3),
        "function_call": st.fixed_dictionaries({"arguments": _arguments}),
    },
)
_record = _json | st.fixed_dictionaries(
    {},
    optional={
        "request": _json | st.fixed_dictionaries({}, optional={"messages": st.lists(_message)}),
        "response": _json
        | st.fixed_dictionaries(
            {},
            optional={
                "choices": _json
                | st.lists(st.fixed_dictionaries({}, optional={"message": _message}) | _json)
            },
        ),
        "workload_id": _json,
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_record)
def test_random_records_never_raise_nor_mutate(record: Any) -> None:
    before = copy.deepcopy(record)
    red = redactor()
    out = red.redact_record(record)
    assert record == before
    if not red.counts:
        assert out is record
    again = redactor().redact_record(out)
    assert again == out  # redacting twice changes nothing more
