"""A tiny randomly initialised Llama with a locally trained tokenizer, saved to a directory.

The local engine's tests need real transformers/peft model code but no download and no seconds
of loading: a 2-layer, 64-wide `LlamaForCausalLM` and a byte-level BPE tokenizer trained on a few
hundred strings fit the bill (a LoRA step takes milliseconds). Two chat templates are offered:
one that renders ``tools`` and ``tool_calls`` (Qwen/Hermes style ``<tool_call>`` JSON blocks) and
one that ignores them (like SmolLM2's), so both prompt paths of the engine can be tested.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
PAD = "<|pad|>"

TOOLS_TEMPLATE = (
    "{%- if tools %}"
    "{{- '<|im_start|>system\\n' }}"
    "{%- if messages[0].role == 'system' %}{{- messages[0].content + '\\n\\n' }}{%- endif %}"
    "{{- '# Tools\\n<tools>' }}"
    "{%- for tool in tools %}{{- '\\n' + (tool | tojson) }}{%- endfor %}"
    '{{- \'\\n</tools>\\nCall a tool as <tool_call>{"name": ..., "arguments": {...}}'
    "</tool_call><|im_end|>\\n' }}"
    "{%- elif messages[0].role == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message.role != 'system' %}"
    "{{- '<|im_start|>' + message.role + '\\n' }}"
    "{%- if message.content %}{{- message.content }}{%- endif %}"
    "{%- if message.tool_calls %}"
    "{%- for call in message.tool_calls %}"
    "{%- set fn = call.function if call.function is defined else call %}"
    '{{- \'<tool_call>{"name": "\' + fn.name + \'", "arguments": \' '
    "+ (fn.arguments | tojson) + '}</tool_call>' }}"
    "{%- endfor %}"
    "{%- endif %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
"""A template with tool support: tools as JSON lines in the system turn, calls as JSON blocks."""

PLAIN_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
"""A template that ignores ``tools`` and ``tool_calls`` (as SmolLM2-135M-Instruct's does)."""

_WORD_TEXT = (
    "weather city temperature forecast rain sunny paris london tokyo berlin order status "
    "shipping refund account password reset help please thanks what is the how do i get "
    "call tool function name arguments location unit celsius fahrenheit today tomorrow "
    "assistant user system hello world data flywheel model answer question json true false"
)


def _corpus(n: int = 400, seed: int = 0) -> list[str]:
    """A few hundred strings that look like chat traffic, JSON and template markup."""
    rng = random.Random(seed)
    pool = _WORD_TEXT.split()
    lines = []
    for _ in range(n):
        words = " ".join(rng.choice(pool) for _ in range(rng.randint(3, 12)))
        lines.append(words)
        lines.append(json.dumps({"name": rng.choice(pool), "arguments": {"city": words[:12]}}))
    lines.append('<tool_call> </tool_call> <tools> </tools> # Tools {} [] : , " \n')
    return lines


def build_tiny_model(directory: Path, *, tools_in_template: bool = True, seed: int = 0) -> Path:
    """Write a tiny Llama + tokenizer (+ chat template) to ``directory`` and return it."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=[PAD, IM_START, IM_END],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_corpus(seed=seed), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=IM_START,
        eos_token=IM_END,
        pad_token=PAD,
    )
    fast.chat_template = TOOLS_TEMPLATE if tools_in_template else PLAIN_TEMPLATE
    fast.save_pretrained(directory)

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        tie_word_embeddings=True,
        # Wider than the 0.02 default: with tiny embeddings the logits cannot move far from
        # uniform, and a few LoRA steps could not teach the model anything testable.
        initializer_range=0.2,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = fast.eos_token_id
    model.generation_config.pad_token_id = fast.pad_token_id
    model.save_pretrained(directory)
    return directory
