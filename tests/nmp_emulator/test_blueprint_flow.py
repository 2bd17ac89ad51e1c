"""One candidate through the whole blueprint flow, in real (fast) time, with the real SDK and
HfApi: datasets → deployment → base evaluation → customization → customized evaluation →
teardown; then the counters say "exactly one" and "none left"."""

from __future__ import annotations

import json

import httpx
import nemo_microservices
import pytest
from huggingface_hub import HfApi
from nemo_microservices import AsyncNeMoMicroservices

from tests.support.nmp import wait_until
from tests.support.nmp_emulator import NMPEmulator, replay_tool_calling_scorer

NS = "dfwbp"
BASE = "meta/llama-3.2-1b-instruct"
TS = 1_700_000_000
EVAL = f"flywheel-eval-w1-{TS}"
TRAIN = f"flywheel-train-w1-{TS}"


def records(n: int) -> list[dict]:
    out = []
    for i in range(n):
        call = {
            "type": "function",
            "function": {"name": "lookup", "arguments": json.dumps({"id": i})},
        }
        out.append(
            {
                "request": {
                    "messages": [{"role": "user", "content": f"find {i}"}],
                    "tools": [{"type": "function", "function": {"name": "lookup"}}],
                },
                "response": {"choices": [{"message": {"role": "assistant", "tool_calls": [call]}}]},
            }
        )
    return out


async def register(client: AsyncNeMoMicroservices, name: str) -> None:
    """Spec 3.6 step 4: GET, then PATCH if it exists, else POST."""
    url = f"hf://datasets/{NS}/{name}"
    try:
        await client.datasets.retrieve(name, namespace=NS)
    except nemo_microservices.NotFoundError:
        await client.datasets.create(name=name, namespace=NS, files_url=url, project="flywheel")
    else:
        await client.datasets.update(name, namespace=NS, files_url=url)


async def test_one_candidate_end_to_end(
    nmp_client: AsyncNeMoMicroservices, nmp_emulator: NMPEmulator, hf: HfApi
) -> None:
    client, nmp = nmp_client, nmp_emulator

    # the customized model answers like production; the base model gets arguments wrong
    def responder(body: dict) -> dict:
        i = int(body["messages"][-1]["content"].split()[-1])
        wrong = body["model"] == BASE
        return {"tool_calls": [{"name": "lookup", "arguments": {"id": i + 1 if wrong else i}}]}

    nmp.responder = responder
    nmp.scorer = replay_tool_calling_scorer

    # 1. namespaces, datasets
    await client.namespaces.create(id=NS)
    async with httpx.AsyncClient() as http:  # the Data Store's own namespace (form data)
        created = await http.post(f"{nmp.base_url}/v1/datastore/namespaces", data={"namespace": NS})
        assert created.status_code == 201
    eval_lines = "\n".join(json.dumps(r) for r in records(5)).encode()
    for name, files in (
        (EVAL, {"eval_data.jsonl": eval_lines}),
        (TRAIN, {"training/train_data.jsonl": eval_lines, "validation/val_data.jsonl": b"{}"}),
    ):
        hf.create_repo(f"{NS}/{name}", repo_type="dataset", exist_ok=True)
        for path, data in files.items():
            hf.upload_file(
                path_or_fileobj=data, path_in_repo=path, repo_id=f"{NS}/{name}", repo_type="dataset"
            )
            await register(client, name)

    # 2. deploy the candidate and wait for the NIM to list it
    await client.deployment.model_deployments.create(
        name="llama-1b", namespace=NS, config={"model": BASE}
    )

    async def listed(model: str) -> bool:
        return model in [m.id for m in (await client.inference.models.list()).data]

    await wait_until(lambda: listed(BASE))

    # 3. base evaluation
    config = {
        "type": "custom",
        "tasks": {
            "custom-tool-calling": {
                "type": "chat-completion",
                "dataset": {"files_url": f"hf://datasets/{NS}/{EVAL}/eval_data.jsonl"},
                "metrics": {"tool-calling-accuracy": {"type": "tool-calling"}},
            }
        },
    }

    async def evaluate(model: str) -> dict[str, float]:
        job = await client.evaluation.jobs.create(
            config=config, target={"type": "model", "model": model}
        )

        async def finished() -> bool:
            current = await client.evaluation.jobs.retrieve(job.id)
            assert current.status in ("created", "running", "completed")
            return current.status == "completed"

        await wait_until(finished)
        results = await client.evaluation.jobs.results(job.id)
        scores = (results.tasks or {})["custom-tool-calling"].metrics or {}
        return {k: v.value for k, v in (scores["tool-calling-accuracy"].scores or {}).items()}

    base_scores = await evaluate(BASE)
    assert base_scores == {"function_name_accuracy": 1.0, "function_name_and_args_accuracy": 0.0}

    # 4. customization (a 409 on the config is fine), polled through /status
    with pytest.raises(nemo_microservices.ConflictError):
        for _ in range(2):
            await client.customization.configs.create(
                name="llama-3.2-1b-instruct@v1.0.0+dfw",
                namespace=NS,
                target=f"{BASE}@2.0",
                training_options=[
                    {
                        "training_type": "sft",
                        "finetuning_type": "lora",
                        "num_gpus": 1,
                        "micro_batch_size": 1,
                    }
                ],
                max_seq_length=8192,
            )
    job = await client.customization.jobs.create(
        name="customization-w1-llama-1b",
        output_model=f"{NS}/customized-llama-1b",
        config=f"{NS}/llama-3.2-1b-instruct@v1.0.0+dfw",
        dataset={"name": TRAIN, "namespace": NS},
        hyperparameters={"training_type": "sft", "finetuning_type": "lora", "epochs": 2},
    )
    progress: list[float] = []

    async def trained() -> bool:
        status = await client.customization.jobs.status(job.id)
        progress.append(status.percentage_done or 0.0)
        return status.status == "completed"

    await wait_until(trained)
    assert progress == sorted(progress) and progress[-1] == 100.0
    await wait_until(lambda: listed(job.output_model))

    # 5. customized evaluation
    assert await evaluate(job.output_model) == {
        "function_name_accuracy": 1.0,
        "function_name_and_args_accuracy": 1.0,
    }

    # 6. teardown
    await client.deployment.model_deployments.delete("llama-1b", namespace=NS)
    ns, _, name = job.output_model.partition("/")
    await client.models.delete(name, namespace=ns)
    for eval_job in nmp.evaluation_jobs():
        await client.evaluation.jobs.delete(eval_job["id"])
    for dataset in (EVAL, TRAIN):
        hf.delete_repo(f"{NS}/{dataset}", repo_type="dataset")
        await client.datasets.delete(dataset, namespace=NS)

    assert nmp.customization_jobs_created("customization-w1-llama-1b") == 1
    assert nmp.evaluation_jobs_created() == 2
    assert nmp.deployments_created() == 1
    assert nmp.live_deployments() == []
    assert nmp.active_jobs() == []
    assert nmp.served_models() == []
    assert nmp.repos() == [] and nmp.datasets() == [] and nmp.models() == []
