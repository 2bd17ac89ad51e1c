"""Model-ops backends behind one protocol (see :mod:`flywheel.platforms.base`).

``endpoints``: already-running OpenAI-compatible endpoints. ``local`` (transformers + peft on the
worker) and ``nemo`` (NeMo Microservices) plug in here as they land.
"""

from __future__ import annotations

from flywheel.clients.artifacts import ArtifactStore
from flywheel.config import Platform, Settings
from flywheel.platforms.base import ModelPlatform, StepContext

__all__ = ["ModelPlatform", "StepContext", "build_platforms"]


def build_platforms(settings: Settings, artifacts: ArtifactStore) -> dict[Platform, ModelPlatform]:
    """The platforms this worker serves, keyed by name."""
    from flywheel.platforms.endpoints import EndpointsPlatform

    return {Platform.ENDPOINTS: EndpointsPlatform(artifacts)}
