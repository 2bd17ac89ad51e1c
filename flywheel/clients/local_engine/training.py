"""LoRA fine-tuning of a loaded causal LM on chat JSONL lines, resumable from checkpoints.

A plain PyTorch loop over a peft model (no Trainer): every step is visible to the caller
through ``on_progress`` (an activity heartbeats there, and cancellation raises from there), the
data order is a pure function of (seed, epoch), and a checkpoint holds adapter, optimizer,
scheduler and RNG state, so ``resume=True`` continues exactly where the last checkpoint left
off with the same total number of steps.

Each line is rendered with :class:`ChatRenderer` exactly as generation renders prompts; the loss
covers only the final assistant turn (labels are -100 elsewhere).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flywheel.clients.local_engine.models import LOCAL_EXTRA_HINT, LoadedModel, quiet_peft
from flywheel.errors import ConfigError, InvalidDataError

if TYPE_CHECKING:
    import torch

IGNORE_INDEX = -100
ADAPTER_DIR_NAME = "adapter"
_STEP_PREFIX = "step-"
_STATE_FILE = "state.json"
_TRAINER_FILE = "trainer.pt"

_ATTENTION_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj"]
DEFAULT_TARGET_MODULES: dict[str, list[str]] = {
    **{
        name: _ATTENTION_PROJECTIONS
        for name in (
            "llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "gemma",
            "gemma2", "gemma3_text", "granite", "olmo", "olmo2", "smollm3", "stablelm", "cohere",
        )
    },
    "phi3": ["qkv_proj", "o_proj"],
    "phi": ["q_proj", "k_proj", "v_proj", "dense"],
    "gpt2": ["c_attn", "c_proj"],
    "gpt_bigcode": ["c_attn", "c_proj"],
    "gpt_neox": ["query_key_value", "dense"],
    "falcon": ["query_key_value", "dense"],
    "opt": ["q_proj", "k_proj", "v_proj", "out_proj"],
}  # fmt: skip
"""LoRA targets per ``config.model_type``: the attention projections. Others get all-linear."""


@dataclass(frozen=True)
class LoraOptions:
    """LoRA hyperparameters and the limits of one training run."""

    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] | None = None
    """Module names to adapt; None picks the attention projections of the architecture."""
    epochs: int = 1
    batch_size: int = 4
    learning_rate: float = 1e-4
    max_steps: int | None = None
    """Cap on optimizer steps (the total stays the same across resumes)."""
    max_seconds: float | None = None
    """Stop (with a checkpoint) once this call has trained this long; resume continues."""
    checkpoint_every: int = 0
    """Checkpoint every N steps (0: only at the end)."""
    validate_at_checkpoints: bool = True
    max_length: int = 2048
    """Longer examples lose the start of their prompt (the answer is kept)."""
    weight_decay: float = 0.0
    warmup_steps: int = 0
    seed: int = 0


@dataclass(frozen=True)
class TrainProgress:
    """Reported after every optimizer step."""

    step: int
    total_steps: int
    epoch: int
    loss: float
    val_loss: float | None = None
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class TrainResult:
    """Where the adapter is and how training went."""

    adapter_dir: Path
    steps: int
    total_steps: int
    train_loss: float
    """Mean loss over the last epoch's worth of steps."""
    val_loss: float | None
    stopped_early: bool = False
    """True when ``max_seconds`` ended training before ``total_steps``."""
    resumed_from_step: int = 0


@dataclass
class EncodedExample:
    """Token ids of one conversation and its labels (-100 outside the assistant answer)."""

    input_ids: list[int]
    labels: list[int]


@dataclass
class _State:
    step: int = 0
    losses: list[float] = field(default_factory=list)
    val_loss: float | None = None
    fingerprint: str = ""


def encode_example(
    loaded: LoadedModel, line: Mapping[str, Any], *, max_length: int
) -> EncodedExample:
    """Render one training line and mask everything but the final assistant turn."""
    messages = line.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidDataError("a training line needs a non-empty 'messages' list")
    prompt, target = loaded.renderer.render_example(messages, line.get("tools"))
    tokenizer = loaded.tokenizer
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    target_ids = tokenizer(target, add_special_tokens=False)["input_ids"][:max_length]
    keep = max_length - len(target_ids)
    prompt_ids = prompt_ids[len(prompt_ids) - keep :] if keep > 0 else []
    return EncodedExample(
        input_ids=prompt_ids + target_ids,
        labels=[IGNORE_INDEX] * len(prompt_ids) + target_ids,
    )


