"""Fixtures for the local engine: tiny Llama models (with and without tool-aware templates)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the local engine needs the local extra (torch)")
pytest.importorskip("transformers", reason="the local engine needs the local extra")
pytest.importorskip("peft", reason="the local engine needs the local extra (peft)")

from flywheel.clients.local_engine import LoadedModel, ModelSpec, load_model
from tests.support.tiny_model import build_tiny_model

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama whose chat template renders tools and tool calls."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-tools"), tools_in_template=True)


@pytest.fixture(scope="session")
def plain_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama whose chat template ignores tools (like SmolLM2's)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-plain"), tools_in_template=False)


@pytest.fixture(scope="session")
def tiny(tiny_model_dir: Path) -> LoadedModel:
    """The tool-aware tiny model, loaded on CPU (tests must not modify it)."""
    return load_model(ModelSpec(str(tiny_model_dir), device="cpu"))


@pytest.fixture(scope="session")
def plain(plain_model_dir: Path) -> LoadedModel:
    """The tool-ignoring tiny model, loaded on CPU (tests must not modify it)."""
    return load_model(ModelSpec(str(plain_model_dir), device="cpu"))
