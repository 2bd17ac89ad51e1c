"""Dedup on the whole conversation input; the first (newest) record of each input is kept."""

from __future__ import annotations

from typing import Any

from flywheel.curation.dedup import dedup, dedup_key
from tests.curation.builders import make_record, tool_call


def test_first_occurrence_is_kept_and_repeats_are_counted() -> None:
    newest = make_record("what is 2+2", content="4")
    older = make_record("what is 2+2", content="four")
    other = make_record("what is 3+3", content="6")
    oldest = make_record("what is 2+2", content="2+2=4")

    kept, removed = dedup([newest, older, other, oldest])

    assert kept == [newest, other]
    assert kept[0] is newest
    assert removed == 2


def test_system_prompt_is_part_of_the_key() -> None:
    a = make_record("hi", system="You sell shoes.")
    b = make_record("hi", system="You sell hats.")
    c = make_record("hi", system=None)
    assert dedup([a, b, c]) == ([a, b, c], 0)


def test_offered_tools_are_part_of_the_key_in_any_order() -> None:
    a = make_record("hi", tools=["search", "lookup"])
    b = make_record("hi", tools=["lookup", "search"])
    c = make_record("hi", tools=["search"])
    assert dedup([a, b, c]) == ([a, c], 1)


def test_every_user_turn_counts() -> None:
    def conversation(*users: str) -> dict[str, Any]:
        messages: list[dict[str, Any]] = []
        for text in users:
            messages += [{"role": "user", "content": text}, {"role": "assistant", "content": "ok"}]
        return make_record(messages=messages[:-1])

    a = conversation("hi", "book a table")
    b = conversation("hello", "book a table")
    c = conversation("hi", "book a table")
    assert dedup([a, b, c]) == ([a, b], 1)


def test_steps_of_one_agent_loop_are_not_duplicates() -> None:
    """Same user turn, but the second step carries the tool result: a different input."""
    user = {"role": "user", "content": "weather in Oslo?"}
    step1 = make_record(messages=[user], tool="weather")
    call = tool_call("weather", {"city": "Oslo"}, "call_a")
    step2 = make_record(
        messages=[
            user,
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_a", "content": "12C, rain"},
        ],
        content="It is 12C and raining.",
    )
    step2_other_result = make_record(
        messages=[*step2["request"]["messages"][:2], {"role": "tool", "content": "30C, sun"}],
        content="It is hot.",
    )
    kept, removed = dedup([step1, step2, step2_other_result])
    assert kept == [step1, step2, step2_other_result]
    assert removed == 0


def test_tool_call_ids_are_ignored_but_arguments_count() -> None:
    def after_call(call: dict[str, Any]) -> dict[str, Any]:
        return make_record(
            messages=[
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "content": "sunny"},
            ]
        )

    a = after_call(tool_call("weather", {"city": "Oslo"}, "call_1"))
    b = after_call(tool_call("weather", {"city": "Oslo"}, "call_999"))
    c = after_call(tool_call("weather", {"city": "Rome"}, "call_1"))
    assert dedup([a, b, c]) == ([a, c], 1)


def test_multimodal_content_is_deduplicated() -> None:
    def image_question(url: str) -> dict[str, Any]:
        content = [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": url}},
        ]
        return make_record(messages=[{"role": "user", "content": content}])

    a = image_question("https://x/cat.png")
    b = image_question("https://x/cat.png")
    c = image_question("https://x/dog.png")
    assert dedup([a, b, c]) == ([a, c], 1)
    hash(dedup_key(a))


def test_key_content_types_do_not_collide() -> None:
    as_text = make_record(messages=[{"role": "user", "content": "[1]"}])
    as_list = make_record(messages=[{"role": "user", "content": [1]}])
    assert dedup_key(as_text) != dedup_key(as_list)


def test_records_without_a_user_turn_are_keyed_on_what_they_have() -> None:
    a = make_record(messages=[{"role": "system", "content": "Summarise the day."}])
    b = make_record(messages=[{"role": "system", "content": "Summarise the day."}])
    c = make_record(messages=[{"role": "system", "content": "Summarise the week."}])
    assert dedup([a, b, c]) == ([a, c], 1)


def test_malformed_records_are_never_merged() -> None:
    a: dict[str, Any] = {"request": "broken"}
    b: dict[str, Any] = {"request": "broken"}
    c: dict[str, Any] = {"request": {"messages": None}}
    assert dedup([a, b, c]) == ([a, b, c], 0)