def encode_lines(
    loaded: LoadedModel, lines: Sequence[Mapping[str, Any]], *, max_length: int, what: str
) -> list[EncodedExample]:
    """Encode every line; a bad line is an InvalidDataError naming its index."""
    out = []
    for index, line in enumerate(lines):
        try:
            example = encode_example(loaded, line, max_length=max_length)
        except InvalidDataError as exc:
            raise InvalidDataError(f"{what} line {index}: {exc}") from exc
        if not any(label != IGNORE_INDEX for label in example.labels):
            raise InvalidDataError(f"{what} line {index}: the assistant answer is empty")
        out.append(example)
    return out


def collate(
    examples: Sequence[EncodedExample], pad_id: int, device: torch.device
) -> dict[str, torch.Tensor]:
    """Right-padded tensors: padding is masked out of attention and loss."""
    import torch

    width = max(len(e.input_ids) for e in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    attention = torch.zeros((len(examples), width), dtype=torch.long)
    for i, example in enumerate(examples):
        n = len(example.input_ids)
        input_ids[i, :n] = torch.tensor(example.input_ids)
        labels[i, :n] = torch.tensor(example.labels)
        attention[i, :n] = 1
    return {
        "input_ids": input_ids.to(device),
        "attention_mask": attention.to(device),
        "labels": labels.to(device),
    }


def default_target_modules(model_type: str) -> list[str] | str:
    """The attention projections of a known architecture, else peft's ``all-linear``."""
    return DEFAULT_TARGET_MODULES.get(model_type, "all-linear")


def total_steps_for(n_examples: int, options: LoraOptions) -> int:
    """Optimizer steps of a run: epochs × batches per epoch, capped by ``max_steps``."""
    total = math.ceil(n_examples / options.batch_size) * options.epochs
    return min(total, options.max_steps) if options.max_steps is not None else total


def batch_indices(step: int, n_examples: int, options: LoraOptions) -> tuple[int, list[int]]:
    """(epoch, example indices) of 0-based ``step``: a fixed shuffle per (seed, epoch)."""
    import torch

    per_epoch = math.ceil(n_examples / options.batch_size)
    epoch, batch = divmod(step, per_epoch)
    generator = torch.Generator().manual_seed(options.seed * 100_003 + epoch)
    order = torch.randperm(n_examples, generator=generator).tolist()
    return epoch, order[batch * options.batch_size : (batch + 1) * options.batch_size]


def _fingerprint(
    train_lines: Sequence[Mapping[str, Any]], options: LoraOptions, loaded: LoadedModel
) -> str:
    relevant = asdict(options)
    for volatile in ("max_seconds", "checkpoint_every", "validate_at_checkpoints"):
        relevant.pop(volatile)
    digest = hashlib.sha256()
    digest.update(json.dumps([loaded.spec.model, relevant], sort_keys=True).encode())
    for line in train_lines:
        digest.update(json.dumps(line, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _validate_options(options: LoraOptions) -> None:
    problems = []
    if options.rank < 1 or options.alpha <= 0:
        problems.append("rank and alpha must be positive")
    if not 0 <= options.dropout < 1:
        problems.append("dropout must be in [0, 1)")
    if options.epochs < 1 or options.batch_size < 1:
        problems.append("epochs and batch_size must be at least 1")
    if options.learning_rate <= 0:
        problems.append("learning_rate must be positive")
    if options.max_steps is not None and options.max_steps < 1:
        problems.append("max_steps must be at least 1 (or None)")
    if options.checkpoint_every < 0:
        problems.append("checkpoint_every must be >= 0")
    if options.max_length < 8:
        problems.append("max_length must be at least 8")
    if problems:
        raise ConfigError("invalid LoRA options: " + "; ".join(problems))


def _checkpoints(checkpoint_dir: Path) -> list[Path]:
    """Complete checkpoints (they appear only by atomic rename), oldest first."""
    found = [p for p in checkpoint_dir.glob(f"{_STEP_PREFIX}*") if p.is_dir()]
    return sorted(found, key=lambda p: int(p.name.removeprefix(_STEP_PREFIX)))


def _replace_dir(tmp: Path, final: Path) -> None:
    """Move ``tmp`` to ``final`` so that ``final`` is always either old or new, never partial."""
    old = final.with_name(f".old-{final.name}")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    if old.exists():
        shutil.rmtree(old)


class _Run:
    """One call of :func:`train_lora`: model, optimizer, data and checkpoint I/O."""

    def __init__(
        self,
        loaded: LoadedModel,
        train: list[EncodedExample],
        val: list[EncodedExample],
        options: LoraOptions,
        checkpoint_dir: Path,
    ) -> None:
        import torch
        from peft import LoraConfig, get_peft_model

        self.loaded = loaded
        self.train_examples = train
        self.val_examples = val
        self.options = options
        self.checkpoint_dir = checkpoint_dir
        self.total = total_steps_for(len(train), options)
        self.pad_id = loaded.tokenizer.pad_token_id or 0
        targets = options.target_modules or default_target_modules(
            getattr(loaded.model.config, "model_type", "")
        )
        config = LoraConfig(
            r=options.rank,
            lora_alpha=options.alpha,
            lora_dropout=options.dropout,
            target_modules=targets,
            task_type="CAUSAL_LM",
        )
        torch.manual_seed(options.seed)
        with loaded.lock:  # the cached base model stays untouched: peft edits a copy
            base = copy.deepcopy(loaded.model)
        try:
            with quiet_peft():
                self.model = get_peft_model(base, config)
        except ValueError as exc:
            raise ConfigError(f"cannot apply LoRA to {loaded.spec.model!r}: {exc}") from exc
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            params, lr=options.learning_rate, weight_decay=options.weight_decay
        )
        warmup = options.warmup_steps

        def schedule(step: int) -> float:
            if warmup and step < warmup:
                return (step + 1) / warmup
            return max(0.0, (self.total - step) / max(1, self.total - warmup))

        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)

    def train_step(self, step: int) -> tuple[int, float]:
        import torch

        epoch, indices = batch_indices(step, len(self.train_examples), self.options)
        batch = collate([self.train_examples[i] for i in indices], self.pad_id, self.loaded.device)
        self.model.train()
        loss = self.model(**batch).loss
        if not torch.isfinite(loss):
            raise ConfigError(
                f"training loss became {loss.item()} at step {step + 1}: lower learning_rate"
            )
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad], 1.0)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return epoch, float(loss.item())

    def validation_loss(self) -> float | None:
        """Token-weighted mean loss over the validation examples (None without any)."""
        import torch

        if not self.val_examples:
            return None
        self.model.eval()
        total, tokens = 0.0, 0
        size = self.options.batch_size
        with torch.inference_mode():
            for start in range(0, len(self.val_examples), size):
                chunk = self.val_examples[start : start + size]
                batch = collate(chunk, self.pad_id, self.loaded.device)
                n = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
                total += float(self.model(**batch).loss) * n
                tokens += n
        self.model.train()
        return total / tokens if tokens else None

    def save_checkpoint(self, state: _State) -> Path:
        import torch

        final = self.checkpoint_dir / f"{_STEP_PREFIX}{state.step:08d}"
        tmp = self.checkpoint_dir / f".tmp-{final.name}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        self.model.save_pretrained(str(tmp / ADAPTER_DIR_NAME), save_embedding_layers=False)
        trainer_state: dict[str, Any] = {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": torch.get_rng_state(),
        }
        if torch.cuda.is_available():
            trainer_state["cuda_rng"] = torch.cuda.get_rng_state_all()
        torch.save(trainer_state, tmp / _TRAINER_FILE)
        (tmp / _STATE_FILE).write_text(json.dumps(asdict(state)))
        _replace_dir(tmp, final)
        for older in _checkpoints(self.checkpoint_dir):
            if older != final:
                shutil.rmtree(older, ignore_errors=True)
        return final

    def load_checkpoint(self, path: Path, fingerprint: str) -> _State:
        import torch
        from peft import set_peft_model_state_dict
        from peft.utils import load_peft_weights

        state = _State(**json.loads((path / _STATE_FILE).read_text()))
        if state.fingerprint != fingerprint:
            raise ConfigError(
                f"checkpoint {path} was written for other training data or options: resume with "
                "the same data and options, or start over with resume=False"
            )
        weights = load_peft_weights(str(path / ADAPTER_DIR_NAME), device=str(self.loaded.device))
        set_peft_model_state_dict(self.model, weights)
        trainer_state = torch.load(path / _TRAINER_FILE, weights_only=False)
        self.optimizer.load_state_dict(trainer_state["optimizer"])
        self.scheduler.load_state_dict(trainer_state["scheduler"])
        torch.set_rng_state(trainer_state["rng"])
        if "cuda_rng" in trainer_state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(trainer_state["cuda_rng"])
        return state

    def save_adapter(self) -> Path:
        final = self.checkpoint_dir / ADAPTER_DIR_NAME
        tmp = self.checkpoint_dir / f".tmp-{ADAPTER_DIR_NAME}"
        if tmp.exists():
            shutil.rmtree(tmp)
        self.model.save_pretrained(str(tmp), save_embedding_layers=False)
        _replace_dir(tmp, final)
        return final


