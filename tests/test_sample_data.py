"""Tests of the sample workload generator: shape, determinism, variety and learnability."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import orjson
import pytest

from flywheel.sample_data import (
    CUSTOMER_SERVICE_TOOLS,
    generate_customer_service_logs,
    generate_generic_logs,
    write_jsonl,
)
from flywheel.schemas import LogRecord

# Arguments whose values a customer types: they must appear verbatim in the conversation.
VERBATIM_KEYS = {"order_id", "product_name", "street", "city", "postal_code", "code", "query"}
JSON_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool}


@pytest.fixture(scope="module")
def cs_logs() -> list[dict[str, Any]]:
    return generate_customer_service_logs(400)


@pytest.fixture(scope="module")
def faq_logs() -> list[dict[str, Any]]:
    return generate_generic_logs(200)


def _message(record: dict[str, Any]) -> dict[str, Any]:
    return record["response"]["choices"][0]["message"]


def _tool_name(record: dict[str, Any]) -> str:
    calls = _message(record).get("tool_calls")
    return calls[0]["function"]["name"] if calls else "no_tool"


def _last_user(record: dict[str, Any]) -> str:
    return record["request"]["messages"][-1]["content"]


def _schemas() -> dict[str, dict[str, Any]]:
    return {t["function"]["name"]: t["function"]["parameters"] for t in CUSTOMER_SERVICE_TOOLS}


def _dump(records: list[dict[str, Any]]) -> bytes:
    return orjson.dumps(records)


def test_same_seed_gives_identical_output() -> None:
    assert _dump(generate_customer_service_logs(120, seed=7)) == _dump(
        generate_customer_service_logs(120, seed=7)
    )
    assert _dump(generate_generic_logs(80, seed=7)) == _dump(generate_generic_logs(80, seed=7))


def test_different_seed_gives_different_output() -> None:
    a, b = generate_customer_service_logs(120, seed=1), generate_customer_service_logs(120, seed=2)
    assert [_last_user(r) for r in a] != [_last_user(r) for r in b]
    fa, fb = generate_generic_logs(80, seed=1), generate_generic_logs(80, seed=2)
    assert [_last_user(r) for r in fa] != [_last_user(r) for r in fb]


def test_every_record_is_a_valid_log_record(
    cs_logs: list[dict[str, Any]], faq_logs: list[dict[str, Any]]
) -> None:
    for record in cs_logs + faq_logs:
        parsed = LogRecord.model_validate(record)
        assert parsed.timestamp.tzinfo is not None
        assert set(record) == {"workload_id", "client_id", "timestamp", "request", "response"}
    assert {r["workload_id"] for r in cs_logs} == {"customer-service"}
    assert {r["workload_id"] for r in faq_logs} == {"faq-answers"}
    assert {r["client_id"] for r in cs_logs + faq_logs} == {"sample-app"}


def test_ids_and_model_are_configurable() -> None:
    records = generate_customer_service_logs(
        20, workload_id="wl", client_id="cl", production_model="big/model"
    )
    assert {(r["workload_id"], r["client_id"]) for r in records} == {("wl", "cl")}
    assert {r["request"]["model"] for r in records} == {"big/model"}
    assert {r["response"]["model"] for r in records} == {"big/model"}


def test_request_and_response_follow_openai_shapes(cs_logs: list[dict[str, Any]]) -> None:
    for record in cs_logs:
        request, response = record["request"], record["response"]
        assert set(request) == {"model", "messages", "tools", "temperature", "max_tokens"}
        assert request["messages"][0]["role"] == "system"
        assert request["messages"][-1]["role"] == "user"
        assert response["object"] == "chat.completion"
        assert response["id"].startswith("chatcmpl-")
        assert isinstance(response["created"], int)
        choice = response["choices"][0]
        assert choice["index"] == 0
        assert choice["message"]["role"] == "assistant"
        usage = response["usage"]
        assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
        if choice["message"].get("tool_calls"):
            assert choice["finish_reason"] == "tool_calls"
            call = choice["message"]["tool_calls"][0]
            assert call["type"] == "function" and call["id"].startswith("call_")
        else:
            assert choice["finish_reason"] == "stop"
            assert choice["message"]["content"].strip()


def test_at_least_six_tools_each_used_five_times(cs_logs: list[dict[str, Any]]) -> None:
    names = set(_schemas())
    assert len(names) >= 6
    counts = Counter(_tool_name(r) for r in cs_logs)
    assert set(counts) - {"no_tool"} == names
    assert min(counts[name] for name in names) >= 5
    # Uneven mix: the most common tool is used far more often than the rarest.
    assert max(counts[n] for n in names) >= 3 * min(counts[n] for n in names)


@pytest.mark.parametrize("seed", [1, 2, 3, 42])
def test_every_tool_used_five_times_at_300_for_other_seeds(seed: int) -> None:
    counts = Counter(_tool_name(r) for r in generate_customer_service_logs(300, seed=seed))
    assert min(counts[name] for name in _schemas()) >= 5


@pytest.mark.parametrize("seed", [0, 5, 9])
def test_share_of_plain_answers(seed: int) -> None:
    records = generate_customer_service_logs(400, seed=seed)
    share = sum(_tool_name(r) == "no_tool" for r in records) / len(records)
    assert 0.08 <= share <= 0.20


def test_user_messages_are_varied(
    cs_logs: list[dict[str, Any]], faq_logs: list[dict[str, Any]]
) -> None:
    for records in (cs_logs, faq_logs):
        users = [_last_user(r) for r in records]
        assert len(set(users)) / len(users) >= 0.90


def test_some_requests_carry_earlier_turns(cs_logs: list[dict[str, Any]]) -> None:
    lengths = Counter(len(r["request"]["messages"]) for r in cs_logs)
    assert lengths[2] > len(cs_logs) / 2  # most are single-turn
    assert lengths[4] > 0  # greeting exchange before the request
    assert lengths[6] > 0  # earlier order lookup: tool call + tool result + summary
    for record in cs_logs:
        messages = record["request"]["messages"]
        for i, message in enumerate(messages):
            for call in message.get("tool_calls") or []:
                assert isinstance(call["function"]["arguments"], str)
                orjson.loads(call["function"]["arguments"])
                reply = messages[i + 1]
                assert reply["role"] == "tool" and reply["tool_call_id"] == call["id"]


def test_tool_call_arguments_match_the_tool_schema(cs_logs: list[dict[str, Any]]) -> None:
    schemas = _schemas()
    for record in cs_logs:
        assert record["request"]["tools"] == CUSTOMER_SERVICE_TOOLS
        for call in _message(record).get("tool_calls") or []:
            schema = schemas[call["function"]["name"]]
            raw = call["function"]["arguments"]
            assert isinstance(raw, str)
            args = orjson.loads(raw)
            assert isinstance(args, dict)
            assert set(schema["required"]) <= set(args)
            assert set(args) <= set(schema["properties"])
            for key, value in args.items():
                prop = schema["properties"][key]
                expected = JSON_TYPES[prop["type"]]
                assert isinstance(value, expected) and not isinstance(value, bool), (key, value)
                if "enum" in prop:
                    assert value in prop["enum"]
                if "minimum" in prop:
                    assert value >= prop["minimum"]


def test_tool_schemas_are_compact() -> None:
    for tool in CUSTOMER_SERVICE_TOOLS:
        params = tool["function"]["parameters"]
        assert 1 <= len(params["properties"]) <= 4
        assert params["required"]
        assert len(tool["function"]["description"]) <= 100


def test_typed_argument_values_appear_in_the_conversation(cs_logs: list[dict[str, Any]]) -> None:
    checked = 0
    for record in cs_logs:
        user_text = "\n".join(
            m["content"] for m in record["request"]["messages"] if m["role"] == "user"
        )
        for call in _message(record).get("tool_calls") or []:
            args = orjson.loads(call["function"]["arguments"])
            for key in VERBATIM_KEYS & set(args):
                assert args[key] in user_text, (key, args[key], user_text)
                checked += 1
    assert checked > 300


def test_order_id_is_in_the_last_message_unless_context_holds_it(
    cs_logs: list[dict[str, Any]],
) -> None:
    for record in cs_logs:
        for call in _message(record).get("tool_calls") or []:
            order_id = orjson.loads(call["function"]["arguments"]).get("order_id")
            if order_id and order_id not in _last_user(record):
                assert len(record["request"]["messages"]) > 2  # referred to as "it"


def test_timestamps_increase_over_several_days(
    cs_logs: list[dict[str, Any]], faq_logs: list[dict[str, Any]]
) -> None:
    for records in (cs_logs, faq_logs):
        stamps = [r["timestamp"] for r in records]
        assert all(s.endswith("Z") for s in stamps)
        times = [datetime.fromisoformat(s.replace("Z", "+00:00")) for s in stamps]
        assert all(a < b for a, b in pairwise(times))
        assert times[-1] - times[0] >= timedelta(days=3)


def test_start_is_respected() -> None:
    start = datetime(2024, 12, 30, 12, 0, tzinfo=UTC)
    records = generate_customer_service_logs(30, start=start)
    first = datetime.fromisoformat(records[0]["timestamp"].replace("Z", "+00:00"))
    assert start < first < start + timedelta(days=1)
    naive = generate_generic_logs(10, start=datetime(2024, 12, 30, 12, 0))
    assert naive[0]["timestamp"].startswith("2024-12-3")


def test_generic_logs_have_no_tools(faq_logs: list[dict[str, Any]]) -> None:
    for record in faq_logs:
        assert "tools" not in record["request"]
        assert all(
            not m.get("tool_calls") and m["role"] != "tool" for m in record["request"]["messages"]
        )
        choice = record["response"]["choices"][0]
        assert not choice["message"].get("tool_calls")
        assert choice["finish_reason"] == "stop"
        assert choice["message"]["content"].strip()


def test_small_and_empty_sizes() -> None:
    assert generate_customer_service_logs(0) == []
    assert generate_generic_logs(0) == []
    assert len(generate_customer_service_logs(3)) == 3
    with pytest.raises(ValueError):
        generate_customer_service_logs(-1)


def test_write_jsonl_round_trips(tmp_path: Path, faq_logs: list[dict[str, Any]]) -> None:
    path = tmp_path / "nested" / "faq.jsonl"
    assert write_jsonl(path, iter(faq_logs[:25])) == 25
    lines = path.read_bytes().splitlines()
    assert len(lines) == 25
    assert [orjson.loads(line) for line in lines] == faq_logs[:25]
    assert write_jsonl(path, []) == 0
    assert path.read_bytes() == b""


def test_records_do_not_share_mutable_parts() -> None:
    records = generate_customer_service_logs(5)
    records[0]["request"]["tools"][0]["function"]["name"] = "changed"
    assert records[1]["request"]["tools"] == CUSTOMER_SERVICE_TOOLS
    assert CUSTOMER_SERVICE_TOOLS[0]["function"]["name"] != "changed"


def test_compact_variant_for_small_models() -> None:
    records = generate_customer_service_logs(320, seed=4, compact=True)
    assert len(records) == 320
    names = {t["function"]["name"] for t in records[0]["request"]["tools"]}
    assert names == {
        "lookup_order",
        "track_shipment",
        "request_refund",
        "check_product_availability",
        "search_help_center",
    }
    assert all(
        "description" not in schema
        for tool in records[0]["request"]["tools"]
        for schema in tool["function"]["parameters"]["properties"].values()
    )
    called = Counter(
        call["function"]["name"]
        for r in records
        for call in r["response"]["choices"][0]["message"].get("tool_calls") or []
    )
    assert set(called) <= names and min(called.values()) >= 5
    full = generate_customer_service_logs(320, seed=4)
    assert len(orjson.dumps(records[0]["request"])) < len(orjson.dumps(full[0]["request"])) / 2
