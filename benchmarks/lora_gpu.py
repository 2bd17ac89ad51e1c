"""LoRA training throughput on a GPU: the local engine's real ``train_lora`` on a ~1B Llama.

Builds a randomly initialised ~0.9B-parameter Llama (hidden 2048, 16 layers, 16 heads, 8 KV heads,
MLP 5632; a byte-level BPE tokenizer trained here, its vocabulary padded to 32,000 embedding
rows) in a temporary directory, loads it with the engine's ``load_model`` (CUDA, bf16) and runs
``train_lora`` (rank 16 on q/k/v/o, batch 8) over synthetic tool-calling chat lines of ~512
tokens for ``--steps`` optimizer steps. Nothing is downloaded. Step times come from the
``on_progress`` timestamps (every step ends in ``loss.item()``, so they are synchronised with the
GPU); the first ``--warmup`` steps and the last one (which writes a checkpoint) are not timed.
Prints JSON: GPU name, parameters (total, trainable), tokens/s (non-padding tokens), median step
time, peak GPU memory and model FLOPs utilisation (MFU) against the GPU's dense bf16 peak.

    .venv/bin/python -m benchmarks.lora_gpu [--steps 30] [--warmup 5] [--tiny]

Without a CUDA GPU it prints ``{"benchmark": "lora_gpu", "skipped": ...}`` and exits 0.
``--tiny`` runs the same code on the CPU with a very small model: a smoke check of the script,
not a measurement.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.support.tiny_model import (
    _WORD_TEXT,
    IM_END,
    IM_START,
    PAD,
    TOOLS_TEMPLATE,
    _corpus,
)

if TYPE_CHECKING:
    from flywheel.clients.local_engine.models import LoadedModel
    from flywheel.clients.local_engine.training import LoraOptions

PEAK_BF16_FLOPS: list[tuple[str, float]] = [
    ("H100 PCIe", 756e12),
    ("H100 NVL", 835e12),
    ("H100", 989e12),  # SXM (HBM3)
    ("H200", 989e12),
    ("A100", 312e12),
    ("L40S", 362e12),
]
"""Dense (no sparsity) bf16 tensor-core peaks by a substring of ``torch.cuda.get_device_name``;
the first match wins, so the more specific names come first."""

FLOPS_FORMULA = (
    "(4 * frozen_matmul_params + 6 * trainable_params) * non_padding_tokens_per_second: forward "
    "(2N) + activation gradients (2N) through the frozen base, whose weight gradients are not "
    "computed, plus full training (6N) of the LoRA weights; frozen_matmul_params excludes the "
    "input embedding (a lookup, no matmul) and includes the untied lm_head; attention-score "
    "FLOPs (quadratic in sequence length) and padding positions are not counted"
)

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {arg: {"type": "string", "description": f"the {arg}"}},
                "required": [arg],
            },
        },
    }
    for name, description, arg in (
        ("get_weather", "Current weather for a city", "city"),
        ("order_status", "Shipping status of an order", "order_id"),
        ("reset_password", "Send a password reset link", "account"),
    )
]
"""The tools every synthetic conversation offers (rendered into the system turn)."""

WORDS = _WORD_TEXT.split()
"""Words for the synthetic user turns: the vocabulary the tokenizer was trained on."""


@dataclass(frozen=True)
class Shape:
    """The model and workload of one benchmark run."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    """Embedding rows: at least the tokenizer's size (padded up, as real models are)."""
    lines: int
    tokens: int
    """Target mean tokens per training line (prompt + answer)."""
    batch_size: int
    rank: int
    device: str
    dtype: str


GPU_SHAPE = Shape(2048, 16, 16, 8, 5632, 32000, 512, 512, 8, 16, "cuda", "bfloat16")
TINY_SHAPE = Shape(64, 2, 4, 2, 128, 0, 32, 384, 4, 8, "cpu", "float32")


