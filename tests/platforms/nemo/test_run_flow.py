"""A whole candidate on the nemo platform — datasets, deployment, base/ICL/customized evaluations,
customization, teardown — then ``delete_run``; once cleanly and once with 20% of NMP calls
failing with 5xx (the steps still complete: reads and deletes are retried, creates re-checked)."""

from __future__ import annotations

import asyncio

import pytest

from flywheel.clients.nemo.names import RunNames
from flywheel.config import RunConfig
from flywheel.platforms.nemo import NemoPlatform
from flywheel.schemas import (
    CustomizationResult,
    CustomizeInput,
    DatasetFormat,
    EvalKind,
    StepStatus,
    TeardownInput,
)
from flywheel.scoring.metrics import FUNCTION_NAME_AND_ARGS_ACCURACY
from tests.platforms.nemo.support import (
    MODEL,
    NS,
    RUN_ID,
    Steps,
    deploy,
    eval_input,
    make_config,
    put,
    train_line,
)
from tests.support.nmp import wait_until
from tests.support.nmp_emulator import NMPEmulator, replay_tool_calling_scorer

NAMES = RunNames(RUN_ID)


async def run_candidate(
    platform: NemoPlatform, config: RunConfig
) -> tuple[dict[EvalKind, float], CustomizationResult]:
    """Deploy, evaluate base and ICL, customize, evaluate the customized model, tear down."""
    candidate = config.candidates[0]
    deployment = await deploy(platform, config)
    scores: dict[EvalKind, float] = {}
    for kind in (EvalKind.BASE, EvalKind.ICL):
        request = await eval_input(platform.artifacts, config, deployment, kind=kind)
        result = await platform.evaluate(request, Steps().ctx)
        assert result.status == StepStatus.COMPLETED, result.error
        scores[kind] = result.metrics[FUNCTION_NAME_AND_ARGS_ACCURACY]
    train = await put(platform.artifacts, [train_line(i) for i in range(8)], DatasetFormat.TRAINING)
    val = await put(platform.artifacts, [train_line(i) for i in range(2)], DatasetFormat.TRAINING)
    customized = await platform.customize(
        CustomizeInput(
            run_id=RUN_ID,
            candidate=candidate,
            config=config,
            deployment=deployment,
            train=train,
            val=val,
        ),
        Steps().ctx,
    )
    request = await eval_input(
        platform.artifacts, config, deployment, kind=EvalKind.CUSTOMIZED, model=customized.model
    )
    result = await platform.evaluate(request, Steps().ctx)
    assert result.status == StepStatus.COMPLETED and result.model == customized.model
    scores[EvalKind.CUSTOMIZED] = result.metrics[FUNCTION_NAME_AND_ARGS_ACCURACY]
    teardown = TeardownInput(
        run_id=RUN_ID,
        candidate=candidate,
        config=config,
        deployment=deployment,
        customized_model=customized.model,
    )
    await platform.teardown(teardown, Steps().ctx)
    return scores, customized


@pytest.fixture
def tuned(emulator: NMPEmulator) -> NMPEmulator:
    """The customized model answers like production; the base model gets order 7 wrong."""
    base = emulator.responder

    def responder(body: dict) -> dict:
        reply = base(body)
        if body["model"] != MODEL:
            i = body["messages"][-1]["content"].split()[-1]
            return {"tool_calls": [{"name": "get_order", "arguments": {"order_id": i}}]}
        return reply

    emulator.responder = responder
    emulator.scorer = replay_tool_calling_scorer
    return emulator


