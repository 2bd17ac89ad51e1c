"""The ``endpoints`` platform: candidates that are already-running OpenAI-compatible endpoints.

Nothing to deploy or tear down (vLLM, a NIM, Ollama or a hosted API is running already), no
customization; evaluation is the built-in evaluator over HTTP. API keys are read on the worker
from the environment variable the candidate names, so they never enter workflow history.
"""

from __future__ import annotations

from flywheel.clients.artifacts import ArtifactStore
from flywheel.clients.embeddings import EmbedderCache
from flywheel.config import Candidate, read_secret
from flywheel.errors import ConfigError, UnsupportedOperation
from flywheel.platforms.base import StepContext
from flywheel.platforms.evaluator import evaluate_over_http
from flywheel.schemas import (
    CustomizationResult,
    CustomizeInput,
    DeployInput,
    Deployment,
    EvalResult,
    EvaluateInput,
    Platform,
    TeardownInput,
)

UNSUPPORTED_REASON = (
    "customization is not supported by the endpoints platform "
    "(the candidate is an already-running endpoint)"
)


class EndpointsPlatform:
    """:class:`~flywheel.platforms.base.ModelPlatform` for already-running endpoints."""

    name = Platform.ENDPOINTS

    def __init__(self, artifacts: ArtifactStore) -> None:
        self.artifacts = artifacts
        self._embedders = EmbedderCache()

    async def deploy(self, request: DeployInput, ctx: StepContext) -> Deployment:
        """Nothing to start: say where the candidate answers."""
        candidate = request.candidate
        return Deployment(
            candidate=candidate.name,
            platform=Platform.ENDPOINTS,
            model=candidate.model,
            base_url=candidate.base_url,
            supports_customization=False,
            unsupported_reason=UNSUPPORTED_REASON,
        )

    async def customize(self, request: CustomizeInput, ctx: StepContext) -> CustomizationResult:
        """Always refused: an endpoint's weights are not ours to fine-tune."""
        raise UnsupportedOperation(UNSUPPORTED_REASON)

    async def teardown(self, request: TeardownInput, ctx: StepContext) -> None:
        """Nothing was created, so nothing to release."""
        return None

    async def evaluate(self, request: EvaluateInput, ctx: StepContext) -> EvalResult:
        """Replay the eval dataset against the endpoint with the built-in evaluator.

        With ``llm_judge_config`` set, generic workloads are also rated by the judge.
        """
        candidate = request.candidate
        base_url = request.deployment.base_url or candidate.base_url
        if not base_url:
            raise ConfigError(f"candidate {candidate.name!r} has no base_url to evaluate against")
        return await evaluate_over_http(
            self.artifacts,
            request,
            ctx,
            base_url=base_url,
            api_key=_api_key(candidate),
            embedders=self._embedders,
        )

    async def aclose(self) -> None:
        """Release in-process embedding models (each evaluation owns its HTTP client)."""
        self._embedders.clear()


def _api_key(candidate: Candidate) -> str | None:
    """The candidate's API key from the worker's environment; a clear error when it is unset."""
    if not candidate.api_key_env:
        return None
    key = read_secret(candidate.api_key_env)
    if key is None:
        raise ConfigError(
            f"candidate {candidate.name!r} names api_key_env {candidate.api_key_env}, but that "
            "environment variable is not set on the worker: set it where the worker runs"
        )
    return key
