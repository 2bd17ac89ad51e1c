"""The ``local`` platform: candidates run on the worker's own CPU/GPU with transformers + peft.

Deploy loads the model (cached per worker process), evaluation generates answers in batches and
parses tool calls out of the text, customization trains a LoRA adapter on the run's train/val
sets — checkpointed to the artifact store, so a retried activity resumes — and teardown releases
the model. Heavy imports happen on first use, so a worker without the ``local`` extra still
serves every other platform.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flywheel.clients.artifacts import ArtifactStore, safe_path_part
from flywheel.clients.embeddings import EmbedderCache
from flywheel.config import Candidate, RunConfig
from flywheel.errors import ConfigError
from flywheel.platforms.base import StepContext
from flywheel.platforms.evaluator import (
    EvalCheckpoint,
    Reply,
    checkpoint_prefix,
    open_similarity_embedder,
    release_in_background,
    run_evaluation,
)
from flywheel.platforms.judging import open_judge
from flywheel.platforms.tool_parsing import parse_assistant_output
from flywheel.schemas import (
    CustomizationResult,
    CustomizeInput,
    DeployInput,
    Deployment,
    EvalKind,
    EvalResult,
    EvaluateInput,
    Platform,
    StepStatus,
    TeardownInput,
    utcnow,
)

if TYPE_CHECKING:
    from flywheel.clients.local_engine import LoadedModel, ModelCache, ModelSpec

DEFAULT_BATCH_SIZE = 8
DEFAULT_MAX_NEW_TOKENS = 128
HEARTBEAT_EVERY_S = 1.0


class LocalPlatform:
    """:class:`~flywheel.platforms.base.ModelPlatform` on the worker's own hardware."""

    name = Platform.LOCAL

    def __init__(self, artifacts: ArtifactStore, work_dir: Path) -> None:
        self.artifacts = artifacts
        self.work_dir = Path(work_dir)
        self._cache: ModelCache | None = None
        self._embedders = EmbedderCache()

    # --- the protocol ---

    async def deploy(self, request: DeployInput, ctx: StepContext) -> Deployment:
        """Load the candidate's model into this worker's cache (a clear error if it can't)."""
        spec = model_spec(request.candidate)
        async with _beating(ctx, {"stage": "loading model", "model": spec.model}):
            await asyncio.to_thread(self.cache().get, spec)
        return Deployment(
            candidate=request.candidate.name,
            platform=Platform.LOCAL,
            model=request.candidate.model,
            supports_customization=True,
        )

    async def evaluate(self, request: EvaluateInput, ctx: StepContext) -> EvalResult:
        """Generate answers for the eval set in batches and score them like any other platform."""
        candidate = request.candidate
        spec = model_spec(candidate)
        adapter = None
        if request.kind == EvalKind.CUSTOMIZED:
            adapter = await self._fetch_adapter(request.run_id, candidate)
        records = await self.artifacts.read_dataset(request.dataset)
        loaded = await asyncio.to_thread(self.cache().get, spec, adapter)
        checkpoint = EvalCheckpoint(
            self.artifacts, checkpoint_prefix(request.run_id, candidate.name, request.kind)
        )
        options = candidate.options
        responder = LocalResponder(
            loaded,
            batch_size=int(options.get("batch_size", DEFAULT_BATCH_SIZE)),
            max_new_tokens=int(
                options.get("max_new_tokens")
                or request.config.evaluation.max_tokens
                or DEFAULT_MAX_NEW_TOKENS
            ),
            temperature=request.config.evaluation.temperature or 0.0,
        )
        async with (
            open_judge(
                request.config.llm_judge_config,
                request.config.evaluation,
                workload_type=request.workload_type,
            ) as judge,
            open_similarity_embedder(
                request.config.evaluation, request.workload_type, self._embedders
            ) as embedder,
        ):
            try:
                return await run_evaluation(
                    records=records,
                    responder=responder,
                    checkpoint=checkpoint,
                    kind=request.kind,
                    workload_type=request.workload_type,
                    model=request.model or candidate.model,
                    config=request.config.evaluation,
                    ctx=ctx,
                    judge=judge,
                    embedder=embedder,
                )
            finally:
                release_in_background(records)

    async def customize(self, request: CustomizeInput, ctx: StepContext) -> CustomizationResult:
        """LoRA-train the candidate on the run's train/val sets, resuming from a checkpoint."""
        from flywheel.clients.local_engine import train_lora

        started = utcnow()
        candidate = request.candidate
        prefix = _lora_prefix(request.run_id, candidate)
        workspace = self._workspace(request.run_id, candidate)
        checkpoint_dir = workspace / "checkpoint"
        resume = False
        if await self.artifacts.exists(f"{prefix}/checkpoint"):
            shutil.rmtree(checkpoint_dir, ignore_errors=True)
            await self.artifacts.get_directory(f"{prefix}/checkpoint", checkpoint_dir)
            resume = True
        train = await self.artifacts.read_dataset(request.train)
        val = await self.artifacts.read_dataset(request.val)
        base = await asyncio.to_thread(self.cache().get, model_spec(candidate))
        latest: dict[str, Any] = {"stage": "training", "resumed": resume}
        every = request.config.training_config.checkpoint_every_steps
        stop = threading.Event()

        def on_progress(progress: Any) -> None:  # runs in the training thread
            if stop.is_set():
                raise _Stopped
            latest.update(_progress_details(progress))
            if progress.step % every == 0:  # the engine has just written a checkpoint
                self.artifacts.put_directory_sync(checkpoint_dir, f"{prefix}/checkpoint")

        training = asyncio.ensure_future(
            asyncio.to_thread(
                train_lora,
                base,
                train,
                val,
                options=lora_options(request.config),
                checkpoint_dir=checkpoint_dir,
                resume=resume,
                on_progress=on_progress,
            )
        )
        async with _beating(ctx, latest):
            try:
                result = await asyncio.shield(training)
            except asyncio.CancelledError:
                stop.set()  # the thread stops at its next step, leaving its last checkpoint
                with contextlib.suppress(_Stopped, Exception):
                    await training
                raise
        adapter_uri = await self.artifacts.put_directory(
            Path(result.adapter_dir), f"{prefix}/adapter"
        )
        return CustomizationResult(
            status=StepStatus.COMPLETED,
            model=f"{candidate.model}+lora",
            adapter_uri=adapter_uri,
            steps_completed=result.steps,
            epochs_completed=int(latest.get("epoch", 0)),
            train_loss=result.train_loss,
            val_loss=result.val_loss,
            resumed_from_step=result.resumed_from_step if resume else None,
            started_at=started,
            finished_at=utcnow(),
        )

    async def teardown(self, request: TeardownInput, ctx: StepContext) -> None:
        """Release the candidate's models (base and adapted) and its local files."""
        if self._cache is not None:
            spec = model_spec(request.candidate)
            adapter = self._workspace(request.run_id, request.candidate) / "adapter"
            self._cache.release(spec, adapter)
            self._cache.release(spec)
        workspace = self._workspace(request.run_id, request.candidate)
        shutil.rmtree(workspace, ignore_errors=True)
        with contextlib.suppress(OSError):
            workspace.parent.rmdir()  # the run's folder, once its last candidate is gone

    async def aclose(self) -> None:
        if self._cache is not None:
            self._cache.clear()
        self._embedders.clear()

    # --- helpers ---

    def cache(self) -> ModelCache:
        if self._cache is None:
            from flywheel.clients.local_engine import ModelCache

            self._cache = ModelCache()
        return self._cache

    def _workspace(self, run_id: str, candidate: Candidate) -> Path:
        return self.work_dir / safe_path_part(run_id) / safe_path_part(candidate.name)

    async def _fetch_adapter(self, run_id: str, candidate: Candidate) -> Path:
        target = self._workspace(run_id, candidate) / "adapter"
        if not target.is_dir():
            await self.artifacts.get_directory(f"{_lora_prefix(run_id, candidate)}/adapter", target)
        return target


