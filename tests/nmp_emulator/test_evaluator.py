"""Evaluator: jobs created → running → completed / failed / cancelled, results in the shape the
blueprint reads (spec 5.4), fixed and computed scores."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import nemo_microservices
import pytest
from nemo_microservices import AsyncNeMoMicroservices
from nemo_microservices.types import EvaluationResult, EvaluationStatusDetails
from nemo_microservices.types.evaluation import EvaluationJob

from tests.support.nmp import allow_hf_hub
from tests.support.nmp_emulator import NMPEmulator, ScoreContext, replay_tool_calling_scorer

NS = "dfw"
MODEL = "meta/llama-3.2-1b-instruct"
DATASET = "flywheel-eval-w1-1700000000"
FILES_URL = f"hf://datasets/{NS}/{DATASET}/eval_data.jsonl"
GROUND_TRUTH = "{{ item.response.choices[0].message.tool_calls | tojson }}"
JUDGE = {"api_endpoint": {"url": "http://judge/v1", "model_id": "judge", "api_key": "judge-key"}}


def record(city: str) -> dict[str, Any]:
    call = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": city}}}
    return {
        "request": {
            "messages": [{"role": "user", "content": f"weather in {city}"}],
            "tools": [{"type": "function", "function": {"name": "get_weather"}}],
        },
        "response": {"choices": [{"message": {"role": "assistant", "tool_calls": [call]}}]},
    }


def tool_calling_config(limit: int | None = None) -> dict[str, Any]:
    dataset: dict[str, Any] = {"files_url": FILES_URL}
    if limit is not None:
        dataset["limit"] = limit
    return {
        "type": "custom",
        "tasks": {
            "custom-tool-calling": {
                "type": "chat-completion",
                "dataset": dataset,
                "params": {
                    "template": {
                        "messages": "{{ item.request.messages | tojson }}",
                        "tools": "{{ item.request.tools | tojson }}",
                        "tool_choice": "required",
                    }
                },
                "metrics": {
                    "tool-calling-accuracy": {
                        "type": "tool-calling",
                        "params": {
                            "model": JUDGE,
                            "tool_calls_ground_truth": GROUND_TRUTH,
                        },
                    },
                    "correctness": {
                        "type": "llm-judge",
                        "params": {
                            "model": JUDGE,
                            "scores": {
                                "rating": {
                                    "type": "int",
                                    "parser": {"type": "regex", "pattern": "RATING:\\s*(\\d+)"},
                                }
                            },
                        },
                    },
                },
            }
        },
    }


def similarity_config() -> dict[str, Any]:
    return {
        "type": "custom",
        "tasks": {
            "llm-as-judge": {
                "type": "chat-completion",
                "dataset": {"files_url": FILES_URL, "limit": 1000},
                "metrics": {
                    "llm-judge": {
                        "type": "llm-judge",
                        "params": {
                            "model": JUDGE,
                            "scores": {
                                "similarity": {
                                    "type": "int",
                                    "parser": {"type": "regex", "pattern": "(\\d)"},
                                }
                            },
                        },
                    }
                },
            }
        },
    }


def seed_dataset(nmp: NMPEmulator, n: int = 4) -> None:
    """Put an eval dataset in the Data Store (through its HF endpoint; needs ``offline_guard``)."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=nmp.hf_endpoint, token="t")
    api.create_repo(f"{NS}/{DATASET}", repo_type="dataset", exist_ok=True)
    lines = "\n".join(json.dumps(record(c)) for c in ["Oslo", "Paris", "Rome", "Lima"][:n])
    api.upload_file(
        path_or_fileobj=lines.encode(),
        path_in_repo="eval_data.jsonl",
        repo_id=f"{NS}/{DATASET}",
        repo_type="dataset",
    )


