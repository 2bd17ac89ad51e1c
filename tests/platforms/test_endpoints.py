"""The endpoints platform: no-op deploy/teardown, refused customization, evaluation end to end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flywheel.clients.artifacts import ArtifactStore
from flywheel.config import Candidate, EvaluationConfig, Platform, RunConfig
from flywheel.errors import ConfigError, UnsupportedOperation
from flywheel.platforms.base import ModelPlatform, StepContext
from flywheel.platforms.endpoints import UNSUPPORTED_REASON, EndpointsPlatform
from flywheel.platforms.evaluator import EvalCheckpoint, checkpoint_prefix
from flywheel.schemas import (
    CustomizeInput,
    DatasetFormat,
    DatasetRef,
    DeployInput,
    Deployment,
    EvalKind,
    EvaluateInput,
    StepStatus,
    TeardownInput,
    WorkloadType,
)
from tests.platforms.test_evaluator import TOOL_RECORDS, TOOL_SCRIPT
from tests.support.openai_server import ScriptedOpenAIServer

KEY_ENV = "FLYWHEEL_TEST_ENDPOINT_KEY"
KEY = "sk-endpoint-SECRET-42"
RUN_ID = "flywheel-orders-2024-01-01T00:00:00Z"


@pytest.fixture
def server() -> Iterator[ScriptedOpenAIServer]:
    with ScriptedOpenAIServer(TOOL_SCRIPT, required_api_key=KEY) as running:
        yield running


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path.as_uri())


def make_candidate(base_url: str, api_key_env: str | None = KEY_ENV) -> Candidate:
    return Candidate(name="small", model="small-model", base_url=base_url, api_key_env=api_key_env)


def run_config(candidate: Candidate) -> RunConfig:
    evaluation = EvaluationConfig(concurrency=4, retry_backoff_s=0.005, max_retries=1)
    return RunConfig(candidates=[candidate], evaluation=evaluation)


async def deploy(platform: EndpointsPlatform, candidate: Candidate) -> Deployment:
    request = DeployInput(run_id=RUN_ID, candidate=candidate, config=run_config(candidate))
    return await platform.deploy(request, StepContext())


async def eval_input(
    store: ArtifactStore, candidate: Candidate, deployment: Deployment, model: str | None = None
) -> EvaluateInput:
    dataset = await store.put_jsonl(TOOL_RECORDS, DatasetFormat.EVAL)
    return EvaluateInput(
        run_id=RUN_ID,
        candidate=candidate,
        config=run_config(candidate),
        deployment=deployment,
        kind=EvalKind.BASE if model is None else EvalKind.CUSTOMIZED,
        dataset=dataset,
        workload_type=WorkloadType.TOOL_CALLING,
        model=model,
    )


async def test_is_a_model_platform(store: ArtifactStore) -> None:
    platform = EndpointsPlatform(store)
    assert isinstance(platform, ModelPlatform)
    assert platform.name == Platform.ENDPOINTS
    await platform.aclose()


async def test_deploy_and_teardown_are_no_ops(store: ArtifactStore) -> None:
    platform = EndpointsPlatform(store)
    candidate = make_candidate("http://127.0.0.1:9/v1")
    deployment = await deploy(platform, candidate)
    assert deployment == Deployment(
        candidate="small",
        platform=Platform.ENDPOINTS,
        model="small-model",
        base_url="http://127.0.0.1:9/v1",
        supports_customization=False,
        unsupported_reason=UNSUPPORTED_REASON,
    )
    teardown = TeardownInput(
        run_id=RUN_ID, candidate=candidate, config=run_config(candidate), deployment=deployment
    )
    assert await platform.teardown(teardown, StepContext()) is None
    assert await platform.teardown(teardown, StepContext()) is None
    assert await store.list("") == [], "nothing was created anywhere"


async def test_customize_is_unsupported(store: ArtifactStore) -> None:
    platform = EndpointsPlatform(store)
    candidate = make_candidate("http://127.0.0.1:9/v1")
    deployment = await deploy(platform, candidate)
    empty = DatasetRef(uri=store.uri_for("x.jsonl"), sha256="0", n_records=0, format="training")
    request = CustomizeInput(
        run_id=RUN_ID,
        candidate=candidate,
        config=run_config(candidate),
        deployment=deployment,
        train=empty,
        val=empty,
    )
    with pytest.raises(UnsupportedOperation, match="not supported by the endpoints platform"):
        await platform.customize(request, StepContext())


async def test_evaluate_end_to_end(
    server: ScriptedOpenAIServer, store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    platform = EndpointsPlatform(store)
    candidate = make_candidate(server.base_url)
    request = await eval_input(store, candidate, await deploy(platform, candidate))
    heartbeats: list[dict] = []

    result = await platform.evaluate(request, StepContext(heartbeat=heartbeats.append))

    assert result.status == StepStatus.COMPLETED, result.error
    assert result.kind == EvalKind.BASE
    assert result.model == "small-model"
    assert result.metrics["function_name_accuracy"] == pytest.approx(0.7)
    assert result.metrics["function_name_and_args_accuracy"] == pytest.approx(0.6)
    assert result.metrics["tool_label_accuracy"] == pytest.approx(0.7)
    assert sum(row["support"] for row in result.per_tool.values()) == 10
    assert (result.n_total, result.n_scored, result.n_failed) == (10, 10, 0)
    assert heartbeats[-1] == {"done": 10, "total": 10, "failed": 0, "checkpointed": 10}
    assert {r.model for r in server.requests} == {"small-model"}
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in server.requests)
    prefix = checkpoint_prefix(RUN_ID, "small", EvalKind.BASE)
    assert len(await EvalCheckpoint(store, prefix).load()) == 10
    assert KEY not in result.model_dump_json()

    # A retried activity finds every reply checkpointed and asks nothing again.
    server.clear()
    again = await platform.evaluate(request, StepContext())
    assert server.count() == 0
    assert again.metrics == result.metrics
    await platform.aclose()


async def test_evaluate_uses_the_requested_model(
    server: ScriptedOpenAIServer, store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    platform = EndpointsPlatform(store)
    candidate = make_candidate(server.base_url)
    request = await eval_input(store, candidate, await deploy(platform, candidate), "small-ft")
    result = await platform.evaluate(request, StepContext())
    assert result.model == "small-ft"
    assert {r.model for r in server.requests} == {"small-ft"}
    assert await store.exists(checkpoint_prefix(RUN_ID, "small", EvalKind.CUSTOMIZED))


async def test_unset_api_key_env_is_a_config_error(
    server: ScriptedOpenAIServer, store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    platform = EndpointsPlatform(store)
    candidate = make_candidate(server.base_url)
    request = await eval_input(store, candidate, await deploy(platform, candidate))
    with pytest.raises(ConfigError, match=KEY_ENV):
        await platform.evaluate(request, StepContext())
    assert server.count() == 0


async def test_wrong_key_fails_the_eval_without_leaking_it(
    server: ScriptedOpenAIServer, store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "sk-wrong-SECRET-7"
    monkeypatch.setenv(KEY_ENV, wrong)
    platform = EndpointsPlatform(store)
    candidate = make_candidate(server.base_url)
    request = await eval_input(store, candidate, await deploy(platform, candidate))
    result = await platform.evaluate(request, StepContext())
    assert result.status == StepStatus.FAILED
    assert result.n_failed == 10
    assert result.error is not None and "HTTP 401" in result.error
    assert wrong not in result.model_dump_json()
    prefix = checkpoint_prefix(RUN_ID, "small", EvalKind.BASE)
    for path in await store.list(prefix):
        assert wrong.encode() not in await store.read_bytes(path)


async def test_no_api_key_env_sends_no_key(store: ArtifactStore) -> None:
    with ScriptedOpenAIServer(TOOL_SCRIPT) as open_server:
        platform = EndpointsPlatform(store)
        candidate = make_candidate(open_server.base_url, api_key_env=None)
        request = await eval_input(store, candidate, await deploy(platform, candidate))
        result = await platform.evaluate(request, StepContext())
        assert result.status == StepStatus.COMPLETED
        assert all("authorization" not in r.headers for r in open_server.requests)
