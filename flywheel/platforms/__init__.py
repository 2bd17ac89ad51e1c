"""Model-ops backends behind one protocol (see :mod:`flywheel.platforms.base`).

``endpoints``: already-running OpenAI-compatible endpoints. ``local``: transformers + peft on the
worker's own CPU/GPU (needs the ``local`` extra when used). ``nemo``: NeMo Microservices, served
when the settings have ``nmp_config`` (each run's own ``nmp_config`` is used for its steps).
"""

from __future__ import annotations

from flywheel.clients.artifacts import ArtifactStore
from flywheel.config import Platform, Settings
from flywheel.platforms.base import ModelPlatform, StepContext

__all__ = ["ModelPlatform", "StepContext", "build_platforms"]


def build_platforms(settings: Settings, artifacts: ArtifactStore) -> dict[Platform, ModelPlatform]:
    """The platforms this worker serves, keyed by name."""
    from flywheel.platforms.endpoints import EndpointsPlatform
    from flywheel.platforms.local import LocalPlatform

    platforms: dict[Platform, ModelPlatform] = {
        Platform.ENDPOINTS: EndpointsPlatform(artifacts),
        Platform.LOCAL: LocalPlatform(artifacts, settings.data_dir / "local"),
    }
    if settings.nmp_config is not None:
        from flywheel.platforms.nemo import NemoPlatform

        platforms[Platform.NEMO] = NemoPlatform(artifacts)
    return platforms
