"""Resolve a run's effective configuration on the worker (its file + env + the run's overrides)."""

from __future__ import annotations

from temporalio import activity

from flywheel.activities import names
from flywheel.activities.errors import translate_errors
from flywheel.activities.resources import WorkerResources
from flywheel.errors import ConfigError
from flywheel.schemas import ResolveConfigInput, RunConfig


class ConfigActivities:
    def __init__(self, resources: WorkerResources) -> None:
        self._settings = resources.settings

    @activity.defn(name=names.RESOLVE_RUN_CONFIG)
    @translate_errors
    async def resolve_run_config(self, request: ResolveConfigInput) -> RunConfig:
        """Merge the run's overrides onto the worker's settings, validate, pick the candidates."""
        config = self._settings.run_config(request.config_overrides)
        if request.candidates is not None:
            known = {c.name for c in config.candidates}
            missing = [n for n in request.candidates if n not in known]
            if missing:
                raise ConfigError(
                    f"unknown candidate(s): {', '.join(missing)} "
                    f"(configured: {', '.join(sorted(known)) or 'none'})"
                )
            config = config.model_copy(
                update={
                    "candidates": [c for c in config.candidates if c.name in request.candidates]
                }
            )
        if not config.candidates:
            raise ConfigError(
                "no candidates to evaluate: add `candidates:` (or the blueprint's `nims:`) to the "
                "configuration, or start the run with --endpoint URL --model NAME"
            )
        return config
