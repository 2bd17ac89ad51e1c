"""Load a causal LM (and optionally a LoRA adapter) on the worker, offline, and keep it loaded.

A model is named by a :class:`ModelSpec`: a local directory, a Hugging Face id already in the
local cache, or a GGUF file inside a directory (dequantised by transformers). Nothing is ever
downloaded: a model that is not on disk is a :class:`ConfigError` that says how to get it there.
The :class:`ModelCache` is owned by its caller (the worker), never a module-level singleton.
"""

from __future__ import annotations

import gc
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from flywheel.clients.local_engine.chat_format import ChatRenderer
from flywheel.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

Device = Literal["auto", "cpu", "cuda"]
DType = Literal["auto", "float32", "bfloat16", "float16"]

LOCAL_EXTRA_HINT = "install the local extra: pip install 'data-flywheel[local]'"


@dataclass(frozen=True)
class ModelSpec:
    """Which model to load and where: hashable, so it can key a cache."""

    model: str
    """A local directory, a locally cached Hugging Face id, or a ``.gguf`` file path."""
    gguf_file: str | None = None
    """A GGUF file name inside the ``model`` directory (transformers dequantises it)."""
    device: Device = "auto"
    """``auto``: CUDA if available, else CPU."""
    dtype: DType = "auto"
    """``auto``: bfloat16 on CUDA, float32 on CPU."""


@dataclass(eq=False)
class LoadedModel:
    """A model and tokenizer ready to generate; ``lock`` serialises use of the model."""

    spec: ModelSpec
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    device: torch.device
    dtype: torch.dtype
    renderer: ChatRenderer
    adapter_dir: Path | None = None
    load_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


def require_torch_stack() -> None:
    """Raise a ConfigError with the install hint when torch or transformers is missing."""
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            f"the local model engine needs torch and transformers ({exc}): {LOCAL_EXTRA_HINT}"
        ) from exc


def resolve_device(device: Device) -> str:
    """``cpu`` or ``cuda`` for a requested device; CUDA requested but absent is a ConfigError."""
    import torch

    if device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"unknown device {device!r}: use 'auto', 'cpu' or 'cuda'")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "device 'cuda' was requested but torch sees no CUDA GPU: use device 'auto' or "
            "'cpu', or install a CUDA build of torch on a machine with a GPU"
        )
    return device


def resolve_dtype(dtype: DType, device: str) -> torch.dtype:
    """The torch dtype for a requested dtype on ``device`` (auto: bf16 on CUDA, fp32 on CPU)."""
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device == "cuda" else torch.float32
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[
            dtype
        ]
    except KeyError:
        raise ConfigError(
            f"unknown dtype {dtype!r}: use 'auto', 'float32', 'bfloat16' or 'float16'"
        ) from None


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~", "\\")) or name.endswith(".gguf")


def resolve_source(spec: ModelSpec) -> tuple[str, str | None]:
    """(directory or hub id, gguf file name) to hand to ``from_pretrained``; checks paths."""
    if not spec.model.strip():
        raise ConfigError("the model name is empty: set it to a directory or a model id")
    path = Path(spec.model).expanduser()
    gguf_file = spec.gguf_file
    if path.is_file():
        if path.suffix != ".gguf" or gguf_file:
            raise ConfigError(
                f"model {spec.model!r} is a file: point model at a model directory, or at a "
                ".gguf file (without gguf_file)"
            )
        return str(path.parent), path.name
    if path.is_dir():
        if gguf_file:
            if not (path / gguf_file).is_file():
                raise ConfigError(
                    f"GGUF file {gguf_file!r} not found in {path}: check gguf_file "
                    f"(present: {sorted(p.name for p in path.glob('*.gguf')) or 'none'})"
                )
        elif not (path / "config.json").is_file():
            raise ConfigError(
                f"{path} has no config.json, so it is not a transformers model directory: "
                "point model at a folder written by save_pretrained, or name a .gguf file "
                "with gguf_file"
            )
        return str(path), gguf_file
    if _looks_like_path(spec.model):
        raise ConfigError(f"model path {spec.model!r} does not exist: check the path")
    return spec.model, gguf_file


