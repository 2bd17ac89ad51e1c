"""Property tests: malformed logs go through load and curation without crashing, all accounted.

Every record is either used (eval, train or val) or counted under a reason; the only error
curation may raise is InvalidDataError (too few usable records), with a message.
"""

from __future__ import annotations

import asyncio
import copy
import tempfile
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flywheel.clients.logstore.loader import load_jsonl
from flywheel.clients.logstore.sqlite import SQLiteLogStore
from flywheel.config import PIIConfig
from flywheel.curation.pii import build_redactor
from flywheel.curation.pipeline import CurationOptions, curate
from flywheel.errors import InvalidDataError
from tests.curation.builders import make_record

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

PATHS: list[tuple[Any, ...]] = [
    ("request",),
    ("request", "messages"),
    ("request", "messages", 0),
    ("request", "messages", 0, "role"),
    ("request", "messages", 0, "content"),
    ("request", "tools"),
    ("request", "tools", 0, "function"),
    ("request", "tools", 0, "function", "parameters"),
    ("response",),
    ("response", "choices"),
    ("response", "choices", 0),
    ("response", "choices", 0, "message"),
    ("response", "choices", 0, "message", "content"),
    ("response", "choices", 0, "message", "tool_calls"),
    ("response", "choices", 0, "message", "tool_calls", 0, "function", "arguments"),
    ("response", "choices", 0, "message", "tool_calls", 0, "function", "name"),
    ("response", "choices", 0, "finish_reason"),
    ("response", "error"),
]


@st.composite
def damaged_records(draw: st.DrawFn) -> Any:
    """A valid record with one part replaced or removed, or an arbitrary JSON value."""
    kind = draw(st.sampled_from(["valid", "replaced", "removed", "junk", "huge", "parts"]))
    i = draw(st.integers(0, 10_000))
    tool = draw(st.sampled_from([None, "search", "lookup"]))
    record = make_record(f"question {i}", tool=tool, tools=["search", "lookup"])
    if kind == "junk":
        return draw(json_values)
    if kind == "huge":
        record["request"]["messages"][-1]["content"] = "x" * draw(st.integers(10_000, 200_000))
        return record
    if kind == "parts":
        record["request"]["messages"][-1]["content"] = [
            {"type": "text", "text": f"part {i}"},
            {"type": "image_url", "image_url": {"url": "data:..."}},
        ]
        return record
    if kind == "valid":
        return record
    path = draw(st.sampled_from(PATHS))
    parent: Any = record
    for key in path[:-1]:
        try:
            parent = parent[key]
        except (KeyError, IndexError, TypeError):
            return record
    last = path[-1]
    try:
        if kind == "removed" and isinstance(parent, dict):
            parent.pop(last, None)
        elif kind == "removed" and isinstance(parent, list) and parent:
            parent.clear()
        else:
            parent[last] = draw(
                st.one_of(json_values, st.just(""), st.just("{not json"), st.just([]))
            )
    except (IndexError, TypeError):
        pass
    return record


def options(**overrides: Any) -> CurationOptions:
    values: dict[str, Any] = {
        "eval_size": 2,
        "val_ratio": 0.2,
        "min_total_records": 1,
        "limit": 10_000,
        "seed": 0,
        "near_duplicate_threshold": None,
    }
    return CurationOptions(**(values | overrides))


def check_accounting(records: list[Any], **option_values: Any) -> None:
    before = copy.deepcopy(records)
    redactor = build_redactor(PIIConfig(enabled=True, custom={"code": r"question \d+"}))
    try:
        curated = curate(records, options(**option_values), redactor=redactor)
    except InvalidDataError as exc:
        assert str(exc)
        return
    finally:
        assert records == before  # inputs are never mutated
    report = curated.report
    used = report.eval_records + report.train_records + report.val_records
    assert used + sum(report.dropped.values()) == report.total_records == len(records)
    assert len(curated.eval_records) == report.eval_records
    assert len(curated.train_lines) == report.train_records
    assert len(curated.val_lines) == report.val_records
    orjson.dumps([curated.eval_records, curated.train_lines, curated.val_lines])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(damaged_records(), min_size=0, max_size=25))
def test_curation_survives_damaged_records(records: list[Any]) -> None:
    check_accounting(records)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(damaged_records(), min_size=0, max_size=25))
def test_curation_survives_with_near_dedup_and_strict_options(records: list[Any]) -> None:
    check_accounting(
        records,
        near_duplicate_threshold=0.7,
        keep_non_tool_records=False,
        max_tool_properties=1,
        parse_function_arguments=False,
    )


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=60), st.text(max_size=60)), max_size=20))
def test_curation_of_raw_lines_counts_garbage(lines: list[Any]) -> None:
    good = [orjson.dumps(make_record(f"q {i}", tool="search")) for i in range(6)]
    check_accounting([*good, *lines])


line_strategy = st.one_of(
    st.binary(max_size=80),
    st.text(max_size=80).map(lambda s: s.encode("utf-8", "surrogatepass")),
    damaged_records().map(lambda r: orjson.dumps(r)),
    st.builds(
        lambda r, ts: orjson.dumps({"workload_id": "w", "client_id": "c", "timestamp": ts, **r}),
        st.builds(lambda: make_record("ok", tool="search")),
        st.one_of(
            st.just("2026-01-01T00:00:00Z"),
            st.integers(-(2**40), 2**40),
            json_values,
        ),
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(line_strategy, max_size=30))
def test_loading_accounts_for_every_line(lines: list[bytes]) -> None:
    text = b"\n".join(line.replace(b"\n", b" ").replace(b"\r", b" ") for line in lines)
    bom = "\ufeff".encode()
    non_blank = sum(1 for line in text.split(b"\n") if line.strip().removeprefix(bom).strip())

    async def load() -> tuple[int, int, int]:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "logs.jsonl"
            path.write_bytes(text)
            async with SQLiteLogStore(Path(tmp) / "logs.db") as store:
                report = await load_jsonl(path, store, batch_size=7)
                stored = await store.count()
        for rejection in report.rejections:
            assert rejection.line_no >= 1 and rejection.reason
        return report.accepted, report.rejected, stored

    accepted, rejected, stored = asyncio.run(load())
    assert accepted + rejected == non_blank
    assert stored == accepted
