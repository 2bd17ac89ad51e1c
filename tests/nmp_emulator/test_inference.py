"""The NIM surface: model lists, chat completions with a pluggable responder, embeddings."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import nemo_microservices
import pytest
from nemo_microservices.types import CreateEmbeddingResponse
from nemo_microservices.types.chat import ChatCompletionResponse

from tests.support.nmp import make_client, start_emulator
from tests.support.nmp_emulator import NMPEmulator

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


@pytest.fixture
def nim() -> Iterator[NMPEmulator]:
    emulator = start_emulator(static_models=("judge", "nvidia/embed"))
    yield emulator
    emulator.stop()


async def test_default_responder_calls_the_first_tool(nim: NMPEmulator) -> None:
    client = make_client(nim)
    reply = await client.chat.completions.create(
        model="judge", messages=[{"role": "user", "content": "weather in Paris?"}], tools=TOOLS
    )
    assert isinstance(reply, ChatCompletionResponse)
    call = reply.choices[0].message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {}
    assert reply.choices[0].finish_reason == "tool_calls"
    assert reply.usage.prompt_tokens == 3


async def test_pluggable_responder(nim: NMPEmulator) -> None:
    seen: list[dict] = []

    def responder(body: dict) -> dict:
        seen.append(body)
        city = body["messages"][-1]["content"].split()[-1]
        return {"tool_calls": [{"name": "get_weather", "arguments": {"city": city}}]}

    nim.responder = responder
    client = make_client(nim)
    reply = await client.chat.completions.create(
        model="judge", messages=[{"role": "user", "content": "weather in Oslo"}], tools=TOOLS
    )
    call = reply.choices[0].message.tool_calls[0]
    assert json.loads(call.function.arguments) == {"city": "Oslo"}
    assert seen[0]["model"] == "judge"
    assert reply.usage.completion_tokens == 1

    nim.responder = lambda body: None  # None → the default reply
    again = await client.chat.completions.create(
        model="judge", messages=[{"role": "user", "content": "hi"}]
    )
    assert again.choices[0].message.content == "echo: hi"


async def test_embeddings_are_deterministic_unit_vectors(nim: NMPEmulator) -> None:
    client = make_client(nim)
    result = await client.embeddings.create(model="nvidia/embed", input=["a", "b", "a"])
    assert isinstance(result, CreateEmbeddingResponse)
    vectors = [d.embedding for d in result.data]
    assert len(vectors[0]) == 16
    assert vectors[0] == vectors[2] and vectors[0] != vectors[1]
    assert abs(sum(v * v for v in vectors[0]) - 1.0) < 1e-9
    single = await client.embeddings.create(model="nvidia/embed", input="a", dimensions=8)
    assert len(single.data[0].embedding) == 8


async def test_unknown_model_and_bad_requests(nim: NMPEmulator) -> None:
    client = make_client(nim)
    with pytest.raises(nemo_microservices.NotFoundError) as missing:
        await client.chat.completions.create(
            model="nope", messages=[{"role": "user", "content": "hi"}]
        )
    assert missing.value.body["message"] == "The model `nope` does not exist."
    with pytest.raises(nemo_microservices.BadRequestError):
        await client.chat.completions.create(model="judge", messages=[])
    with pytest.raises(nemo_microservices.NotFoundError):
        await client.embeddings.create(model="nope", input="x")


async def test_pure_nim_surface(nim: NMPEmulator) -> None:
    """``/nim`` (the default ``inference_base_url``) serves only the NIM paths, with an
    OpenAI-shaped model list; the root answers the NIM paths too."""
    assert nim.inference_base_url == nim.nim_url
    client = make_client(nim)
    for surface in (client, client.with_options(inference_base_url=nim.base_url)):
        listed = await surface.inference.models.list()
        assert [m.id for m in listed.data] == ["judge", "nvidia/embed"]
        reply = await surface.chat.completions.create(
            model="judge", messages=[{"role": "user", "content": "x"}]
        )
        assert reply.choices[0].message.content == "echo: x"
    async with httpx.AsyncClient() as http:
        body = (await http.get(f"{nim.nim_url}/v1/models")).json()
        assert body == {
            "object": "list",
            "data": [
                {**item, "id": model}
                for item, model in zip(body["data"], ["judge", "nvidia/embed"], strict=True)
            ],
        }
        assert "name" not in body["data"][0]
        assert (await http.get(f"{nim.nim_url}/v1/namespaces")).status_code == 404
        assert (await http.get(f"{nim.nim_url}/v1/health/ready")).status_code == 200


async def test_inference_api_key() -> None:
    emulator = start_emulator(static_models=("judge",), inference_api_key="nim-key")
    try:
        anonymous = make_client(emulator)
        with pytest.raises(nemo_microservices.AuthenticationError):
            await anonymous.chat.completions.create(
                model="judge", messages=[{"role": "user", "content": "x"}]
            )
        keyed = make_client(emulator, default_headers={"Authorization": "Bearer nim-key"})
        await keyed.chat.completions.create(
            model="judge", messages=[{"role": "user", "content": "x"}]
        )
        await keyed.namespaces.create(id="dfw")  # platform paths need no key
        sent = emulator.authorizations("/nim/v1/chat/completions")
        assert sent == [("/nim/v1/chat/completions", "Bearer nim-key")]
    finally:
        emulator.stop()