def _prepare_dir(checkpoint_dir: Path, resume: bool) -> Path | None:
    """Create the folder, drop partial writes; the checkpoint to resume from, if any."""
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    for partial in checkpoint_dir.glob(".tmp-*"):
        shutil.rmtree(partial, ignore_errors=True)
    found = _checkpoints(checkpoint_dir)
    if resume:
        return found[-1] if found else None
    for stale in [*found, checkpoint_dir / ADAPTER_DIR_NAME]:
        if stale.exists():
            shutil.rmtree(stale)
    return None


def train_lora(
    loaded_base: LoadedModel,
    train_lines: Sequence[Mapping[str, Any]],
    val_lines: Sequence[Mapping[str, Any]] = (),
    *,
    options: LoraOptions | None = None,
    checkpoint_dir: Path,
    resume: bool = False,
    on_progress: Callable[[TrainProgress], None] | None = None,
) -> TrainResult:
    """Fine-tune a LoRA adapter on ``train_lines``; write it to ``checkpoint_dir/adapter``.

    ``resume=True`` continues from the newest checkpoint in ``checkpoint_dir`` (same data and
    options required), ``resume=False`` discards any. An exception raised by ``on_progress``
    (cancellation, for one) stops training; the last checkpoint stays for a later resume. The
    cached base model is not modified: training works on a copy.
    """
    try:
        import torch
        from peft import PeftModel
    except ImportError as exc:
        raise ConfigError(f"LoRA training needs torch and peft: {LOCAL_EXTRA_HINT}") from exc

    options = options or LoraOptions()
    _validate_options(options)
    if isinstance(loaded_base.model, PeftModel):
        raise ConfigError("train_lora needs the base model: load it without an adapter")
    if not train_lines:
        raise InvalidDataError("no training lines: LoRA training needs at least one example")
    train = encode_lines(loaded_base, train_lines, max_length=options.max_length, what="train")
    val = encode_lines(loaded_base, val_lines, max_length=options.max_length, what="validation")
    fingerprint = _fingerprint(train_lines, options, loaded_base)
    started = time.perf_counter()
    devices = [loaded_base.device.index or 0] if loaded_base.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):  # the caller's RNG state is left as it was
        run = _Run(loaded_base, train, val, options, checkpoint_dir)
        latest = _prepare_dir(checkpoint_dir, resume)
        state = _State(fingerprint=fingerprint)
        if latest is not None:
            state = run.load_checkpoint(latest, fingerprint)
        resumed_from = state.step
        stopped_early = False
        while state.step < run.total:
            epoch, loss = run.train_step(state.step)
            state.step += 1
            state.losses.append(loss)
            elapsed = time.perf_counter() - started
            out_of_time = options.max_seconds is not None and elapsed >= options.max_seconds
            final = state.step == run.total or out_of_time
            periodic = options.checkpoint_every and state.step % options.checkpoint_every == 0
            val_loss = None
            if final or (periodic and options.validate_at_checkpoints):
                val_loss = run.validation_loss()
                state.val_loss = val_loss
            if final or periodic:
                run.save_checkpoint(state)
            if on_progress is not None:
                on_progress(TrainProgress(state.step, run.total, epoch, loss, val_loss, elapsed))
            if out_of_time and state.step < run.total:
                stopped_early = True
                break
        if state.step == resumed_from and state.val_loss is None:  # resumed a finished run
            state.val_loss = run.validation_loss()
        adapter = run.save_adapter()
    per_epoch = math.ceil(len(train) / options.batch_size)
    recent = state.losses[-per_epoch:]
    return TrainResult(
        adapter_dir=adapter,
        steps=state.step,
        total_steps=run.total,
        train_loss=sum(recent) / len(recent) if recent else float("nan"),
        val_loss=state.val_loss,
        stopped_early=stopped_early,
        resumed_from_step=resumed_from,
    )
