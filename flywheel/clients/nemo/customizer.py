"""LoRA fine-tuning with NeMo Customizer: configs, jobs, progress, cancellation.

A job is found before it is created (by id from an earlier attempt, else by its deterministic
name), so a retried, resumed or killed-and-restarted step never starts a second job. Progress
comes from ``GET /v1/customization/jobs/{id}/status``; a failure carries the last detail of its
``status_logs``; a job that cannot be scheduled (``NotEnoughResources``) is reported as such.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flywheel.clients.nemo.connection import PAGE_SIZE, NemoConnection
from flywheel.clients.nemo.errors import is_status
from flywheel.clients.nemo.names import RunNames
from flywheel.config import CustomizerConfig, LoRAConfig, TrainingConfig
from flywheel.errors import RemoteCallError

__all__ = [
    "CustomizationFailed",
    "CustomizationStuck",
    "Customizer",
    "JobProgress",
    "hyperparameters",
    "training_option",
]

log = logging.getLogger(__name__)

ACTIVE = frozenset({"created", "pending", "running", "cancelling", "unknown"})
NOT_ENOUGH_RESOURCES = "NotEnoughResources"


class CustomizationFailed(RemoteCallError):
    """The job ended ``failed`` or ``cancelled``: there is nothing left to cancel."""


class CustomizationStuck(RemoteCallError):
    """The job is still active but will not finish in time (no GPUs, timeout): cancel it."""


@dataclass(frozen=True)
class JobProgress:
    """One reading of a customization job's ``/status``."""

    status: str
    percentage: float = 0.0
    epochs: int = 0
    steps: int = 0
    train_loss: float | None = None
    val_loss: float | None = None
    last_message: str | None = None
    detail: str | None = None
    """The last non-empty ``status_logs[].detail`` (why it failed or waits)."""

    @classmethod
    def from_status(cls, details: Any) -> JobProgress:
        logs = list(getattr(details, "status_logs", None) or [])
        detail = next(
            (str(log.detail) for log in reversed(logs) if getattr(log, "detail", None)), None
        )
        return cls(
            status=str(getattr(details, "status", None) or "unknown"),
            percentage=float(getattr(details, "percentage_done", None) or 0.0),
            epochs=int(getattr(details, "epochs_completed", None) or 0),
            steps=int(getattr(details, "steps_completed", None) or 0),
            train_loss=_number(getattr(details, "train_loss", None)),
            val_loss=_number(getattr(details, "val_loss", None)),
            last_message=str(logs[-1].message) if logs and logs[-1].message else None,
            detail=detail,
        )

    @property
    def waiting_for_resources(self) -> bool:
        return (
            self.status in ACTIVE
            and self.percentage <= 0
            and self.last_message == NOT_ENOUGH_RESOURCES
        )

    def details(self) -> dict[str, Any]:
        """Small, JSON-able progress for a heartbeat."""
        out: dict[str, Any] = {
            "status": self.status,
            "percentage": round(self.percentage, 2),
            "epochs": self.epochs,
            "steps": self.steps,
        }
        if self.train_loss is not None:
            out["train_loss"] = round(self.train_loss, 4)
        if self.val_loss is not None:
            out["val_loss"] = round(self.val_loss, 4)
        if self.waiting_for_resources:
            out["waiting"] = NOT_ENOUGH_RESOURCES
        return out


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def training_option(training: TrainingConfig, resources: CustomizerConfig) -> dict[str, Any]:
    """The config's ``training_options`` entry: how the training is laid out on GPUs."""
    return {
        "training_type": training.training_type,
        "finetuning_type": training.finetuning_type,
        "num_gpus": resources.gpus,
        "num_nodes": resources.num_nodes,
        "tensor_parallel_size": resources.tensor_parallel_size,
        "data_parallel_size": resources.data_parallel_size,
        "use_sequence_parallel": resources.use_sequence_parallel,
        "micro_batch_size": resources.micro_batch_size,
    }


def hyperparameters(training: TrainingConfig, lora: LoRAConfig) -> dict[str, Any]:
    """The job's ``hyperparameters``; LoRA ``alpha`` is sent (the blueprint dropped it).

    ``lora_config.target_modules`` is not sent: those are peft module names (local platform),
    which NeMo's fused LoRA layers do not use.
    """
    return {
        "training_type": training.training_type,
        "finetuning_type": training.finetuning_type,
        "epochs": training.epochs,
        "batch_size": training.batch_size,
        "learning_rate": training.learning_rate,
        "lora": {
            "adapter_dim": lora.adapter_dim,
            "adapter_dropout": lora.adapter_dropout,
            "alpha": lora.adapter_alpha or 2 * lora.adapter_dim,
        },
    }


