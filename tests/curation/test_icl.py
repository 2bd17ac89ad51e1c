"""Few-shot (ICL) records: token counts, example text, uniform selection, fitting, injection."""

from __future__ import annotations

import copy
from typing import Any

import orjson

from flywheel.curation.formats import to_eval_record
from flywheel.curation.icl import (
    EXAMPLE_HEADER,
    GENERIC_GROUP,
    PREAMBLE,
    Example,
    build_icl_records,
    example_text,
    fit_examples,
    inject_examples,
    select_uniform,
)
from flywheel.curation.tokens import count_tokens
from flywheel.schemas import WorkloadType
from tests.curation.builders import labelled, make_record

TOOL = WorkloadType.TOOL_CALLING
GENERIC = WorkloadType.GENERIC


def ex(tokens: int, group: str = "g") -> Example:
    return Example(group=group, text=f"example of {tokens}", tokens=tokens)


def system_content(record: dict[str, Any]) -> Any:
    return next(m["content"] for m in record["request"]["messages"] if m["role"] == "system")


def request_tokens(record: dict[str, Any]) -> int:
    return count_tokens(orjson.dumps(record["request"]).decode())


# --- token counts and example text ----------------------------------------------------------


def test_count_tokens_uses_the_offline_cl100k_encoding_plus_a_margin() -> None:
    assert count_tokens("") == 0
    assert count_tokens("hello world") == 2  # two cl100k tokens, margin rounds down
    assert count_tokens("hello " * 100) == 121  # 101 cl100k tokens + 20 % (rounded down)
    assert count_tokens("日本語" * 10) > count_tokens("abc" * 10)


def test_example_text_of_a_tool_call() -> None:
    record = make_record("find shoes", tool="search", arguments={"q": "shoes"}, system="S")
    assert example_text(record) == (
        "Example conversation:\n"
        "system: S\n"
        "user: find shoes\n"
        "Expected answer:\n"
        "assistant:\n"
        'tool calls: [{"name":"search","arguments":{"q":"shoes"}}]'
    )


def test_example_text_of_a_conversation_with_history_and_parts() -> None:
    record = make_record(
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "what is"}, {"type": "image_url"}],
            },
            {"role": "assistant", "content": "a cat"},
            {"role": "user", "content": "sure?"},
        ],
        content="Yes.",
    )
    assert example_text(record) == (
        "Example conversation:\n"
        "user: what is [image_url]\n"
        "assistant: a cat\n"
        "user: sure?\n"
        "Expected answer:\n"
        "assistant: Yes."
    )


# --- uniform selection ------------------------------------------------------------------------


def shares(selected: dict[str, list[Example]]) -> dict[str, int]:
    return {name: len(examples) for name, examples in selected.items()}


def test_uniform_spreads_examples_round_robin_largest_tool_first() -> None:
    records = labelled({"small": 2, "big": 10, "mid": 5})
    selected = select_uniform(records, max_examples=10, workload_type=TOOL, seed=1)
    # rounds: 1,1,1 → 2,2,2 → 3,3,(small is out) → 4,4
    assert shares(selected) == {"big": 4, "mid": 4, "small": 2}
    assert list(selected) == ["big", "mid", "small"]
    assert all(e.group == name for name, examples in selected.items() for e in examples)


def test_uniform_bins_match_the_blueprint_when_tools_have_enough_records() -> None:
    five = labelled({f"t{i}": 5 for i in range(5)})
    assert shares(select_uniform(five, max_examples=10, workload_type=TOOL, seed=1)) == {
        f"t{i}": 2 for i in range(5)
    }
    assert shares(select_uniform(five, max_examples=2, workload_type=TOOL, seed=1)) == {
        "t0": 1,
        "t1": 1,
    }
    three = labelled({"a": 10, "b": 10, "c": 10})
    assert shares(select_uniform(three, max_examples=10, workload_type=TOOL, seed=1)) == {
        "a": 4,
        "b": 3,
        "c": 3,
    }
    one = labelled({"a": 12})
    assert shares(select_uniform(one, max_examples=10, workload_type=TOOL, seed=1)) == {"a": 10}


def test_a_small_tool_passes_its_unused_slots_on() -> None:
    records = labelled({"rare": 1, "common": 10})
    assert shares(select_uniform(records, max_examples=6, workload_type=TOOL, seed=1)) == {
        "common": 5,
        "rare": 1,
    }
    assert shares(select_uniform(records, max_examples=50, workload_type=TOOL, seed=1)) == {
        "common": 10,
        "rare": 1,
    }


def test_generic_workloads_use_one_group() -> None:
    records = labelled({"no_tool": 20})
    selected = select_uniform(records, max_examples=3, workload_type=GENERIC, seed=1)
    assert shares(selected) == {GENERIC_GROUP: 3}


def test_no_examples_requested_or_available() -> None:
    records = labelled({"a": 5})
    assert select_uniform(records, max_examples=0, workload_type=TOOL, seed=1) == {}
    assert select_uniform([], max_examples=3, workload_type=TOOL, seed=1) == {}


def test_selection_is_seeded_and_not_biased_to_the_shortest() -> None:
    records = [make_record("x" * (10 * (i + 1)), content="ok") for i in range(20)]
    first = select_uniform(records, max_examples=3, workload_type=GENERIC, seed=4)
    assert first == select_uniform(records, max_examples=3, workload_type=GENERIC, seed=4)
    picked = {
        example.text
        for seed in range(10)
        for example in select_uniform(records, max_examples=3, workload_type=GENERIC, seed=seed)[
            GENERIC_GROUP
        ]
    }
    shortest = {example_text(record) for record in records[:3]}
    assert len(picked) > 3
    assert picked - shortest


# --- fitting ----------------------------------------------------------------------------------


