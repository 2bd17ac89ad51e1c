"""NIM deployments through NeMo Deployment Management (DMS).

One deployment per model, named from the model (:func:`~flywheel.clients.nemo.names.
deployment_name`): :meth:`Deployments.ensure` looks it up and re-attaches, or creates it;
:meth:`Deployments.wait_ready` polls its status until DMS says ``ready`` *and* the NIM lists the
model, reports ``failed`` at once with DMS's reason, and logs (but survives) status strings it
does not know.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flywheel.clients.nemo.connection import NemoConnection
from flywheel.clients.nemo.names import deployment_name
from flywheel.config import Candidate, NimDeploymentOptions
from flywheel.errors import ConfigError, RemoteCallError

__all__ = ["DeploymentFailed", "DeploymentSpec", "Deployments"]

log = logging.getLogger(__name__)

DEFAULT_NIM_ENVS = {"NIM_GUIDED_DECODING_BACKEND": "outlines"}
"""What the blueprint sets on every NIM (guided decoding for tool calls); a candidate's
``options.additional_envs`` replaces it."""
OPTIONS = frozenset({"additional_envs"})
"""The ``options`` a ``nemo`` candidate may set."""
WAITING = frozenset({"created", "pending", "running", "unknown"})
"""DMS statuses on the way to ``ready`` (``running`` and ``unknown`` appear while pods start)."""


@dataclass(frozen=True)
class DeploymentSpec:
    """What DMS is asked to run: one NIM image serving ``model``."""

    name: str
    model: str
    image_name: str
    image_tag: str
    gpus: int
    pvc_size: str | None = None
    additional_envs: dict[str, str] = field(default_factory=dict)

    @classmethod
    def for_candidate(cls, candidate: Candidate, run_id: str) -> DeploymentSpec:
        """A ``nemo`` candidate's deployment: image ``{registry_base}/{model}:{nim.tag}``, GPUs
        and PVC from ``candidate.nim``, NIM environment from ``options.additional_envs``."""
        unknown = sorted(set(candidate.options) - OPTIONS)
        if unknown:
            raise ConfigError(
                f"candidate {candidate.name!r}: unknown nemo option(s) {', '.join(unknown)} "
                f"(known: {', '.join(sorted(OPTIONS))})"
            )
        envs = candidate.options.get("additional_envs", DEFAULT_NIM_ENVS)
        if not isinstance(envs, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in envs.items()
        ):
            raise ConfigError(
                f"candidate {candidate.name!r}: options.additional_envs must map names to strings"
            )
        nim = candidate.nim or NimDeploymentOptions()
        if not nim.tag:
            raise ConfigError(
                f"candidate {candidate.name!r}: the nemo platform needs nim.tag (the NIM image "
                "tag, for example 1.8.3)"
            )
        return cls(
            name=deployment_name(run_id, candidate.name),
            model=candidate.model,
            image_name=f"{nim.registry_base.rstrip('/')}/{candidate.model}",
            image_tag=nim.tag,
            gpus=nim.gpus if nim.gpus is not None else 1,
            pvc_size=nim.pvc_size,
            additional_envs=dict(envs),
        )

    def config(self) -> dict[str, Any]:
        """The ``config`` body of ``POST /v1/deployment/model-deployments``."""
        nim: dict[str, Any] = {
            "image_name": self.image_name,
            "image_tag": self.image_tag,
            "gpu": self.gpus,
        }
        if self.pvc_size:
            nim["pvc_size"] = self.pvc_size
        if self.additional_envs:
            nim["additional_envs"] = dict(self.additional_envs)
        return {"model": self.model, "nim_deployment": nim}


class DeploymentFailed(RemoteCallError):
    """DMS reports the deployment ``failed`` (the reason is DMS's own)."""


class Deployments:
    """Create, find, await and delete model deployments."""

    def __init__(self, conn: NemoConnection) -> None:
        self.conn = conn

    async def get(self, name: str) -> Any:
        """The deployment ``name``, or None."""
        conn = self.conn
        return await conn.find(
            f"DMS deployment lookup ({conn.namespace}/{name})",
            lambda: conn.sdk.deployment.model_deployments.retrieve(name, namespace=conn.namespace),
        )

    async def ensure(self, spec: DeploymentSpec) -> tuple[Any, bool]:
        """Re-attach to the deployment ``spec.name``, or create it: ``(deployment, created)``."""
        conn = self.conn
        await conn.ensure_namespace()
        deployment, created = await conn.ensure(
            f"DMS deployment create ({conn.namespace}/{spec.name})",
            lambda: self.get(spec.name),
            lambda: conn.sdk.deployment.model_deployments.create(
                name=spec.name, namespace=conn.namespace, config=spec.config()
            ),
        )
        if not created:
            models = list(getattr(deployment, "models", None) or [])
            if models and spec.model not in models:
                raise RemoteCallError(
                    f"DMS deployment {conn.namespace}/{spec.name} exists but serves "
                    f"{', '.join(models)}, not {spec.model}: delete it or rename the model",
                    retryable=False,
                )
            log.info("re-attached to DMS deployment %s/%s", conn.namespace, spec.name)
        return deployment, created

    async def wait_ready(
        self,
        spec: DeploymentSpec,
        *,
        deadline: float,
        poll_s: float,
        on_status: Callable[[dict[str, Any]], None],
    ) -> None:
        """Poll until DMS says ``ready`` and the NIM lists the model (``deadline`` monotonic).

        ``failed`` raises :class:`DeploymentFailed` at once, not retryable: a new attempt would
        re-attach to the same failed deployment; it has to be deleted (teardown does that) and
        the cause fixed (image, tag, GPUs, PVC). A status outside DMS's list is logged once and
        waited on. Running past ``deadline`` raises a non-retryable RemoteCallError.
        """
        conn = self.conn
        where = f"{conn.namespace}/{spec.name}"
        unknown: set[str] = set()
        started = time.monotonic()
        while True:
            deployment = await self.get(spec.name)
            if deployment is None:
                raise RemoteCallError(
                    f"DMS deployment {where} disappeared while waiting for it (deleted by "
                    "someone else?)",
                    retryable=True,
                )
            details = getattr(deployment, "status_details", None)
            status = str(getattr(details, "status", None) or "unknown")
            reason = getattr(details, "description", None) or ""
            on_status(
                {
                    "stage": "deploying",
                    "deployment": where,
                    "status": status,
                    "waited_s": round(time.monotonic() - started, 1),
                }
            )
            if status == "ready":
                break
            if status == "failed":
                raise DeploymentFailed(
                    f"DMS deployment {where} of {spec.model} failed: {reason or 'no reason given'}",
                    retryable=False,
                )
            if status not in WAITING and status not in unknown:
                unknown.add(status)
                log.warning("DMS deployment %s: unknown status %r (waiting on)", where, status)
            if time.monotonic() >= deadline:
                raise RemoteCallError(
                    f"DMS deployment {where} of {spec.model} was not ready within the deploy "
                    f"timeout (last status {status}{': ' + reason if reason else ''})",
                    retryable=False,
                )
            await asyncio.sleep(poll_s)
        await conn.wait_until_served(
            spec.model,
            deadline=deadline,
            poll_s=poll_s,
            on_wait=lambda: on_status({"stage": "model sync", "deployment": where}),
            what=f"DMS deployment {where}",
        )

    async def delete(self, name: str) -> bool:
        """Delete deployment ``name``; False when it was already gone (404 = done)."""
        conn = self.conn
        return await conn.delete(
            f"DMS deployment delete ({conn.namespace}/{name})",
            lambda: conn.sdk.deployment.model_deployments.delete(name, namespace=conn.namespace),
        )
