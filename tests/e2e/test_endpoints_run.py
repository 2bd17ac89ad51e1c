"""A whole run on the Temporal dev server: real activities, real stores, real HTTP to a scripted
OpenAI-compatible server playing the candidate."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.testing import WorkflowEnvironment

from flywheel.api import FlywheelClient
from flywheel.clients.artifacts import ArtifactStore
from flywheel.sample_data import generate_customer_service_logs
from flywheel.schemas import EvalKind, RunStatus, StepStatus
from tests.support.flywheel_env import load_records, running_worker
from tests.support.openai_server import ScriptedOpenAIServer, token_count
from tests.support.scripts import build_script, expected_accuracy, last_user_message

WORKLOAD = "support-agent"
MAX_PAYLOAD = 64 * 1024

pytestmark = pytest.mark.slow


@pytest.fixture
def logs() -> list[dict]:
    return generate_customer_service_logs(160, seed=11, workload_id=WORKLOAD, client_id="app-1")


async def test_full_run_scores_known_answers(
    dev_env: WorkflowEnvironment, settings_for, logs: list[dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    script, categories = build_script(logs)
    with ScriptedOpenAIServer(script) as server:
        settings = settings_for(
            "unused",
            candidates=[
                {
                    "name": "small",
                    "model": "small-1b",
                    "base_url": server.base_url,
                    "api_key_env": "FLYWHEEL_TEST_KEY",
                },
            ],
            evaluation={"concurrency": 4, "checkpoint_every": 5, "retry_backoff_s": 0.05},
        )
        await load_records(settings, logs)
        artifacts = ArtifactStore(settings.artifact_store_uri)
        fw = FlywheelClient(dev_env.client, settings)
        monkeypatch.setenv("FLYWHEEL_TEST_KEY", "sk-test-secret-value")
        server.required_api_key = "sk-test-secret-value"
        async with running_worker(dev_env.client, settings):
            run_id = await fw.start_run(WORKLOAD, "app-1")
            result = await fw.wait(run_id)

        assert result.status == RunStatus.COMPLETED
        assert result.run_id == run_id and run_id.startswith(f"flywheel-{WORKLOAD}-")
        assert result.datasets is not None
        eval_records = await artifacts.read_dataset(result.datasets.eval)
        assert len(eval_records) == 20

        (candidate,) = result.candidates
        assert candidate.status == StepStatus.COMPLETED
        base = candidate.eval(EvalKind.BASE)
        assert base is not None and base.status == StepStatus.COMPLETED
        name_acc, args_acc = expected_accuracy(eval_records, categories)
        assert base.metrics["function_name_accuracy"] == pytest.approx(name_acc)
        assert base.metrics["function_name_and_args_accuracy"] == pytest.approx(args_acc)
        assert 0 < args_acc < name_acc < 1  # the script really mixes right and wrong answers
        assert (base.n_total, base.n_scored, base.n_failed) == (20, 20, 0)
        assert base.latency_p50_s is not None and base.latency_p95_s >= base.latency_p50_s
        expected_in = sum(
            token_count(m["content"])
            for r in eval_records
            for m in r["request"]["messages"]
            if isinstance(m.get("content"), str)
        )
        assert base.tokens_in == expected_in

        icl = candidate.eval(EvalKind.ICL)
        assert icl is not None and icl.status == StepStatus.COMPLETED
        assert icl.tokens_in > base.tokens_in  # few-shot examples make prompts longer
        customized = candidate.eval(EvalKind.CUSTOMIZED)
        assert customized is not None and customized.status == StepStatus.SKIPPED
        assert "not supported by the endpoints platform" in (customized.skipped_reason or "")
        assert candidate.customization is not None
        assert candidate.customization.status == StepStatus.SKIPPED

        # Every eval prompt went to the candidate, as the configured model, with the key.
        eval_keys = {last_user_message(r) for r in eval_records}
        chat = [r for r in server.requests if r.path.endswith("/chat/completions")]
        assert {r.key for r in chat} == eval_keys
        assert {r.model for r in chat} == {"small-1b"}
        assert len(chat) == 40  # base + ICL, nothing replayed twice

        # Stored results equal the workflow's, and the run is listed by its WorkloadId.
        stored = await fw.results(run_id)
        assert stored.model_dump(exclude={"revision"}) == result.model_dump(exclude={"revision"})
        listed = []
        for _ in range(100):
            listed = await fw.list_runs(workload_id=WORKLOAD)
            if listed:
                break
            await asyncio.sleep(0.1)
        assert [r.run_id for r in listed] == [run_id]
        assert listed[0].status == "completed"

        # No payload in the run's (or a candidate's) history exceeds 64 KiB; no secret in it.
        for workflow_id in (run_id, f"{run_id}/small"):
            handle = dev_env.client.get_workflow_handle(workflow_id)
            history = await handle.fetch_history()
            raw = history.to_json()
            assert "sk-test-secret-value" not in raw
            for event in history.events:
                for payload in _payloads(event):
                    assert len(payload.data) <= MAX_PAYLOAD, (workflow_id, event.event_type)
        await fw.aclose()


async def test_failed_requests_are_counted_not_scored(
    dev_env: WorkflowEnvironment, settings_for, logs: list[dict]
) -> None:
    script, categories = build_script(logs)
    with ScriptedOpenAIServer(script) as server:
        settings = settings_for(
            "unused",
            candidates=[{"name": "small", "model": "small-1b", "base_url": server.base_url}],
            icl_config={"max_examples": 0},
            evaluation={"concurrency": 2, "max_retries": 2, "retry_backoff_s": 0.01},
        )
        await load_records(settings, logs)
        for key in categories:
            server.fail_key(key, n=1, status=503)  # every prompt fails once: retried
        broken = last_user_message(logs[0])
        server.fail_key(broken, n=99, status=400, message="context length exceeded")
        fw = FlywheelClient(dev_env.client, settings)
        async with running_worker(dev_env.client, settings):
            result = await fw.wait(await fw.start_run(WORKLOAD))
        artifacts = ArtifactStore(settings.artifact_store_uri)
        assert result.datasets is not None
        eval_records = await artifacts.read_dataset(result.datasets.eval)
        base = result.candidates[0].eval(EvalKind.BASE)
        assert base is not None
        in_eval = broken in {last_user_message(r) for r in eval_records}
        assert base.n_failed == (1 if in_eval else 0)
        assert base.n_scored == 20 - base.n_failed
        name_acc, args_acc = expected_accuracy(eval_records, categories, skip={broken})
        assert base.metrics["function_name_accuracy"] == pytest.approx(name_acc)
        assert base.metrics["function_name_and_args_accuracy"] == pytest.approx(args_acc)
        icl = result.candidates[0].eval(EvalKind.ICL)
        assert icl is not None and icl.status == StepStatus.SKIPPED
        await fw.aclose()


def _payloads(event):
    """Every Payload inside a history event's attributes (inputs, results, details…)."""
    from temporalio.api.common.v1 import Payload

    found = []

    def walk(message) -> None:
        if isinstance(message, Payload):
            found.append(message)
            return
        if not hasattr(message, "ListFields"):
            return
        for _field, value in message.ListFields():
            if hasattr(value, "ListFields"):
                walk(value)
            elif isinstance(value, list | tuple) or type(value).__name__.startswith("Repeated"):
                for item in value:
                    walk(item)
            elif type(value).__name__.endswith("Map") or isinstance(value, dict):
                for item in value.values():
                    walk(item)

    walk(event)
    return found
