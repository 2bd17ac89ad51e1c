"""Telling people about a finished run: the webhook (real HTTP on loopback), MLflow (a local
file-based tracking store), and the assess_run / publish_run activities that use them."""

from __future__ import annotations

import asyncio
import importlib.util
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from flywheel.activities.resources import WorkerResources
from flywheel.activities.results import ResultActivities
from flywheel.clients.artifacts import ArtifactStore
from flywheel.clients.results import open_result_store
from flywheel.clients.tracking import experiment_name, log_run_to_mlflow
from flywheel.clients.webhook import WebhookError, post_webhook
from flywheel.config import MLflowConfig, RunConfig, Settings
from flywheel.schemas import (
    DatasetFormat,
    EvalKind,
    FlywheelRunResult,
    PublishRunInput,
    RunStatus,
)
from tests.report.builders import STARTED, finished_run
from tests.support.webhook_server import WebhookServer

HAS_MLFLOW = importlib.util.find_spec("mlflow") is not None


@pytest.fixture
def hook() -> Any:
    with WebhookServer() as server:
        yield server


# --- the webhook client -------------------------------------------------------------------------


async def test_webhook_posts_json(hook: WebhookServer) -> None:
    status = await post_webhook(hook.url, {"text": "hello", "n": 1})
    assert status == 200
    assert hook.bodies == [{"text": "hello", "n": 1}]


async def test_webhook_retries_throttling_and_server_errors(hook: WebhookServer) -> None:
    hook.fail_next(503, 429)
    assert await post_webhook(hook.url, {"text": "x"}, backoff_s=0.01) == 200
    assert len(hook.paths) == 3 and len(hook.bodies) == 1


async def test_webhook_gives_up_without_saying_where(hook: WebhookServer) -> None:
    hook.fail_next(500, 500)
    with pytest.raises(WebhookError) as failed:
        await post_webhook(hook.url, {"text": "x"}, max_attempts=2, backoff_s=0.01)
    assert str(failed.value) == "the webhook answered HTTP 500 after 2 attempt(s)"
    hook.fail_next(404)
    with pytest.raises(WebhookError) as refused:
        await post_webhook(hook.url, {"text": "x"}, backoff_s=0.01)
    assert str(refused.value) == "the webhook answered HTTP 404"  # not retried
    assert len(hook.paths) == 3
    for error in (failed.value, refused.value):
        assert "secret-token" not in str(error) and "127.0.0.1" not in str(error)


async def test_webhook_unreachable_or_not_http() -> None:
    with pytest.raises(WebhookError) as unreachable:
        await post_webhook("http://127.0.0.1:9/hook/secret", {}, max_attempts=1, timeout_s=2)
    assert "the webhook call failed (ConnectError)" in str(unreachable.value)
    assert "secret" not in str(unreachable.value)
    with pytest.raises(WebhookError, match="must start with http"):
        await post_webhook("ftp://x/secret", {})


# --- the activities -----------------------------------------------------------------------------


def settings_in(tmp_path: Path, **extra: Any) -> Settings:
    return Settings(data_dir=tmp_path / "data", **extra)


async def store_runs(settings: Settings, *runs: FlywheelRunResult) -> None:
    assert settings.result_store_url is not None
    store = open_result_store(settings.result_store_url)
    try:
        for run in runs:
            await store.save_run(run)
    finally:
        await store.aclose()


def with_config(run: FlywheelRunResult, **sections: Any) -> FlywheelRunResult:
    assert run.config is not None
    config = RunConfig.model_validate({**run.config.model_dump(mode="json"), **sections})
    return run.model_copy(update={"config": config})