def test_fit_round_robin_pinned_cases() -> None:
    groups = {"t1": [ex(80), ex(120)], "t2": [ex(90)]}
    assert [e.tokens for e in fit_examples(groups, 50)] == []
    assert [e.tokens for e in fit_examples(groups, 100)] == [80]
    assert [e.tokens for e in fit_examples(groups, 300)] == [80, 90, 120]
    order = {"t1": [ex(50), ex(60)], "t2": [ex(40), ex(70)]}
    assert [e.tokens for e in fit_examples(order, 220)] == [50, 40, 60, 70]


def test_fit_skips_an_example_that_does_not_fit_and_tries_later_ones() -> None:
    groups = {"t1": [ex(80), ex(10)], "t2": [ex(90), ex(5)]}
    assert [e.tokens for e in fit_examples(groups, 100)] == [80, 10, 5]
    assert fit_examples({}, 100) == []


# --- injection --------------------------------------------------------------------------------


def test_inject_keeps_the_existing_system_prompt_after_the_examples() -> None:
    record = make_record("hi", system="You sell shoes.")
    before = copy.deepcopy(record)
    examples = [ex(1), ex(2)]

    injected = inject_examples(record, examples)

    assert system_content(injected) == (
        f"{PREAMBLE}\n\nexample of 1\n\nexample of 2\n\nYou sell shoes."
    )
    assert injected["request"]["messages"][1:] == record["request"]["messages"][1:]
    assert len(injected["request"]["messages"]) == 2
    assert record == before


def test_inject_inserts_a_system_message_when_there_is_none() -> None:
    record = make_record("hi", system=None)
    injected = inject_examples(record, [ex(1)])
    messages = injected["request"]["messages"]
    assert messages[0] == {"role": "system", "content": f"{PREAMBLE}\n\nexample of 1"}
    assert messages[1:] == record["request"]["messages"]


def test_inject_uses_the_first_system_message_wherever_it_is() -> None:
    record = make_record(
        messages=[
            {"role": "user", "content": "hi"},
            {"role": "system", "content": "first"},
            {"role": "system", "content": "second"},
        ]
    )
    messages = inject_examples(record, [ex(1)])["request"]["messages"]
    assert messages[1]["content"].endswith("\n\nfirst")
    assert messages[2]["content"] == "second"


def test_inject_into_content_parts() -> None:
    record = make_record(messages=[{"role": "system", "content": [{"type": "text", "text": "S"}]}])
    content = system_content(inject_examples(record, [ex(1)]))
    assert content == [
        {"type": "text", "text": f"{PREAMBLE}\n\nexample of 1\n\n"},
        {"type": "text", "text": "S"},
    ]


def test_inject_without_examples_leaves_the_record_unchanged() -> None:
    record = make_record("hi")
    assert inject_examples(record, []) == record


# --- building ICL records ---------------------------------------------------------------------


def test_build_injects_max_examples_when_the_budget_allows() -> None:
    train = labelled({"search": 10, "lookup": 10, "no_tool": 10})
    evals = [
        to_eval_record(make_record(f"eval {i}", tool="search", system="Be exact."))
        for i in range(4)
    ]

    records, stats = build_icl_records(
        evals,
        train,
        context_length=100_000,
        reserved_tokens=1000,
        max_examples=3,
        workload_type=TOOL,
        seed=1,
    )

    assert len(records) == 4
    for record, original in zip(records, evals, strict=True):
        content = system_content(record)
        assert content.count(EXAMPLE_HEADER) == 3
        assert content.startswith(PREAMBLE)
        assert content.endswith("\n\nBe exact.")
        assert record["response"] == original["response"]
    assert stats["mean_examples"] == 3
    assert stats["unchanged"] == 0
    assert stats["pool"] == 3
    assert evals[0]["request"]["messages"][0]["content"] == "Be exact."


def test_build_respects_each_records_budget() -> None:
    train = labelled({"search": 10, "lookup": 10, "order": 10})
    record = make_record("short question", tool="search")
    groups = select_uniform(train, max_examples=3, workload_type=TOOL, seed=2)
    tokens = [example.tokens for examples in groups.values() for example in examples]
    preamble = count_tokens(PREAMBLE)
    # room for the preamble and the two smallest examples, but not for all three
    room = preamble + sum(sorted(tokens)[:2])
    context = 500 + request_tokens(record) + room

    records, stats = build_icl_records(
        [record],
        train,
        context_length=context,
        reserved_tokens=500,
        max_examples=3,
        workload_type=TOOL,
        seed=2,
    )

    assert system_content(records[0]).count(EXAMPLE_HEADER) == 2
    assert stats["mean_tokens_used"] <= room
    assert stats["mean_examples"] == 2


def test_build_leaves_records_unchanged_when_no_example_fits() -> None:
    train = labelled({"search": 5})
    small = make_record("q", tool="search")
    huge = make_record("word " * 5000, tool="search")
    records, stats = build_icl_records(
        [small, huge],
        train,
        context_length=2000 + request_tokens(small) + 300,
        reserved_tokens=2000,
        max_examples=2,
        workload_type=TOOL,
        seed=1,
    )
    assert system_content(records[0]).count(EXAMPLE_HEADER) >= 1
    assert records[1] == huge
    assert stats["unchanged"] == 1
    assert stats["records"] == 2


def test_build_without_examples_keeps_every_record() -> None:
    evals = [make_record("q", tool="search")]
    records, stats = build_icl_records(
        evals,
        [],
        context_length=8192,
        reserved_tokens=2048,
        max_examples=3,
        workload_type=TOOL,
        seed=1,
    )
    assert records == evals
    assert stats == {
        "records": 1,
        "pool": 0,
        "mean_examples": 0.0,
        "mean_tokens_used": 0.0,
        "unchanged": 1,
    }