class LocalResponder:
    """A :class:`~flywheel.platforms.evaluator.Responder` over a loaded model: batches, not HTTP."""

    concurrency = 1

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        batch_size: int,
        max_new_tokens: int,
        temperature: float,
    ) -> None:
        self.loaded = loaded
        self.batch_size = max(1, batch_size)
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature

    async def answer(self, requests: list[tuple[int, dict[str, Any]]]) -> list[Reply]:
        from flywheel.clients.local_engine import generate_replies

        payloads = [payload for _, payload in requests]
        try:
            generated = await asyncio.to_thread(
                generate_replies,
                self.loaded,
                payloads,
                max_new_tokens=self.max_new_tokens,
                temperature=self.temperature,
                batch_size=self.batch_size,
            )
        except (RuntimeError, ValueError) as exc:  # e.g. out of memory: failed, not wrong
            return [Reply.failed(index, f"local generation failed: {exc}") for index, _ in requests]
        replies = []
        for (index, payload), output in zip(requests, generated, strict=True):
            message = parse_assistant_output(output.text, tool_names=_tool_names(payload))
            replies.append(
                Reply(
                    index=index,
                    ok=True,
                    message=message,
                    finish_reason="tool_calls" if message.get("tool_calls") else "stop",
                    tokens_in=output.prompt_tokens,
                    tokens_out=output.completion_tokens,
                    latency_s=output.latency_s,
                    error=None,
                )
            )
        return replies


