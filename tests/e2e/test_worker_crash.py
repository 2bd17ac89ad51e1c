"""kill -9 of the worker process mid-evaluation or mid-training: a new worker finishes the run,
the step resumes from its checkpoint, and the results are those of an uninterrupted run."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import yaml
from temporalio.testing import WorkflowEnvironment

from flywheel.api import FlywheelClient
from flywheel.clients.artifacts import ArtifactStore, safe_path_part
from flywheel.sample_data import generate_customer_service_logs
from flywheel.schemas import EvalKind, RunStatus, StepStatus
from tests.support.flywheel_env import activity_attempts, load_records
from tests.support.openai_server import ScriptedOpenAIServer
from tests.support.processes import start_worker, stop_process
from tests.support.scripts import build_script, expected_accuracy, last_user_message

pytestmark = pytest.mark.slow

WORKLOAD = "crash-test"
EVAL_SIZE = 40
CONCURRENCY = 2
CHECKPOINT_EVERY = 4


async def test_worker_killed_mid_evaluation_resumes_from_checkpoint(
    dev_env: WorkflowEnvironment, settings_for, tmp_path: Path
) -> None:
    logs = generate_customer_service_logs(200, seed=5, workload_id=WORKLOAD)
    script, categories = build_script(logs)
    with ScriptedOpenAIServer(script, delay_s=0.1) as server:
        overrides = {
            "candidates": [{"name": "small", "model": "small-1b", "base_url": server.base_url}],
            "data_split_config": {"eval_size": EVAL_SIZE},
            "icl_config": {"max_examples": 0},
            "evaluation": {"concurrency": CONCURRENCY, "checkpoint_every": CHECKPOINT_EVERY},
            "timeouts": {"heartbeat_timeout_s": 2.0},
        }
        settings = settings_for(dev_env.client.service_client.config.target_host, **overrides)
        await load_records(settings, logs)
        config = tmp_path / "flywheel.yaml"
        config.write_text(yaml.safe_dump(settings.model_dump(mode="json", exclude_none=True)))

        fw = FlywheelClient(dev_env.client, settings)
        first = start_worker(config, tmp_path / "worker-1.log")
        second: subprocess.Popen[bytes] | None = None
        try:
            run_id = await fw.start_run(WORKLOAD)
            for _ in range(600):
                if server.count(status=200) >= 14:
                    break
                await asyncio.sleep(0.02)
            assert server.count(status=200) >= 14, (tmp_path / "worker-1.log").read_text()
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
            served_before_kill = server.keys()

            second = start_worker(config, tmp_path / "worker-2.log")
            result = await asyncio.wait_for(fw.wait(run_id), timeout=120)
        finally:
            stop_process(first, 15)
            if second is not None:
                stop_process(second, 15)
            await fw.aclose()

    assert result.status == RunStatus.COMPLETED, result.error
    base = result.candidates[0].eval(EvalKind.BASE)
    assert base is not None and base.status == StepStatus.COMPLETED
    assert (base.n_total, base.n_scored, base.n_failed) == (EVAL_SIZE, EVAL_SIZE, 0)

    # Same results as an uninterrupted run: the scores the script must produce.
    assert result.datasets is not None
    eval_records = await ArtifactStore(settings.artifact_store_uri).read_dataset(
        result.datasets.eval
    )
    name_acc, args_acc = expected_accuracy(eval_records, categories)
    assert base.metrics["function_name_accuracy"] == pytest.approx(name_acc)
    assert base.metrics["function_name_and_args_accuracy"] == pytest.approx(args_acc)

    # Resumed, not restarted: every eval prompt was answered, and only the replies that were
    # not yet checkpointed when the worker died were requested a second time.
    requests = Counter(server.keys())
    assert set(requests) == {last_user_message(r) for r in eval_records}
    repeated = [key for key, count in requests.items() if count > 1]
    assert all(count <= 2 for count in requests.values())
    assert len(repeated) <= CHECKPOINT_EVERY + CONCURRENCY
    kept = len(served_before_kill) - len(repeated)
    assert kept >= len(served_before_kill) - CHECKPOINT_EVERY - CONCURRENCY >= 8
    assert sum(requests.values()) < 2 * EVAL_SIZE

    child = dev_env.client.get_workflow_handle(f"{run_id}/small")
    assert await activity_attempts(child, "evaluate_candidate") in ([1, 2], [2])


async def test_worker_killed_mid_training_resumes_from_the_lora_checkpoint(
    dev_env: WorkflowEnvironment, settings_for, tmp_path: Path
) -> None:
    pytest.importorskip("peft", reason="needs the `local` extra")
    from tests.support.tiny_model import build_tiny_model

    steps, every = 300, 20
    model_dir = build_tiny_model(tmp_path / "tiny")
    overrides = {
        "candidates": [
            {
                "name": "tiny",
                "model": str(model_dir),
                "platform": "local",
                "context_length": 1024,
                "customization_enabled": True,
                "options": {"device": "cpu", "batch_size": 8, "max_new_tokens": 4},
            }
        ],
        "data_split_config": {"eval_size": 4, "min_total_records": 20, "limit": 200},
        "icl_config": {"max_examples": 0},
        "training_config": {
            "epochs": 100,
            "batch_size": 2,
            "learning_rate": 0.001,
            "max_steps": steps,
            "checkpoint_every_steps": every,
        },
        "lora_config": {"adapter_dim": 4},
        "timeouts": {"heartbeat_timeout_s": 5.0},
    }
    settings = settings_for(dev_env.client.service_client.config.target_host, **overrides)
    await load_records(
        settings, generate_customer_service_logs(60, seed=8, workload_id=WORKLOAD, compact=True)
    )
    config = tmp_path / "flywheel.yaml"
    config.write_text(yaml.safe_dump(settings.model_dump(mode="json", exclude_none=True)))
    assert settings.artifact_store_uri is not None
    artifacts = ArtifactStore(settings.artifact_store_uri)

    fw = FlywheelClient(dev_env.client, settings)
    first = start_worker(config, tmp_path / "worker-1.log")
    second: subprocess.Popen[bytes] | None = None
    try:
        run_id = await fw.start_run(WORKLOAD)
        checkpoint = f"runs/{safe_path_part(run_id)}/tiny/lora/checkpoint"
        for _ in range(3000):  # the first checkpoint is in the artifact store: kill the worker
            if await artifacts.exists(checkpoint):
                break
            await asyncio.sleep(0.02)
        assert await artifacts.exists(checkpoint), (tmp_path / "worker-1.log").read_text()
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)

        second = start_worker(config, tmp_path / "worker-2.log")
        result = await asyncio.wait_for(fw.wait(run_id), timeout=240)
    finally:
        stop_process(first, 15)
        if second is not None:
            stop_process(second, 15)
        await fw.aclose()

    assert result.status == RunStatus.COMPLETED, result.error
    (candidate,) = result.candidates
    tuned = candidate.customization
    assert tuned is not None and tuned.status == StepStatus.COMPLETED, candidate.error
    assert tuned.steps_completed == steps, "the step count is the same as an uninterrupted run's"
    assert tuned.resumed_from_step is not None, "resumed from a checkpoint, not restarted"
    assert every <= tuned.resumed_from_step < steps
    assert tuned.resumed_from_step % every == 0
    customized = candidate.eval(EvalKind.CUSTOMIZED)
    assert customized is not None and customized.status == StepStatus.COMPLETED
    child = dev_env.client.get_workflow_handle(f"{run_id}/tiny")
    assert (await activity_attempts(child, "customize_candidate"))[-1] >= 2  # retried