class Customizer:
    """Customizer configs and jobs in the connection's namespace."""

    def __init__(self, conn: NemoConnection) -> None:
        self.conn = conn

    # --- configs ---

    async def ensure_config(
        self, name: str, *, training: TrainingConfig, resources: CustomizerConfig
    ) -> str:
        """The config ``name`` (found, or created): its ``namespace/name`` reference."""
        conn, ns = self.conn, self.conn.namespace
        await conn.ensure_namespace()
        await conn.ensure(
            f"Customizer config create ({ns}/{name})",
            lambda: conn.find(
                f"Customizer config lookup ({ns}/{name})",
                lambda: conn.sdk.customization.configs.retrieve(name, namespace=ns),
            ),
            lambda: conn.sdk.customization.configs.create(
                name=name,
                namespace=ns,
                target=resources.target,
                training_options=[training_option(training, resources)],
                training_precision=resources.training_precision,  # type: ignore[arg-type]
                max_seq_length=resources.max_seq_length,
            ),
        )
        return f"{ns}/{name}"

    # --- jobs ---

    async def get(self, job_id: str) -> Any:
        """The job ``job_id``, or None."""
        return await self.conn.find(
            f"Customizer job lookup ({job_id})",
            lambda: self.conn.sdk.customization.jobs.retrieve(job_id),
        )

    async def jobs(self) -> list[Any]:
        """Every customization job of the namespace, newest first."""
        conn = self.conn
        return await conn.all_pages(
            "Customizer job list",
            lambda: conn.sdk.customization.jobs.list(
                filter={"namespace": conn.namespace}, sort="-created_at", page_size=PAGE_SIZE
            ),
        )

    async def find(self, name: str) -> Any:
        """The newest job named ``name`` in the namespace, or None."""
        return next((job for job in await self.jobs() if job.name == name), None)

    async def latest(self, base: str) -> Any:
        """The newest job named ``base`` or a restart of it (``base.rN``), or None."""
        return next((j for j in await self.jobs() if RunNames.is_attempt(j.name, base)), None)

    async def cancel_named(self, name: str) -> bool:
        """Cancel the job named ``name`` if there is one (a create whose step was cancelled)."""
        job = await self.find(name)
        return job is not None and await self.cancel(str(job.id))

    async def ensure_job(
        self,
        *,
        name: str,
        config: str,
        dataset: str,
        output_model: str,
        hyperparameters: Mapping[str, Any],
        custom_fields: Mapping[str, str],
        description: str,
    ) -> tuple[Any, bool]:
        """The job named ``name`` (found), or a new one: ``(job, created)``."""
        conn, ns = self.conn, self.conn.namespace
        return await conn.ensure(
            f"NeMo Customizer job create ({name})",
            lambda: self.find(name),
            lambda: conn.sdk.customization.jobs.create(
                name=name,
                namespace=ns,
                config=config,
                dataset={"name": dataset, "namespace": ns},
                output_model=output_model,
                hyperparameters=dict(hyperparameters),  # type: ignore[arg-type]
                custom_fields=dict(custom_fields),
                description=description,
            ),
        )

    async def progress(self, job_id: str) -> JobProgress:
        status = await self.conn.call(
            f"Customizer job status ({job_id})",
            lambda: self.conn.sdk.customization.jobs.status(job_id),
        )
        return JobProgress.from_status(status)

    async def wait(
        self,
        job_id: str,
        *,
        what: str,
        deadline: float,
        scheduling_timeout_s: float,
        poll_s: float,
        on_progress: Callable[[JobProgress], None],
    ) -> JobProgress:
        """Poll ``job_id`` until it completes; its last progress.

        Raises :class:`CustomizationFailed` (with the job's failure detail) when it fails or is
        cancelled elsewhere, and :class:`CustomizationStuck` when it waits for GPUs
        (``NotEnoughResources``) longer than ``scheduling_timeout_s`` or runs past
        ``deadline`` (monotonic). Neither is retryable: a new attempt would re-attach to the
        same job. Unknown status strings are logged once and waited on.
        """
        unknown: set[str] = set()
        starved_since: float | None = None
        while True:
            progress = await self.progress(job_id)
            on_progress(progress)
            status = progress.status
            if status == "completed":
                return progress
            if status == "failed":
                raise CustomizationFailed(
                    f"{what} failed: {progress.detail or 'no error details available'}",
                    retryable=False,
                )
            if status == "cancelled":
                raise CustomizationFailed(
                    f"{what} was cancelled outside this step (by a user or an earlier attempt)",
                    retryable=False,
                )
            if status not in ACTIVE and status not in unknown:
                unknown.add(status)
                log.warning("%s: unknown status %r (waiting on)", what, status)
            now = time.monotonic()
            if progress.waiting_for_resources:
                if starved_since is None:
                    starved_since = now
                    log.warning("%s: waiting for GPUs: %s", what, progress.detail)
                if now - starved_since >= scheduling_timeout_s:
                    raise CustomizationStuck(
                        f"{what} could not be scheduled: NotEnoughResources for "
                        f"{now - starved_since:.0f} s ({progress.detail or 'no GPUs free'}); "
                        "free GPUs or lower the candidate's customizer gpus, then run again",
                        retryable=False,
                    )
            else:
                starved_since = None
            if now >= deadline:
                raise CustomizationStuck(
                    f"{what} did not finish within the customization timeout (status {status}, "
                    f"{progress.percentage:.0f}% done)",
                    retryable=False,
                )
            await asyncio.sleep(poll_s)

    async def remove_jobs(self, owned: Callable[[str | None], bool]) -> list[str]:
        """For every job whose name ``owned`` accepts: cancel it when still active and delete
        its customized model from the Entity Store (the Customizer keeps job records; it has
        no job delete). What was done, one line each; nothing the second time."""
        conn = self.conn
        done = []
        for job in await self.jobs():
            if not owned(job.name):
                continue
            if job.status in ACTIVE and await self.cancel(str(job.id)):
                done.append(f"cancelled NeMo Customizer job {job.id} ({job.name})")
            model = str(job.output_model or "")
            namespace, _, name = model.partition("/")
            if name and await conn.delete(
                f"Entity Store model delete ({model})",
                lambda ns=namespace, n=name: conn.sdk.models.delete(n, namespace=ns),
            ):
                done.append(f"deleted customized model {model}")
        return done

    async def cancel(self, job_id: str) -> bool:
        """Cancel ``job_id`` (``POST /v1/customization/jobs/{id}/cancel``); False when it was
        already finished or gone."""
        try:
            await self.conn.call(
                f"Customizer job cancel ({job_id})",
                lambda: self.conn.sdk.customization.jobs.cancel(job_id),
            )
        except RemoteCallError as exc:
            if is_status(exc, 400, 404, 409):  # finished already, or gone
                return False
            raise
        return True