async def ready_model(client: AsyncNeMoMicroservices, nmp: NMPEmulator, model: str = MODEL) -> None:
    await client.deployment.model_deployments.create(
        name=model.replace("/", "-"), namespace=NS, config={"model": model}
    )
    nmp.advance(nmp.durations.deploy)


async def start(
    client: AsyncNeMoMicroservices, config: Any, model: str = MODEL, **kwargs: Any
) -> EvaluationJob:
    return await client.evaluation.jobs.create(
        config=config, target={"type": "model", "model": model}, **kwargs
    )


@pytest.fixture
def offline_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    allow_hf_hub(monkeypatch)


@pytest.mark.usefixtures("offline_guard")
async def test_tool_calling_job_lifecycle_and_results(
    manual_client: AsyncNeMoMicroservices, manual_nmp: NMPEmulator
) -> None:
    seed_dataset(manual_nmp)
    await ready_model(manual_client, manual_nmp)
    job = await start(manual_client, tool_calling_config(limit=3), custom_fields={"run": "r1"})
    assert isinstance(job, EvaluationJob)
    assert job.id is not None and job.id.startswith("eval-")
    assert job.status == "created"
    with pytest.raises(nemo_microservices.NotFoundError):  # no results before completion
        await manual_client.evaluation.jobs.results(job.id)

    d = manual_nmp.durations
    manual_nmp.advance(d.evaluation_queue + d.evaluation / 2)
    running = await manual_client.evaluation.jobs.retrieve(job.id)
    assert running.status == "running"
    assert running.status_details is not None
    assert running.status_details.progress == pytest.approx(50.0)
    assert running.status_details.samples_processed == 1  # limit 3 → 1 of 3 at half way
    assert running.status_details.task_status == {"custom-tool-calling": "running"}
    status = await manual_client.evaluation.jobs.status(job.id)
    assert isinstance(status, EvaluationStatusDetails) and status.progress == pytest.approx(50.0)

    manual_nmp.advance(d.evaluation / 2)
    done = await manual_client.evaluation.jobs.retrieve(job.id)
    assert done.status == "completed" and done.status_details is not None
    assert done.status_details.progress == 100.0 and done.status_details.samples_processed == 3

    results = await manual_client.evaluation.jobs.results(job.id)
    assert isinstance(results, EvaluationResult)
    assert results.job == job.id
    assert results.tasks is not None
    metrics = results.tasks["custom-tool-calling"].metrics or {}
    accuracy = metrics["tool-calling-accuracy"].scores or {}
    assert accuracy["function_name_accuracy"].value == 1.0
    assert accuracy["function_name_and_args_accuracy"].value == 0.9
    assert (metrics["correctness"].scores or {})["rating"].value == 1.0
    assert accuracy["function_name_accuracy"].stats is not None
    assert accuracy["function_name_accuracy"].stats.count == 3

    archive = await manual_client.evaluation.jobs.download_results(job.id)
    with zipfile.ZipFile(io.BytesIO(await archive.read())) as z:
        assert json.loads(z.read("results.json"))["job"] == job.id

    listed = await manual_client.evaluation.jobs.list(filter={"custom_fields": {"run": "r1"}})
    assert [j.id for j in listed.data] == [job.id]
    none = await manual_client.evaluation.jobs.list(filter={"custom_fields": {"run": "r2"}})
    assert none.data == []
    assert manual_nmp.evaluation_jobs_created(MODEL) == 1

    await manual_client.evaluation.jobs.delete(job.id)
    assert manual_nmp.deleted_evaluation_jobs() == {job.id}
    with pytest.raises(nemo_microservices.NotFoundError):
        await manual_client.evaluation.jobs.retrieve(job.id)