@pytest.mark.parametrize("evaluator", ["builtin", "nemo"])
async def test_a_candidate_end_to_end_then_delete_run(
    platform: NemoPlatform, tuned: NMPEmulator, evaluator: str
) -> None:
    config = make_config(tuned, nmp_changes={"evaluator": evaluator})
    scores, customized = await run_candidate(platform, config)
    assert scores[EvalKind.BASE] == pytest.approx(0.8)
    assert scores[EvalKind.CUSTOMIZED] == pytest.approx(1.0)
    assert tuned.live_deployments() == []
    assert tuned.customization_jobs_created() == 1
    assert customized.model in tuned.models()
    if evaluator == "nemo":
        assert tuned.evaluation_jobs_created() == 3
        assert sorted(tuned.repos()) == sorted(
            f"{NS}/{NAMES.dataset(part)}" for part in ("eval", "icl-8192", "train")
        )
    else:
        assert tuned.evaluation_jobs_created() == 0
        assert tuned.repos() == [f"{NS}/{NAMES.dataset('train')}"]

    lines = await platform.delete_run(RUN_ID, config)
    assert f"deleted customized model {customized.model}" in lines
    assert f"deleted Entity Store dataset {NS}/{NAMES.dataset('train')}" in lines
    assert sum(line.startswith("deleted NeMo Evaluator job") for line in lines) == (
        3 if evaluator == "nemo" else 0
    )
    assert tuned.repos() == [] and tuned.datasets() == [] and tuned.models() == []
    assert tuned.evaluation_jobs() == [] and tuned.active_jobs() == []
    assert await platform.delete_run(RUN_ID, config) == []  # idempotent


async def test_delete_run_leaves_other_runs_alone(
    platform: NemoPlatform, tuned: NMPEmulator
) -> None:
    config = make_config(tuned, nmp_changes={"evaluator": "nemo"})
    await run_candidate(platform, config)
    other = "flywheel-orders-20240102T000000Z"
    lines = await platform.delete_run(other, config)
    assert lines == []
    assert len(tuned.repos()) == 3 and len(tuned.evaluation_jobs()) == 3


async def test_delete_run_cancels_what_still_runs(
    platform: NemoPlatform, tuned: NMPEmulator
) -> None:
    """A run deleted while its jobs run (a crashed worker's leftovers): they are cancelled."""
    tuned.set_durations(customization=30.0)
    config = make_config(tuned)
    deployment = await deploy(platform, config)
    train = await put(platform.artifacts, [train_line(i) for i in range(8)], DatasetFormat.TRAINING)
    request = CustomizeInput(
        run_id=RUN_ID,
        candidate=config.candidates[0],
        config=config,
        deployment=deployment,
        train=train,
        val=train,
    )
    steps = Steps(final_cancel=False)
    task = asyncio.create_task(platform.customize(request, steps.ctx))
    await wait_until(lambda: any("job_id" in b for b in steps.beats))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(tuned.active_jobs()) == 1
    lines = await platform.delete_run(RUN_ID, config)
    assert any(line.startswith("cancelled NeMo Customizer job") for line in lines)
    assert tuned.active_jobs() == []


@pytest.mark.parametrize("seed", [1, 2])
async def test_twenty_percent_5xx_still_completes(
    platform: NemoPlatform, tuned: NMPEmulator, seed: int
) -> None:
    config = make_config(tuned, nmp_changes={"evaluator": "nemo"})
    tuned.configure_faults(error_rate=0.2, error_status=503, seed=seed)
    scores, _ = await run_candidate(platform, config)
    failed = [r for r in tuned.requests() if r.status == 503]
    assert len(failed) > 10, "faults were injected"
    assert scores[EvalKind.CUSTOMIZED] == pytest.approx(1.0)
    assert tuned.deployments_created() == 1
    assert tuned.customization_jobs_created() == 1
    assert tuned.evaluation_jobs_created() == 3
    assert len(tuned.datasets()) == 3
    await platform.delete_run(RUN_ID, config)
    assert tuned.repos() == [] and tuned.datasets() == [] and tuned.models() == []


async def test_twenty_percent_5xx_with_the_builtin_evaluator(
    platform: NemoPlatform, tuned: NMPEmulator
) -> None:
    config = make_config(tuned)
    tuned.configure_faults(error_rate=0.2, error_status=502, seed=3)
    scores, _ = await run_candidate(platform, config)
    assert scores == {
        EvalKind.BASE: pytest.approx(0.8),
        EvalKind.ICL: pytest.approx(0.8),
        EvalKind.CUSTOMIZED: pytest.approx(1.0),
    }
    assert tuned.deployments_created() == 1 and tuned.customization_jobs_created() == 1