async def test_assess_run_reads_the_logged_usage_and_the_previous_run(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    artifacts = ArtifactStore(settings.artifact_store_uri or "")
    records = [
        {
            "request": {"messages": [{"role": "user", "content": "hi"}]},
            "response": {
                "model": "big-70b",
                "choices": [{"message": {"content": "x"}}],
                "usage": {"prompt_tokens": 300, "completion_tokens": 30},
            },
        }
        for _ in range(40)
    ]
    eval_ref = await artifacts.put_jsonl(records, DatasetFormat.EVAL)
    previous = finished_run(run_id="previous", small_args_right=10)  # recommended tiny
    current = finished_run(run_id="current", started=STARTED + timedelta(days=1), assess=False)
    assert current.datasets is not None
    current.datasets.eval = eval_ref
    later = finished_run(run_id="later", started=STARTED + timedelta(days=2))
    await store_runs(settings, previous, current, later)

    resources = WorkerResources(settings, platforms={})
    try:
        activities = ResultActivities(resources)
        output = await ActivityEnvironment().run(activities.assess_run, current)
    finally:
        await resources.aclose()
    production = output.assessment.production
    assert production is not None and production.cost_per_1k == pytest.approx(1.35)
    assert production.requests == 40 and production.model == "big-70b"
    rec = output.recommendation
    assert (rec.candidate, rec.kind) == ("small", EvalKind.BASE)
    assert rec.previous_run_id == "previous" and rec.previous_candidate == "tiny"
    assert rec.changed
    assert output.search_attributes == []  # no Temporal client here: nothing to upsert


async def test_publish_run_calls_the_webhook(
    tmp_path: Path, hook: WebhookServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLYWHEEL_TEST_HOOK", hook.url)
    settings = settings_in(tmp_path, temporal={"ui_url": "http://ui.test"})
    run = with_config(finished_run(), notifications={"webhook_url_env": "FLYWHEEL_TEST_HOOK"})
    await store_runs(settings, run)
    resources = WorkerResources(settings, platforms={})
    try:
        activities = ResultActivities(resources)
        output = await ActivityEnvironment().run(
            activities.publish_run, PublishRunInput(run_id=run.run_id)
        )
        missing = await ActivityEnvironment().run(
            activities.publish_run, PublishRunInput(run_id="no-such-run")
        )
    finally:
        await resources.aclose()
    assert output.webhook == "sent (completed, HTTP 200)" and output.mlflow is None
    (body,) = hook.bodies
    assert body["event"] == "completed" and body["run_id"] == run.run_id
    assert "Recommendation: small (base" in body["text"]
    assert body["link"] == f"http://ui.test/namespaces/default/workflows/{run.run_id}"
    assert missing.webhook == "not sent: the run is not stored"


async def test_publish_run_never_fails_for_the_webhook(
    tmp_path: Path, hook: WebhookServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_in(tmp_path)
    quiet = with_config(
        finished_run(run_id="quiet"),
        notifications={"webhook_url_env": "FLYWHEEL_TEST_HOOK", "events": ["failed"]},
    )
    unset = with_config(
        finished_run(run_id="unset"), notifications={"webhook_url_env": "FLYWHEEL_UNSET_HOOK"}
    )
    broken = with_config(
        finished_run(run_id="broken"),
        notifications={"webhook_url_env": "FLYWHEEL_TEST_HOOK", "max_attempts": 2},
    )
    off = finished_run(run_id="off")
    await store_runs(settings, quiet, unset, broken, off)
    monkeypatch.setenv("FLYWHEEL_TEST_HOOK", hook.url)
    monkeypatch.delenv("FLYWHEEL_UNSET_HOOK", raising=False)
    hook.fail_next(500, 500)
    resources = WorkerResources(settings, platforms={})
    try:
        activities = ResultActivities(resources)

        async def publish(run_id: str) -> Any:
            return await ActivityEnvironment().run(
                activities.publish_run, PublishRunInput(run_id=run_id)
            )

        outcomes = {name: await publish(name) for name in ("quiet", "unset", "broken", "off")}
    finally:
        await resources.aclose()
    assert outcomes["quiet"].webhook == "skipped: completed is not in notifications.events"
    assert outcomes["unset"].webhook == "not sent: $FLYWHEEL_UNSET_HOOK is not set on the worker"
    assert outcomes["broken"].webhook == (
        "not sent: the webhook answered HTTP 500 after 2 attempt(s)"
    )
    assert outcomes["off"].webhook is None
    assert hook.bodies == []


# --- MLflow -------------------------------------------------------------------------------------


@pytest.mark.skipif(not HAS_MLFLOW, reason="mlflow is not installed (pip install mlflow-skinny)")
async def test_mlflow_logs_every_evaluation_to_a_file_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks for the opt-in
    tracking = (tmp_path / "mlruns").as_uri()
    settings = settings_in(tmp_path)
    run = with_config(
        finished_run(),
        mlflow_config={
            "enabled": True,
            "tracking_uri": tracking,
            "artifact_location": (tmp_path / "mlartifacts").as_uri(),
        },
    )
    await store_runs(settings, run)
    resources = WorkerResources(settings, platforms={})
    try:
        activities = ResultActivities(resources)
        first = await ActivityEnvironment().run(
            activities.publish_run, PublishRunInput(run_id=run.run_id)
        )
        again = await ActivityEnvironment().run(
            activities.publish_run, PublishRunInput(run_id=run.run_id)
        )
    finally:
        await resources.aclose()
    assert first.webhook is None
    assert first.mlflow is not None and first.mlflow.startswith(f"{tracking}/#/experiments/")
    assert again.mlflow == first.mlflow

    client = MlflowClient(tracking_uri=tracking)
    experiment = client.get_experiment_by_name(f"data-flywheel-{run.run_id}")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 4  # one MLflow run per evaluation, also after a retry
    # Named like the blueprint's: {model with / as _}_{eval kind} (both candidates' base
    # evaluations ran a model named model-base here; the flywheel.eval tag tells them apart).
    assert {r.info.run_name for r in runs} == {
        "model-base_base",
        "model-icl_icl",
        "model-customized_customized",
    }
    assert {r.data.tags["flywheel.eval"] for r in runs} == {
        "small/base",
        "small/icl",
        "tiny/base",
        "tiny/customized",
    }
    small_base = next(r for r in runs if r.data.tags["flywheel.eval"] == "small/base")
    metrics = small_base.data.metrics
    assert metrics["mean_function_name_and_args_accuracy"] == 1.0
    assert metrics["total_evaluations"] == 40
    assert 0.9 < metrics["function_name_and_args_accuracy_ci_low"] < 1.0
    assert metrics["cost_per_1k"] == pytest.approx(0.04)
    params = small_base.data.params
    assert params["flywheel_run_id"] == run.run_id and params["eval_type"] == "base"
    assert params["experiment_name"] == experiment_name(run.config.mlflow_config, run.run_id)
    assert small_base.data.tags["flywheel.recommended"] == "true"


@pytest.mark.skipif(HAS_MLFLOW, reason="mlflow is installed")
async def test_without_mlflow_nothing_is_logged(tmp_path: Path) -> None:
    run = finished_run()
    with pytest.raises(Exception, match="mlflow is not installed"):
        await asyncio.to_thread(log_run_to_mlflow, run, MLflowConfig(enabled=True))


async def test_mlflow_failure_is_reported_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_in(tmp_path)
    run = with_config(
        finished_run(),
        mlflow_config={"enabled": True, "tracking_uri": "unknown-scheme://nowhere"},
    )
    run = run.model_copy(update={"status": RunStatus.FAILED})
    await store_runs(settings, run)
    resources = WorkerResources(settings, platforms={})
    try:
        activities = ResultActivities(resources)
        outcome = await ActivityEnvironment().run(
            activities.publish_run, PublishRunInput(run_id=run.run_id)
        )
    finally:
        await resources.aclose()
    assert outcome.mlflow is not None and outcome.mlflow.startswith("not logged: ")