@pytest.mark.usefixtures("offline_guard")
async def test_similarity_scores_per_model(
    manual_client: AsyncNeMoMicroservices, manual_nmp: NMPEmulator
) -> None:
    manual_nmp.config.scores_by_model = {"dfw/candidate": {"similarity": 9.0}}
    seed_dataset(manual_nmp)
    await ready_model(manual_client, manual_nmp)
    await ready_model(manual_client, manual_nmp, "dfw/candidate")
    base = await start(manual_client, similarity_config())
    other = await start(manual_client, similarity_config(), model="dfw/candidate")
    manual_nmp.advance(10)

    def similarity(results: EvaluationResult) -> float:
        judge = (results.tasks or {})["llm-as-judge"].metrics or {}
        return (judge["llm-judge"].scores or {})["similarity"].value

    assert similarity(await manual_client.evaluation.jobs.results(base.id)) == 8.0
    assert similarity(await manual_client.evaluation.jobs.results(other.id)) == 9.0
    raw = manual_nmp.evaluation_results(other.id)
    assert raw["tasks"]["llm-as-judge"]["metrics"]["llm-judge"]["scores"]["similarity"] == {
        "value": 9.0,
        "stats": {"count": 4, "sum": 36.0, "mean": 9.0},
    }
    assert manual_nmp.evaluation_jobs_created() == 2
    assert [j["id"] for j in manual_nmp.evaluation_jobs("dfw/candidate")] == [other.id]


@pytest.mark.usefixtures("offline_guard")
async def test_scorer_hook_and_replay_scorer(
    manual_client: AsyncNeMoMicroservices, manual_nmp: NMPEmulator
) -> None:
    seed_dataset(manual_nmp)
    await ready_model(manual_client, manual_nmp)

    def responder(body: dict[str, Any]) -> dict[str, Any]:
        city = body["messages"][-1]["content"].split()[-1]
        city = "Berlin" if city == "Rome" else city  # one wrong argument
        name = "get_time" if city == "Lima" else "get_weather"  # one wrong function
        return {"tool_calls": [{"name": name, "arguments": {"city": city}}]}

    manual_nmp.responder = responder
    manual_nmp.scorer = replay_tool_calling_scorer
    job = await start(manual_client, tool_calling_config())
    manual_nmp.advance(10)
    results = await manual_client.evaluation.jobs.results(job.id)
    metrics = (results.tasks or {})["custom-tool-calling"].metrics or {}
    accuracy = metrics["tool-calling-accuracy"].scores or {}
    assert accuracy["function_name_accuracy"].value == 0.75
    assert accuracy["function_name_and_args_accuracy"].value == 0.5
    assert (metrics["correctness"].scores or {})["rating"].value == 1.0  # fixed fallback

    seen: list[ScoreContext] = []

    def custom(ctx: ScoreContext) -> float | None:
        seen.append(ctx)
        return 0.42 if ctx.score_name == "rating" else None

    manual_nmp.scorer = custom
    second = await start(manual_client, tool_calling_config(limit=2))
    manual_nmp.advance(10)
    results = await manual_client.evaluation.jobs.results(second.id)
    metrics = (results.tasks or {})["custom-tool-calling"].metrics or {}
    assert (metrics["correctness"].scores or {})["rating"].value == 0.42
    assert {c.score_name for c in seen} == {
        "function_name_accuracy",
        "function_name_and_args_accuracy",
        "rating",
    }
    assert all(c.target_model == MODEL and len(c.items or []) == 2 for c in seen)


