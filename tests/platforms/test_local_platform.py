"""The local platform with a tiny real Llama: deploy, evaluate, LoRA-customize, resume, teardown."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("peft", reason="needs the `local` extra")

from flywheel.clients.artifacts import ArtifactStore
from flywheel.config import Candidate, RunConfig
from flywheel.curation.formats import to_eval_record, to_training_line
from flywheel.errors import ConfigError
from flywheel.platforms.base import StepContext
from flywheel.platforms.local import LocalPlatform, model_spec
from flywheel.sample_data import generate_customer_service_logs
from flywheel.schemas import (
    CustomizeInput,
    DatasetFormat,
    DeployInput,
    EvalKind,
    EvaluateInput,
    Platform,
    StepStatus,
    TeardownInput,
    WorkloadType,
)
from tests.support.tiny_model import build_tiny_model

RUN = "flywheel-test-run"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"), tools_in_template=True)


@pytest.fixture
def candidate(model_dir: Path) -> Candidate:
    return Candidate(
        name="tiny",
        model=str(model_dir),
        platform=Platform.LOCAL,
        context_length=1024,
        customization_enabled=True,
        options={"device": "cpu", "batch_size": 4, "max_new_tokens": 12},
    )


def run_config(candidate: Candidate, **training: Any) -> RunConfig:
    return RunConfig.model_validate(
        {
            "candidates": [candidate.model_dump()],
            "training_config": {
                "epochs": 1,
                "batch_size": 2,
                "learning_rate": 0.01,
                "max_steps": 6,
                "checkpoint_every_steps": 2,
                **training,
            },
            "lora_config": {"adapter_dim": 4},
            "evaluation": {"checkpoint_every": 4},
        }
    )


@pytest.fixture
def platform(tmp_path: Path) -> LocalPlatform:
    return LocalPlatform(ArtifactStore((tmp_path / "artifacts").as_uri()), tmp_path / "work")


async def datasets(platform: LocalPlatform) -> tuple[Any, Any, Any]:
    records = generate_customer_service_logs(40, seed=2, compact=True)
    tool = WorkloadType.TOOL_CALLING
    evals = [to_eval_record(r) for r in records[:8]]
    lines = [to_training_line(r, tool) for r in records[8:]]
    artifacts = platform.artifacts
    return (
        await artifacts.put_jsonl(evals, DatasetFormat.EVAL),
        await artifacts.put_jsonl(lines[:24], DatasetFormat.TRAINING),
        await artifacts.put_jsonl(lines[24:], DatasetFormat.TRAINING),
    )


async def test_the_whole_candidate_lifecycle(platform: LocalPlatform, candidate: Candidate) -> None:
    config = run_config(candidate)
    eval_ref, train_ref, val_ref = await datasets(platform)
    beats: list[dict[str, Any]] = []
    ctx = StepContext(heartbeat=beats.append)

    deployment = await platform.deploy(
        DeployInput(run_id=RUN, candidate=candidate, config=config), ctx
    )
    assert deployment.platform == Platform.LOCAL and deployment.supports_customization
    assert len(platform.cache().loaded()) == 1

    def evaluate(kind: EvalKind, model: str | None = None) -> EvaluateInput:
        return EvaluateInput(
            run_id=RUN,
            candidate=candidate,
            config=config,
            deployment=deployment,
            kind=kind,
            dataset=eval_ref,
            workload_type=WorkloadType.TOOL_CALLING,
            model=model,
        )

    base = await platform.evaluate(evaluate(EvalKind.BASE), ctx)
    assert base.status == StepStatus.COMPLETED
    assert base.n_total == 8 and base.n_failed == 0  # a random model answers badly, not failing
    assert "function_name_accuracy" in base.metrics

    customization = await platform.customize(
        CustomizeInput(
            run_id=RUN,
            candidate=candidate,
            config=config,
            deployment=deployment,
            train=train_ref,
            val=val_ref,
        ),
        ctx,
    )
    assert customization.status == StepStatus.COMPLETED
    assert customization.steps_completed == 6
    assert customization.train_loss is not None and customization.val_loss is not None
    assert customization.adapter_uri is not None
    assert await platform.artifacts.exists(customization.adapter_uri)
    assert any(beat.get("stage") == "training" and "loss" in beat for beat in beats)

    tuned = await platform.evaluate(evaluate(EvalKind.CUSTOMIZED, customization.model), ctx)
    assert tuned.status == StepStatus.COMPLETED and tuned.n_total == 8
    assert len(platform.cache().loaded()) == 2  # base, and base + adapter

    await platform.teardown(
        TeardownInput(run_id=RUN, candidate=candidate, config=config, deployment=deployment), ctx
    )
    assert platform.cache().loaded() == []
    assert not (platform.work_dir / RUN).exists()
    await platform.teardown(  # idempotent
        TeardownInput(run_id=RUN, candidate=candidate, config=config, deployment=deployment), ctx
    )


async def test_a_retried_customization_resumes_from_its_checkpoint(
    platform: LocalPlatform, candidate: Candidate, tmp_path: Path
) -> None:
    config = run_config(candidate, max_steps=8)
    _, train_ref, val_ref = await datasets(platform)
    request = CustomizeInput(
        run_id=RUN,
        candidate=candidate,
        config=config,
        deployment=await platform.deploy(
            DeployInput(run_id=RUN, candidate=candidate, config=config), StepContext()
        ),
        train=train_ref,
        val=val_ref,
    )
    first = asyncio.create_task(platform.customize(request, StepContext()))
    checkpoint = "runs/flywheel-test-run/tiny/lora/checkpoint"
    for _ in range(600):  # the first attempt dies once a checkpoint reached the artifact store
        if await platform.artifacts.exists(checkpoint):
            break
        await asyncio.sleep(0.02)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first

    # A new worker (empty local work dir) picks the step up from the artifact store.
    retry = LocalPlatform(platform.artifacts, tmp_path / "other-worker")
    beats: list[dict[str, Any]] = []
    result = await retry.customize(request, StepContext(heartbeat=beats.append, attempt=2))
    assert result.status == StepStatus.COMPLETED and result.steps_completed == 8
    assert beats[0]["resumed"] is True
    steps = [beat["step"] for beat in beats if "step" in beat]
    assert steps and steps[0] > 1  # earlier steps were not trained again


def test_candidate_options_are_checked(candidate: Candidate) -> None:
    spec = model_spec(candidate)
    assert (spec.model, spec.device, spec.gguf_file) == (candidate.model, "cpu", None)
    bad = candidate.model_copy(update={"options": {"temprature": 0.1}})
    with pytest.raises(ConfigError, match="unknown local option"):
        model_spec(bad)


async def test_a_missing_model_is_a_clear_deploy_error(
    platform: LocalPlatform, candidate: Candidate, tmp_path: Path
) -> None:
    missing = candidate.model_copy(update={"model": str(tmp_path / "no-such-model")})
    config = run_config(missing)
    with pytest.raises(ConfigError, match="no-such-model"):
        await platform.deploy(
            DeployInput(run_id=RUN, candidate=missing, config=config), StepContext()
        )
