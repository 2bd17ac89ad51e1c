"""The local model engine: load, generate with and LoRA-fine-tune a causal LM on the worker.

This is the engine under the ``local`` platform. It needs the ``local`` extra (torch,
transformers, peft); importing this package does not import them, so the rest of the flywheel
works without it and a missing dependency surfaces as a ConfigError with the install hint.
"""

from __future__ import annotations

from flywheel.clients.local_engine.chat_format import ChatRenderer, describe_tools, tool_call_text
from flywheel.clients.local_engine.generation import GeneratedText, generate_replies
from flywheel.clients.local_engine.models import (
    LOCAL_EXTRA_HINT,
    LoadedModel,
    ModelCache,
    ModelSpec,
    load_model,
)
from flywheel.clients.local_engine.training import (
    LoraOptions,
    TrainProgress,
    TrainResult,
    encode_example,
    train_lora,
)

__all__ = [
    "LOCAL_EXTRA_HINT",
    "ChatRenderer",
    "GeneratedText",
    "LoadedModel",
    "LoraOptions",
    "ModelCache",
    "ModelSpec",
    "TrainProgress",
    "TrainResult",
    "describe_tools",
    "encode_example",
    "generate_replies",
    "load_model",
    "tool_call_text",
    "train_lora",
]