@pytest.mark.usefixtures("offline_guard")
async def test_failures(manual_client: AsyncNeMoMicroservices, manual_nmp: NMPEmulator) -> None:
    seed_dataset(manual_nmp)
    # the target model is not served
    no_model = await start(manual_client, tool_calling_config())
    manual_nmp.advance(10)
    failed = await manual_client.evaluation.jobs.retrieve(no_model.id)
    assert failed.status == "failed"
    assert failed.status_details is not None
    assert "is not available" in (failed.status_details.message or "")
    assert failed.status_details.task_status == {"custom-tool-calling": "failed"}

    await ready_model(manual_client, manual_nmp)
    # the dataset file is missing
    config = tool_calling_config()
    config["tasks"]["custom-tool-calling"]["dataset"]["files_url"] = f"hf://datasets/{NS}/nope/x"
    no_data = await start(manual_client, config)
    manual_nmp.advance(10)
    missing = await manual_client.evaluation.jobs.retrieve(no_data.id)
    assert missing.status == "failed"
    assert "not found in the Data Store" in (missing.status_details.message or "")

    # an injected failure, half way
    manual_nmp.configure_faults(evaluation_failures={MODEL: "judge timed out"})
    faulty = await start(manual_client, tool_calling_config())
    d = manual_nmp.durations
    manual_nmp.advance(d.evaluation_queue + d.evaluation * 0.4)
    assert (await manual_client.evaluation.jobs.retrieve(faulty.id)).status == "running"
    manual_nmp.advance(d.evaluation * 0.2)
    job = await manual_client.evaluation.jobs.retrieve(faulty.id)
    assert job.status == "failed" and job.status_details is not None
    assert job.status_details.message == "judge timed out"
    assert job.status_details.progress == pytest.approx(50.0)
    with pytest.raises(nemo_microservices.NotFoundError):
        await manual_client.evaluation.jobs.results(faulty.id)


@pytest.mark.usefixtures("offline_guard")
async def test_cancel(manual_client: AsyncNeMoMicroservices, manual_nmp: NMPEmulator) -> None:
    seed_dataset(manual_nmp)
    await ready_model(manual_client, manual_nmp)
    job = await start(manual_client, tool_calling_config())
    manual_nmp.advance(manual_nmp.durations.evaluation_queue + 0.05)
    await manual_client.evaluation.jobs.cancel(job.id)
    manual_nmp.advance(10)
    cancelled = await manual_client.evaluation.jobs.retrieve(job.id)
    assert cancelled.status == "cancelled"
    assert manual_nmp.cancelled_jobs() == [job.id]
    assert manual_nmp.active_jobs() == []

    done = await start(manual_client, tool_calling_config())
    manual_nmp.advance(10)
    with pytest.raises(nemo_microservices.BadRequestError):
        await manual_client.evaluation.jobs.cancel(done.id)


@pytest.mark.usefixtures("offline_guard")
async def test_configs_and_targets_by_reference(
    manual_client: AsyncNeMoMicroservices, manual_nmp: NMPEmulator
) -> None:
    seed_dataset(manual_nmp)
    await ready_model(manual_client, manual_nmp)
    config = await manual_client.evaluation.configs.create(
        name="tool-eval", namespace=NS, **tool_calling_config()
    )
    assert config.tasks is not None and "custom-tool-calling" in config.tasks
    with pytest.raises(nemo_microservices.ConflictError):
        await manual_client.evaluation.configs.create(name="tool-eval", namespace=NS, type="x")
    with pytest.raises(nemo_microservices.UnprocessableEntityError):
        await manual_client.evaluation.configs.create(
            name="bad", namespace=NS, type="custom", tasks={"t": {"metrics": {}}}
        )
    target = await manual_client.evaluation.targets.create(
        name="llama", namespace=NS, type="model", model=MODEL
    )
    assert target.model == MODEL
    fetched = await manual_client.evaluation.configs.retrieve("tool-eval", namespace=NS)
    assert fetched.type == "custom"

    job = await manual_client.evaluation.jobs.create(config=f"{NS}/tool-eval", target=f"{NS}/llama")
    assert job.config.name == "tool-eval" and job.target.name == "llama"
    manual_nmp.advance(10)
    assert (await manual_client.evaluation.jobs.retrieve(job.id)).status == "completed"
    with pytest.raises(nemo_microservices.NotFoundError):
        await manual_client.evaluation.jobs.create(config=f"{NS}/nope", target=f"{NS}/llama")
    await manual_client.evaluation.targets.delete("llama", namespace=NS)
    await manual_client.evaluation.configs.delete("tool-eval", namespace=NS)