class _Stopped(Exception):
    """Raised in the training thread to stop it (the activity was cancelled)."""


def model_spec(candidate: Candidate) -> ModelSpec:
    """The model a ``local`` candidate names: ``model`` plus ``options`` gguf_file/device/dtype."""
    from flywheel.clients.local_engine import ModelSpec

    options = candidate.options
    unknown = sorted(set(options) - _OPTIONS)
    if unknown:
        raise ConfigError(
            f"candidate {candidate.name!r}: unknown local option(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(_OPTIONS))})"
        )
    return ModelSpec(
        model=candidate.model,
        gguf_file=options.get("gguf_file"),
        device=options.get("device", "auto"),
        dtype=options.get("dtype", "auto"),
    )


_OPTIONS = frozenset({"gguf_file", "device", "dtype", "batch_size", "max_new_tokens"})


def lora_options(config: RunConfig) -> Any:
    """The run's training_config and lora_config as the engine's LoRA options."""
    from flywheel.clients.local_engine import LoraOptions

    training, lora = config.training_config, config.lora_config
    return LoraOptions(
        rank=lora.adapter_dim,
        alpha=lora.adapter_alpha or 2 * lora.adapter_dim,
        dropout=lora.adapter_dropout,
        target_modules=list(lora.target_modules) if lora.target_modules else None,
        epochs=training.epochs,
        batch_size=training.batch_size,
        learning_rate=training.learning_rate,
        max_steps=training.max_steps,
        max_seconds=training.max_seconds,
        checkpoint_every=training.checkpoint_every_steps,
    )


def _lora_prefix(run_id: str, candidate: Candidate) -> str:
    return f"runs/{safe_path_part(run_id)}/{safe_path_part(candidate.name)}/lora"


def _tool_names(payload: dict[str, Any]) -> list[str] | None:
    tools = payload.get("tools")
    if not isinstance(tools, list):
        return None
    names = []
    for tool in tools:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            names.append(function["name"])
    return names


def _progress_details(progress: Any) -> dict[str, Any]:
    details: dict[str, Any] = {"stage": "training"}
    for key in ("step", "total_steps", "epoch", "loss", "val_loss"):
        value = getattr(progress, key, None)
        if value is not None:
            details[key] = round(value, 4) if isinstance(value, float) else value
    return details


@contextlib.asynccontextmanager
async def _beating(ctx: StepContext, details: dict[str, Any]) -> AsyncIterator[None]:
    """Heartbeat ``details`` (which the caller may update) every few seconds during a wait."""

    async def beat() -> None:
        while True:
            ctx.heartbeat(dict(details))
            await asyncio.sleep(HEARTBEAT_EVERY_S)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        ctx.heartbeat(dict(details))
