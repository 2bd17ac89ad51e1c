"""Batched chat completions from a loaded local model: prompts in, texts and token counts out.

Requests are rendered with the model's chat template (tools included, see ``chat_format``),
sorted by prompt length and generated in left-padded batches of at most ``batch_size``, so
padding waste and peak memory stay bounded; results come back in the order of the requests.
Tool calls stay in the text: parsing them is the platform's job.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from flywheel.clients.local_engine.models import LoadedModel
from flywheel.errors import ConfigError, InvalidDataError

if TYPE_CHECKING:
    import torch

FinishReason = Literal["stop", "length"]

_END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>")
"""End-of-turn tokens of common chat formats; generation stops at any that the vocabulary has."""


@dataclass(frozen=True)
class GeneratedText:
    """One reply: its text (special tokens removed), token counts and the time it took."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    """Wall time of the batch the request was generated in (what its caller waited)."""
    finish_reason: FinishReason = "stop"


def stop_token_ids(loaded: LoadedModel) -> list[int]:
    """Token ids that end a reply: eos of tokenizer and generation config, end-of-turn tokens."""
    ids: set[int] = set()
    tokenizer = loaded.tokenizer
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    config_eos = getattr(loaded.model.generation_config, "eos_token_id", None)
    if isinstance(config_eos, int):
        ids.add(config_eos)
    elif isinstance(config_eos, list | tuple):
        ids.update(int(i) for i in config_eos)
    vocab = tokenizer.get_vocab()
    ids.update(vocab[token] for token in _END_OF_TURN_TOKENS if token in vocab)
    return sorted(ids)


def encode_prompts(loaded: LoadedModel, requests: Sequence[Mapping[str, Any]]) -> list[list[int]]:
    """Token ids of each request's rendered prompt (the template adds any BOS itself)."""
    encoded = []
    for index, request in enumerate(requests):
        messages = request.get("messages")
        if not isinstance(messages, list) or not messages:
            raise InvalidDataError(f"request {index} has no 'messages' list")
        prompt = loaded.renderer.render_prompt(messages, request.get("tools"))
        encoded.append(loaded.tokenizer(prompt, add_special_tokens=False)["input_ids"])
    return encoded


def _left_padded(
    rows: Sequence[Sequence[int]], pad_id: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            input_ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            attention[i, width - len(row) :] = 1
    return input_ids.to(device), attention.to(device)


def generate_replies(
    loaded: LoadedModel,
    requests: Sequence[Mapping[str, Any]],
    *,
    max_new_tokens: int = 256,
    temperature: float = 0.0,
    top_p: float = 1.0,
    batch_size: int = 8,
    seed: int = 0,
) -> list[GeneratedText]:
    """Generate one reply per chat request ``{"messages": [...], "tools"?: [...]}``, in order.

    ``temperature`` 0 decodes greedily (deterministic); above 0 it samples, seeded by ``seed``.
    Holds ``loaded.lock`` while generating: one generation at a time per loaded model.
    """
    import torch
    from transformers import GenerationConfig

    if batch_size < 1 or max_new_tokens < 1:
        raise ConfigError("batch_size and max_new_tokens must be at least 1")
    if temperature < 0:
        raise ConfigError(f"temperature must be >= 0, got {temperature}")
    if not requests:
        return []
    encoded = encode_prompts(loaded, requests)
    tokenizer = loaded.tokenizer
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    stops = stop_token_ids(loaded)
    sampling = temperature > 0
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=sampling,
        pad_token_id=pad_id,
        eos_token_id=stops or None,
        **({"temperature": temperature, "top_p": top_p} if sampling else {}),
    )
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    results: list[GeneratedText | None] = [None] * len(encoded)
    stop_set = set(stops)
    devices = [loaded.device.index or 0] if loaded.device.type == "cuda" else []
    with loaded.lock, torch.inference_mode(), torch.random.fork_rng(devices=devices):
        if sampling:  # seeded inside fork_rng: the caller's RNG state is left as it was
            torch.manual_seed(seed)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            input_ids, attention = _left_padded([encoded[i] for i in batch], pad_id, loaded.device)
            began = time.perf_counter()
            output = loaded.model.generate(
                input_ids=input_ids, attention_mask=attention, generation_config=config
            )
            latency = time.perf_counter() - began
            new_tokens = output[:, input_ids.shape[1] :].tolist()
            for index, tokens in zip(batch, new_tokens, strict=True):
                end = next((k for k, t in enumerate(tokens) if t in stop_set), None)
                reply = tokens if end is None else tokens[:end]
                results[index] = GeneratedText(
                    text=tokenizer.decode(reply, skip_special_tokens=True),
                    prompt_tokens=len(encoded[index]),
                    completion_tokens=len(tokens) if end is None else end + 1,
                    latency_s=latency,
                    finish_reason="length" if end is None else "stop",
                )
    return [r for r in results if r is not None]
