"""Unit tests: deterministic sanitised names, and NMP failures as the flywheel's errors."""

from __future__ import annotations

import re

import httpx
import nemo_microservices
import pytest
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

from flywheel.clients.nemo.errors import RetryPolicy, to_flywheel_error
from flywheel.clients.nemo.evaluator import scores_from_results
from flywheel.clients.nemo.names import (
    RunNames,
    customizer_config_name,
    deployment_name,
    run_key,
    workload_slug,
)
from flywheel.errors import ConfigError, RemoteCallError

REPO_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?$")


@pytest.mark.parametrize(
    ("run_id", "slug"),
    [
        ("flywheel-orders-20240101T000000Z", "orders"),
        ("flywheel-Orders_EU/2-2024-01-01T00:00:00Z", "orders-eu-2"),
        ("flywheel-w1", "w1"),
        ("some other id", "some-other-id"),
        ("flywheel-" + "x" * 80 + "-20240101T000000Z", None),
    ],
)
def test_workload_slug(run_id: str, slug: str | None) -> None:
    found = workload_slug(run_id)
    if slug is not None:
        assert found == slug
    assert REPO_NAME.match(found) and len(found) <= 32


def test_run_names_are_valid_unique_and_stable() -> None:
    a = RunNames("flywheel-orders-20240101T000000Z")
    b = RunNames("flywheel-orders-20240102T000000Z")
    assert a.key != b.key and len(a.key) == 10
    assert a.dataset("eval") == f"fw-orders-{a.key}-eval"
    assert a.dataset("icl-8192") == f"fw-orders-{a.key}-icl-8192"
    assert a.dataset("eval") != b.dataset("eval")
    assert RunNames(a.run_id).candidate("llama-1b") == a.candidate("llama-1b")
    long = RunNames("flywheel-" + "W" * 200 + "-20240101T000000Z")
    for name in (long.dataset("icl-32768"), long.candidate("c" * 100 + ".x")):
        assert REPO_NAME.match(name) and len(name) <= 96 and "--" not in name
    assert a.owns(a.dataset("train")) and not a.owns(b.dataset("train"))
    assert not a.owns(None) and run_key("x") == run_key("x")


def test_deployment_names_are_per_run_and_candidate() -> None:
    name = deployment_name("flywheel-orders-20240101T000000Z", "llama-1b")
    assert name.startswith("fw-orders-") and name.endswith("-llama-1b")
    assert name != deployment_name("flywheel-orders-20240102T000000Z", "llama-1b")
    assert name != deployment_name("flywheel-orders-20240101T000000Z", "llama-3b")
    long = deployment_name("flywheel-" + "w" * 80 + "-20240101T000000Z", "c" * 80)
    assert len(long) <= 63 and "." not in long


def test_customizer_config_names_are_versioned_by_their_options() -> None:
    one = customizer_config_name("meta/llama-3.2-1b-instruct", {"epochs": 2, "lr": 1e-4})
    same = customizer_config_name("meta/llama-3.2-1b-instruct", {"lr": 1e-4, "epochs": 2})
    other = customizer_config_name("meta/llama-3.2-1b-instruct", {"epochs": 3, "lr": 1e-4})
    assert one == same != other
    assert re.fullmatch(r"fw-meta-llama-3\.2-1b-instruct@v1\.0\.0\+[0-9a-f]{10}", one)


def _status_error(status: int, body: object) -> nemo_microservices.APIStatusError:
    request = httpx.Request("POST", "http://nmp.test/v1/customization/jobs")
    response = httpx.Response(status, json=body, request=request)
    client = nemo_microservices.NeMoMicroservices(base_url="http://nmp.test")
    return client._make_status_error(f"Error code: {status}", body=body, response=response)


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(400, False), (401, False), (404, False), (409, False), (422, False), (408, True),
     (429, True), (500, True), (503, True)],
)  # fmt: skip
def test_status_errors_retry_only_when_worth_it(status: int, retryable: bool) -> None:
    error = to_flywheel_error(
        "NeMo Customizer job create for candidate c", _status_error(status, {"detail": "no"})
    )
    assert isinstance(error, RemoteCallError)
    assert error.retryable is retryable and error.status_code == status
    assert str(error) == f"NeMo Customizer job create for candidate c failed: HTTP {status}: no"


def test_connection_failures_and_timeouts_retry() -> None:
    request = httpx.Request("GET", "http://nmp.test/v1/models")
    timeout = to_flywheel_error("x", nemo_microservices.APITimeoutError(request))
    assert isinstance(timeout, RemoteCallError) and timeout.retryable
    assert "timed out" in str(timeout)
    refused = to_flywheel_error("x", nemo_microservices.APIConnectionError(request=request))
    assert isinstance(refused, RemoteCallError) and refused.retryable
    raw = to_flywheel_error("x", httpx.ConnectError("refused"))
    assert isinstance(raw, RemoteCallError) and raw.retryable


def test_hf_errors_and_offline_mode() -> None:
    request = httpx.Request("POST", "http://ds.test/v1/hf/api/repos/create")
    response = httpx.Response(403, request=request)
    error = to_flywheel_error("Data Store repo create", HfHubHTTPError("denied", response=response))
    assert isinstance(error, RemoteCallError) and error.status_code == 403 and not error.retryable
    offline = to_flywheel_error("Data Store upload", OfflineModeIsEnabled("offline"))
    assert isinstance(offline, ConfigError) and "HF_HUB_OFFLINE" in str(offline)


def test_secrets_are_masked_in_messages() -> None:
    error = to_flywheel_error(
        "Evaluator job create", _status_error(422, {"detail": "bad key sk-123"}), ["sk-123"]
    )
    assert "sk-123" not in str(error) and "***" in str(error)


async def test_the_retry_policy_stops_at_its_limit() -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise _status_error(503, {"detail": "busy"})
        return "ok"

    assert await RetryPolicy(max_retries=2, backoff_s=0.001).run("call", flaky) == "ok"
    calls = -10
    with pytest.raises(RemoteCallError, match=r"busy \(after 3 attempts\)"):
        await RetryPolicy(max_retries=2, backoff_s=0.001).run("call", flaky)
    calls = 0
    with pytest.raises(RemoteCallError):  # creates are not retried blindly
        await RetryPolicy(max_retries=2, backoff_s=0.001).run("call", flaky, retry=False)
    assert calls == 1


def test_scores_from_results_use_the_builtin_names() -> None:
    def score(value: float, count: int = 4) -> dict:
        return {"value": value, "stats": {"count": count}}

    tool = {
        "tasks": {
            "custom-tool-calling": {
                "metrics": {
                    "tool-calling-accuracy": {
                        "scores": {
                            "function_name_accuracy": score(0.75),
                            "function_name_and_args_accuracy": score(0.5),
                        }
                    },
                    "correctness": {"scores": {"rating": score(1.0)}},
                }
            }
        }
    }
    assert scores_from_results(tool) == (
        {
            "function_name_accuracy": 0.75,
            "function_name_and_args_accuracy": 0.5,
            "tool_calling_correctness": 1.0,
        },
        4,
    )
    generic = {
        "tasks": {"llm-as-judge": {"metrics": {"llm-judge": {"scores": {"similarity": score(7)}}}}}
    }
    metrics, count = scores_from_results(generic)
    assert metrics == {"llm_judge_score": 7.0, "llm_judge_similarity": pytest.approx(6 / 9)}
    assert count == 4
    assert scores_from_results({"tasks": {}}) == ({}, None)
