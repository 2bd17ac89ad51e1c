"""Secrets on the nemo platform: read from the environment, sent only where they belong, and
never in an error, a log line, a heartbeat or a returned model."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from flywheel.config import LLMJudgeConfig
from flywheel.errors import ConfigError, FlywheelError
from flywheel.platforms.nemo import NemoPlatform
from flywheel.schemas import CustomizeInput, DatasetFormat, EvalKind, WorkloadType
from tests.platforms.nemo.support import (
    HF_ENV,
    RUN_ID,
    Steps,
    deploy,
    eval_input,
    make_config,
    order_responder,
    put,
    text_record,
    train_line,
)
from tests.support.nmp import start_emulator
from tests.support.nmp_emulator import NMPEmulator, replay_tool_calling_scorer

KEY_ENV = "FLYWHEEL_TEST_NMP_API_KEY"
NMP_KEY = "nmp-SECRET-api-key-31"
HF_SECRET = "hf-SECRET-token-55"
JUDGE_ENV = "FLYWHEEL_TEST_NMP_JUDGE_KEY"
JUDGE_KEY = "judge-SECRET-key-77"
SECRETS = (NMP_KEY, HF_SECRET, JUDGE_KEY)
JUDGE = LLMJudgeConfig(
    deployment_type="remote",
    model_name="judge-model",
    url="http://judge.test/v1/chat/completions",
    api_key_env=JUDGE_ENV,
)


@pytest.fixture
def locked(monkeypatch: pytest.MonkeyPatch) -> Iterator[NMPEmulator]:
    """An emulator whose NIM wants the NMP key and whose Data Store wants the HF token."""
    emulator = start_emulator(inference_api_key=NMP_KEY, datastore_token=HF_SECRET)
    emulator.responder = order_responder
    emulator.scorer = replay_tool_calling_scorer
    monkeypatch.setenv(KEY_ENV, NMP_KEY)
    monkeypatch.setenv(HF_ENV, HF_SECRET)
    monkeypatch.setenv(JUDGE_ENV, JUDGE_KEY)
    try:
        yield emulator
    finally:
        emulator.stop()


def assert_clean(*texts: Any) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in str(text), f"a secret leaked into: {str(text)[:200]}"


async def test_secrets_go_where_they_belong_and_nowhere_else(
    platform: NemoPlatform, locked: NMPEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    builtin = make_config(locked, nmp_changes={"api_key_env": KEY_ENV})
    steps = Steps()
    deployment = await deploy(platform, builtin)
    base = await platform.evaluate(
        await eval_input(platform.artifacts, builtin, deployment), steps.ctx
    )
    assert base.n_failed == 0  # the NIM accepted the key
    judged = make_config(
        locked, nmp_changes={"api_key_env": KEY_ENV, "evaluator": "nemo"}, llm_judge_config=JUDGE
    )
    generic = await platform.evaluate(
        await eval_input(
            platform.artifacts,
            judged,
            deployment,
            records=[text_record(i) for i in range(3)],
            workload_type=WorkloadType.GENERIC,
        ),
        steps.ctx,
    )
    train = await put(platform.artifacts, [train_line(i) for i in range(5)], DatasetFormat.TRAINING)
    customized = await platform.customize(
        CustomizeInput(
            run_id=RUN_ID,
            candidate=builtin.candidates[0],
            config=builtin,
            deployment=deployment,
            train=train,
            val=train,
        ),
        steps.ctx,
    )

    # an error whose body echoes the judge key (a 422 quoting the config back)
    locked.fail_next(
        1, 422, path_prefix="/v1/evaluation/jobs", method="POST", message=f"bad key {JUDGE_KEY}"
    )
    request = await eval_input(
        platform.artifacts,
        judged,
        deployment,
        kind=EvalKind.ICL,  # a step with no job yet
        records=[text_record(i) for i in range(5)],
        workload_type=WorkloadType.GENERIC,
    )
    with pytest.raises(FlywheelError) as echoed:
        await platform.evaluate(request, steps.ctx)
    assert "***" in str(echoed.value)

    assert_clean(
        deployment.model_dump_json(),
        base.model_dump_json(),
        generic.model_dump_json(),
        customized.model_dump_json(),
        steps.beats,
        echoed.value,
        repr(echoed.value),
        caplog.text,
        judged.model_dump_json(),
    )

    # where each secret went
    for path, value in locked.authorizations():
        if path.startswith(("/v1/hf", "/v1/datastore")):
            assert value == f"Bearer {HF_SECRET}", path
        else:
            assert value == f"Bearer {NMP_KEY}", path
    with_judge_key = {r.path for r in locked.requests() if JUDGE_KEY.encode() in r.body}
    assert with_judge_key == {"/v1/evaluation/jobs"}  # the Evaluator must call the judge


async def test_wrong_tokens_fail_without_showing_them(
    platform: NemoPlatform,
    locked: NMPEmulator,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "hf-WRONG-secret-99"
    monkeypatch.setenv(HF_ENV, wrong)
    config = make_config(locked, nmp_changes={"api_key_env": KEY_ENV, "evaluator": "nemo"})
    deployment = await deploy(platform, config)
    with pytest.raises(FlywheelError) as raised:
        await platform.evaluate(
            await eval_input(platform.artifacts, config, deployment), Steps().ctx
        )
    assert "HTTP 401" in str(raised.value) and "Data Store" in str(raised.value)
    assert wrong not in str(raised.value) and wrong not in caplog.text
    assert_clean(raised.value, caplog.text)


async def test_an_unset_key_variable_is_a_config_error(
    platform: NemoPlatform, locked: NMPEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV)
    config = make_config(locked, nmp_changes={"api_key_env": KEY_ENV})
    with pytest.raises(ConfigError, match=f"api_key_env {KEY_ENV}"):
        await deploy(platform, config)


async def test_no_data_store_token_sends_none(
    platform: NemoPlatform, emulator: NMPEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the token variable unset, no token is sent, not even one from the HF cache."""
    monkeypatch.delenv(HF_ENV)
    monkeypatch.setenv("HF_TOKEN", "hf-from-the-environment")
    config = make_config(emulator, nmp_changes={"evaluator": "nemo"})
    deployment = await deploy(platform, config)
    await platform.evaluate(await eval_input(platform.artifacts, config, deployment), Steps().ctx)
    assert emulator.authorizations() == []
