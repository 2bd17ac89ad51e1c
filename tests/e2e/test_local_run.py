"""A whole flywheel run on the local platform: a tiny real Llama evaluated, tuned, re-evaluated.

Real Temporal (time-skipping test server), real stores, real transformers + peft on CPU.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("peft", reason="needs the `local` extra")

from temporalio.testing import WorkflowEnvironment

from flywheel.clients.artifacts import ArtifactStore
from flywheel.config import Platform
from flywheel.platforms.local import LocalPlatform
from flywheel.sample_data import generate_customer_service_logs
from flywheel.schemas import EvalKind, RunStatus, StepStatus
from tests.support.flywheel_env import load_records, running_worker, start_run
from tests.support.tiny_model import build_tiny_model

WORKLOAD = "support-agent"


async def test_local_candidate_runs_base_icl_and_customized(
    time_env: WorkflowEnvironment, settings_for, tmp_path: Path
) -> None:
    model_dir = build_tiny_model(tmp_path / "tiny")
    settings = settings_for(
        "unused",
        candidates=[
            {
                "name": "tiny",
                "model": str(model_dir),
                "platform": "local",
                "context_length": 1024,
                "customization_enabled": True,
                "options": {"device": "cpu", "batch_size": 8, "max_new_tokens": 8},
            }
        ],
        data_split_config={"eval_size": 8, "min_total_records": 20, "limit": 200, "random_seed": 1},
        icl_config={"max_examples": 1, "max_context_length": 1024, "reserved_tokens": 64},
        training_config={
            "epochs": 1,
            "batch_size": 4,
            "learning_rate": 0.01,
            "max_steps": 4,
            "checkpoint_every_steps": 2,
        },
        lora_config={"adapter_dim": 4},
    )
    await load_records(
        settings, generate_customer_service_logs(60, seed=8, workload_id=WORKLOAD, compact=True)
    )
    assert settings.artifact_store_uri is not None
    local = LocalPlatform(ArtifactStore(settings.artifact_store_uri), settings.data_dir / "local")
    async with running_worker(time_env.client, settings, {Platform.LOCAL: local}):
        handle = await start_run(time_env.client, settings, WORKLOAD)
        result = await handle.result()

    assert result.status == RunStatus.COMPLETED, result.error
    (candidate,) = result.candidates
    assert candidate.status == StepStatus.COMPLETED, candidate.error
    assert [e.kind for e in candidate.evals] == [EvalKind.BASE, EvalKind.ICL, EvalKind.CUSTOMIZED]
    assert all(e.status == StepStatus.COMPLETED and e.n_total == 8 for e in candidate.evals)
    assert candidate.customization is not None
    assert candidate.customization.steps_completed == 4
    assert candidate.customization.adapter_uri is not None
    assert local.cache().loaded() == []  # teardown released the models
