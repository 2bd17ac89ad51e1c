"""Generation: prompt rendering with tools, batching, order, determinism, token counts."""

from __future__ import annotations

from typing import Any

from flywheel.clients.local_engine import LoadedModel, describe_tools, generate_replies
from flywheel.clients.local_engine.generation import encode_prompts
from tests.clients.local_engine.conftest import WEATHER_TOOL


def _requests() -> list[dict[str, Any]]:
    texts = [
        "what is the weather in paris today please",
        "hello",
        "how do i reset my account password, thanks",
        "order status",
        "tokyo",
    ]
    return [{"messages": [{"role": "user", "content": t}]} for t in texts]


def test_results_keep_request_order_and_batching_does_not_change_them(tiny: LoadedModel) -> None:
    requests = _requests()
    batched = generate_replies(tiny, requests, max_new_tokens=8, batch_size=2)
    single = generate_replies(tiny, requests, max_new_tokens=8, batch_size=1)
    lengths = [len(ids) for ids in encode_prompts(tiny, requests)]
    assert [r.prompt_tokens for r in batched] == lengths
    assert [r.text for r in batched] == [r.text for r in single]
    for result in batched:
        assert 1 <= result.completion_tokens <= 8
        assert result.latency_s > 0
        assert result.finish_reason in ("stop", "length")


def test_greedy_is_deterministic(tiny: LoadedModel) -> None:
    first = generate_replies(tiny, _requests(), max_new_tokens=6, batch_size=3)
    second = generate_replies(tiny, _requests(), max_new_tokens=6, batch_size=3)
    assert [r.text for r in first] == [r.text for r in second]


def test_sampling_is_reproducible_with_a_seed(tiny: LoadedModel) -> None:
    kwargs: dict[str, Any] = {"max_new_tokens": 6, "temperature": 1.0, "seed": 7}
    first = generate_replies(tiny, _requests(), **kwargs)
    second = generate_replies(tiny, _requests(), **kwargs)
    assert [r.text for r in first] == [r.text for r in second]


def test_no_requests_no_work(tiny: LoadedModel) -> None:
    assert generate_replies(tiny, [], max_new_tokens=4) == []


def test_tools_go_through_a_tool_aware_template(tiny: LoadedModel) -> None:
    messages = [{"role": "user", "content": "weather in paris?"}]
    prompt = tiny.renderer.render_prompt(messages, [WEATHER_TOOL])
    assert '"name": "get_weather"' in prompt
    assert "You can call these tools" not in prompt
    assert prompt.endswith("<|im_start|>assistant\n")


def test_tools_go_into_the_system_prompt_when_the_template_ignores_them(
    plain: LoadedModel,
) -> None:
    messages = [{"role": "user", "content": "weather in paris?"}]
    prompt = plain.renderer.render_prompt(messages, [WEATHER_TOOL])
    assert prompt.startswith("<|im_start|>system\nYou can call these tools:")
    assert 'get_weather(city: string, unit?: "celsius"|"fahrenheit")' in prompt
    assert "Current weather for a city" in prompt
    with_system = plain.renderer.render_prompt(
        [{"role": "system", "content": "Be brief."}, *messages], [WEATHER_TOOL]
    )
    assert with_system.startswith("<|im_start|>system\nBe brief.\n\nYou can call these tools:")
    assert with_system.count("<|im_start|>system") == 1


def test_history_tool_calls_become_text_when_the_template_ignores_them(
    plain: LoadedModel,
) -> None:
    call = {
        "id": "c1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "paris"}'},
    }
    messages = [
        {"role": "user", "content": "weather in paris?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]
    prompt = plain.renderer.render_prompt(messages, [WEATHER_TOOL])
    assert (
        '<tool_call>{"name": "get_weather", "arguments": {"city": "paris"}}</tool_call>' in prompt
    )
    assert "<|im_start|>tool\nsunny<|im_end|>" in prompt


def test_describe_tools_is_compact() -> None:
    text = describe_tools([WEATHER_TOOL])
    assert len(text) < len(str(WEATHER_TOOL))
    assert text.splitlines()[1] == (
        '- get_weather(city: string, unit?: "celsius"|"fahrenheit") - Current weather for a city'
    )


def test_tool_requests_generate_through_both_templates(
    tiny: LoadedModel, plain: LoadedModel
) -> None:
    request = {"messages": [{"role": "user", "content": "weather?"}], "tools": [WEATHER_TOOL]}
    for loaded in (tiny, plain):
        (result,) = generate_replies(loaded, [request], max_new_tokens=4)
        assert result.prompt_tokens > 20