def load_model(spec: ModelSpec, adapter_dir: Path | None = None) -> LoadedModel:
    """Load tokenizer and model for ``spec`` (plus a LoRA adapter) onto the resolved device."""
    require_torch_stack()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    # A worker's output is logs, not terminal progress bars (GGUF conversion, weight loading).
    transformers_logging.disable_progress_bar()
    source, gguf_file = resolve_source(spec)
    device = resolve_device(spec.device)
    dtype = resolve_dtype(spec.dtype, device)
    extra: dict[str, Any] = {"local_files_only": True}
    if gguf_file:
        extra["gguf_file"] = gguf_file
    started = time.perf_counter()
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **extra)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **extra)
    except OSError as exc:
        raise ConfigError(
            f"cannot load model {spec.model!r} offline ({exc}). Point model at a local "
            "directory, or put it in the Hugging Face cache beforehand "
            f"(huggingface-cli download {spec.model})"
        ) from exc
    except ImportError as exc:
        raise ConfigError(f"loading {spec.model!r} needs a missing package: {exc}") from exc
    model.to(torch.device(device))
    model.eval()
    if tokenizer.pad_token is None:
        # Padding positions are masked, so any token will do; eos is always there.
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    if adapter_dir is not None:
        model = _attach_adapter(model, adapter_dir)
    return LoadedModel(
        spec=spec,
        model=model,
        tokenizer=tokenizer,
        device=torch.device(device),
        dtype=dtype,
        renderer=ChatRenderer(tokenizer),
        adapter_dir=adapter_dir,
        load_seconds=time.perf_counter() - started,
    )


def _attach_adapter(model: PreTrainedModel, adapter_dir: Path) -> PreTrainedModel:
    if not (adapter_dir / "adapter_config.json").is_file():
        raise ConfigError(
            f"{adapter_dir} is not a LoRA adapter directory (no adapter_config.json): point "
            "adapter_dir at the folder train_lora returned"
        )
    try:
        from peft import PeftModel
    except ImportError as exc:
        raise ConfigError(f"loading a LoRA adapter needs peft: {LOCAL_EXTRA_HINT}") from exc
    with quiet_peft():
        peft_model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)
    peft_model.eval()
    return peft_model  # type: ignore[return-value]


@contextmanager
def quiet_peft() -> Iterator[None]:
    """Silence a deprecation warning peft 0.21 triggers in transformers 5 (nothing to act on)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
        yield


CacheKey = tuple[ModelSpec, str | None]


class ModelCache:
    """Loaded models per (spec, adapter), kept until released. Thread-safe.

    A model with an adapter is loaded as its own copy of the base model: peft injects LoRA
    layers into the module tree, which would otherwise change the cached base model too.
    """

    def __init__(self) -> None:
        self._models: dict[CacheKey, LoadedModel] = {}
        self._loading: dict[CacheKey, threading.Lock] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(spec: ModelSpec, adapter_dir: Path | None) -> CacheKey:
        return spec, str(Path(adapter_dir).resolve()) if adapter_dir is not None else None

    def get(self, spec: ModelSpec, adapter_dir: Path | None = None) -> LoadedModel:
        """The loaded model for ``spec`` (with ``adapter_dir``), loading it on first use."""
        key = self._key(spec, adapter_dir)
        with self._lock:
            if key in self._models:
                return self._models[key]
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:  # one load per key; other keys load in parallel
            with self._lock:
                if key in self._models:
                    return self._models[key]
            loaded = load_model(spec, adapter_dir)
            with self._lock:
                self._models[key] = loaded
                self._loading.pop(key, None)
            return loaded

    def loaded(self) -> list[CacheKey]:
        """The (spec, adapter path) pairs currently held."""
        with self._lock:
            return list(self._models)

    def release(self, spec: ModelSpec, adapter_dir: Path | None = None) -> int:
        """Drop ``spec``'s models: all of them, or only the one with ``adapter_dir``; count them."""
        with self._lock:
            if adapter_dir is None:
                keys = [k for k in self._models if k[0] == spec]
            else:
                keys = [k for k in [self._key(spec, adapter_dir)] if k in self._models]
            dropped = [self._models.pop(k) for k in keys]
        if dropped:
            _free_memory(any(m.device.type == "cuda" for m in dropped))
        return len(dropped)

    def clear(self) -> None:
        """Drop every model."""
        with self._lock:
            cuda = any(m.device.type == "cuda" for m in self._models.values())
            self._models.clear()
        _free_memory(cuda)


def _free_memory(cuda: bool) -> None:
    gc.collect()
    if cuda:
        import torch

        torch.cuda.empty_cache()