def build_model(directory: Path, shape: Shape, seed: int = 0) -> Path:
    """Write a random Llama of ``shape`` and a locally trained tokenizer to ``directory``.

    The model is initialised directly on the target device (a 1B fp32 init on the CPU takes
    long) and saved in the benchmark dtype, so ``load_model`` reads what it would in production.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # stdout/stderr carry only the JSON result

    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=4096,
        special_tokens=[PAD, IM_START, IM_END],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # The tool schemas go into the corpus too, so the system turn tokenizes as compactly as it
    # would with a real tokenizer and the user text (whose length varies) is most of each line.
    schemas = [json.dumps(tool) for tool in TOOLS] * 50
    tokenizer.train_from_iterator(_corpus(n=2000, seed=seed) + schemas, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=IM_START, eos_token=IM_END, pad_token=PAD
    )
    fast.chat_template = TOOLS_TEMPLATE
    fast.save_pretrained(directory)

    config = LlamaConfig(
        vocab_size=max(shape.vocab, len(fast)),
        hidden_size=shape.hidden,
        intermediate_size=shape.intermediate,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.kv_heads,
        max_position_embeddings=4096,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    dtype = getattr(torch, shape.dtype)
    with torch.device(shape.device):
        model = LlamaForCausalLM(config).to(dtype)
    model.save_pretrained(directory)
    del model
    if shape.device == "cuda":
        torch.cuda.empty_cache()
    return directory


def chat_line(rng: random.Random, user_words: int) -> dict[str, Any]:
    """One tool-calling conversation: a long user turn, answered by one tool call."""
    tool = rng.choice(TOOLS)["function"]
    arg = next(iter(tool["parameters"]["properties"]))
    text = " ".join(rng.choice(WORDS) for _ in range(user_words))
    call = {
        "id": f"call_{rng.randrange(10**8)}",
        "type": "function",
        "function": {
            "name": tool["name"],
            "arguments": json.dumps({arg: " ".join(rng.choices(WORDS, k=rng.randint(2, 6)))}),
        },
    }
    return {
        "messages": [
            {"role": "system", "content": "You are a customer service agent. Use the tools."},
            {"role": "user", "content": text},
            {"role": "assistant", "content": "", "tool_calls": [call]},
        ],
        "tools": TOOLS,
    }


def chat_lines(loaded: LoadedModel, n: int, tokens: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` lines of about ``tokens`` tokens each (±25 % user text, so batches need padding).

    The user-turn length is calibrated against the real tokenizer and template: the mean length
    of empty-user lines and of 200-word ones gives the fixed overhead and tokens per word.
    """
    from flywheel.clients.local_engine.training import encode_lines

    def mean_tokens(words: int) -> float:
        probe = [chat_line(random.Random(seed + i), words) for i in range(8)]
        encoded = encode_lines(loaded, probe, max_length=1 << 20, what="probe")
        return statistics.mean(len(e.input_ids) for e in encoded)

    overhead = mean_tokens(0)
    per_word = (mean_tokens(200) - overhead) / 200
    words = max(1, round((tokens - overhead) / per_word))
    rng = random.Random(seed)
    return [chat_line(rng, rng.randint(math.ceil(words * 0.75), words * 5 // 4)) for _ in range(n)]


def trainable_lora_params(loaded: LoadedModel, options: LoraOptions) -> int:
    """LoRA parameters peft adds: ``rank × (in + out)`` for every adapted ``nn.Linear``.

    Counted from the base model, because ``train_lora`` keeps its peft copy to itself.
    """
    import torch

    from flywheel.clients.local_engine.training import default_target_modules

    targets = options.target_modules or default_target_modules(loaded.model.config.model_type)
    if isinstance(targets, str):  # "all-linear": every linear layer but the output head
        targets = [
            name.rsplit(".", 1)[-1]
            for name, module in loaded.model.named_modules()
            if isinstance(module, torch.nn.Linear) and not name.endswith("lm_head")
        ]
    return sum(
        options.rank * (module.in_features + module.out_features)
        for name, module in loaded.model.named_modules()
        if isinstance(module, torch.nn.Linear) and name.rsplit(".", 1)[-1] in set(targets)
    )


def peak_bf16_flops(gpu_name: str | None) -> float | None:
    """The dense bf16 peak of a known GPU, else None (then MFU is not reported)."""
    for key, flops in PEAK_BF16_FLOPS if gpu_name else []:
        if key.lower() in (gpu_name or "").lower():
            return flops
    return None


def run(shape: Shape, steps: int, warmup: int, seed: int = 0) -> dict[str, Any]:
    """Build, load and LoRA-train the model; time the steps after ``warmup`` but the last."""
    import torch

    from flywheel.clients.local_engine.models import ModelSpec, load_model
    from flywheel.clients.local_engine.training import (
        LoraOptions,
        TrainProgress,
        batch_indices,
        encode_lines,
        train_lora,
    )

    cuda = shape.device == "cuda"
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        model_dir = build_model(Path(tmp) / "model", shape, seed)
        build_s = time.perf_counter() - started
        loaded = load_model(ModelSpec(str(model_dir), device=shape.device, dtype=shape.dtype))
        lines = chat_lines(loaded, shape.lines, shape.tokens, seed)
        options = LoraOptions(
            rank=shape.rank,
            alpha=2 * shape.rank,
            batch_size=shape.batch_size,
            epochs=math.ceil(steps * shape.batch_size / len(lines)),
            max_steps=steps,
            seed=seed,
        )
        encoded = encode_lines(loaded, lines, max_length=options.max_length, what="train")
        stamps: list[float] = []

        def on_progress(progress: TrainProgress) -> None:
            stamps.append(time.perf_counter())

        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        result = train_lora(
            loaded,
            lines,
            options=options,
            checkpoint_dir=Path(tmp) / "ckpt",
            on_progress=on_progress,
        )
        train_s = time.perf_counter() - started
        peak_memory = torch.cuda.max_memory_allocated() if cuda else None
        base_params = sum(p.numel() for p in loaded.model.parameters())
        embedding = loaded.model.get_input_embeddings().weight.numel()
        trainable = trainable_lora_params(loaded, options)

    # Step k (1-based) ends at stamps[k-1]; timed: warmup < k < steps (the last one checkpoints).
    timed = range(warmup + 1, steps)
    durations = [stamps[k - 1] - stamps[k - 2] for k in timed]
    real_tokens = padded_tokens = 0
    for k in timed:
        batch = [encoded[i] for i in batch_indices(k - 1, len(encoded), options)[1]]
        real_tokens += sum(len(e.input_ids) for e in batch)
        padded_tokens += len(batch) * max(len(e.input_ids) for e in batch)
    seconds = sum(durations)
    tokens_per_s = real_tokens / seconds
    achieved = (4 * (base_params - embedding) + 6 * trainable) * tokens_per_s
    gpu = torch.cuda.get_device_name() if cuda else None
    peak = peak_bf16_flops(gpu) if shape.dtype == "bfloat16" else None
    return {
        "benchmark": "lora_gpu",
        "device": shape.device,
        "gpu": gpu,
        "dtype": shape.dtype,
        "torch": torch.__version__,
        "model": {
            "hidden": shape.hidden,
            "layers": shape.layers,
            "heads": shape.heads,
            "kv_heads": shape.kv_heads,
            "intermediate": shape.intermediate,
            "vocab": loaded.model.config.vocab_size,
            "tokenizer_vocab": len(loaded.tokenizer),
        },
        "params": {
            "base": base_params,
            "trainable": trainable,
            "total": base_params + trainable,
            "trainable_fraction": round(trainable / base_params, 5),
        },
        "lora": {"rank": options.rank, "alpha": options.alpha, "targets": "q/k/v/o_proj"},
        "data": {
            "lines": len(lines),
            "mean_tokens_per_line": round(statistics.mean(len(e.input_ids) for e in encoded), 1),
            "batch_size": options.batch_size,
            "padding_fraction": round(1 - real_tokens / padded_tokens, 4),
        },
        "steps": {"run": result.steps, "warmup": warmup, "timed": len(durations)},
        "tokens_per_second": round(tokens_per_s, 1),
        "padded_tokens_per_second": round(padded_tokens / seconds, 1),
        "step_seconds": {
            "median": round(statistics.median(durations), 4),
            "min": round(min(durations), 4),
            "max": round(max(durations), 4),
        },
        "peak_gpu_memory_gib": round(peak_memory / 2**30, 3) if peak_memory is not None else None,
        "achieved_tflops": round(achieved / 1e12, 2),
        "peak_bf16_tflops": peak / 1e12 if peak else None,
        "mfu": round(achieved / peak, 4) if peak else None,
        "flops_formula": FLOPS_FORMULA,
        "final_train_loss": round(result.train_loss, 4),
        "seconds": {
            "build": round(build_s, 2),
            "load": round(loaded.load_seconds, 2),
            "train_lora": round(train_s, 2),
        },
        "notes": (
            "peak GPU memory is measured from the start of train_lora, which deep-copies the "
            "base model before applying LoRA, so it holds two copies of the base weights"
        ),
    }


def main(argv: list[str] | None = None) -> int:
    """Parse arguments; print the JSON result (or why the run was skipped)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps (default 30)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed first steps (5)")
    parser.add_argument(
        "--tiny", action="store_true", help="a very small model on the CPU (smoke check)"
    )
    args = parser.parse_args(argv)
    steps = args.steps if args.steps is not None else (8 if args.tiny else 30)
    warmup = args.warmup if args.warmup is not None else (2 if args.tiny else 5)
    if steps < warmup + 2:
        parser.error("--steps must be at least --warmup + 2 (the last step is not timed)")
    if not args.tiny:
        try:
            import torch
        except ImportError:
            print(json.dumps({"benchmark": "lora_gpu", "skipped": "torch is not installed"}))
            return 0
        if not torch.cuda.is_available():
            print(json.dumps({"benchmark": "lora_gpu", "skipped": "no CUDA GPU here"}))
            return 0
    shape = TINY_SHAPE if args.tiny else GPU_SHAPE
    print(json.dumps(run(shape, steps, warmup), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
