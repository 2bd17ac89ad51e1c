"""Helpers for the nemo platform's tests: records, candidates, run configs, a recording
StepContext and shortcuts for the steps."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from flywheel.clients.artifacts import ArtifactStore
from flywheel.config import (
    Candidate,
    CustomizerConfig,
    EvaluationConfig,
    NimDeploymentOptions,
    NMPConfig,
    Platform,
    RunConfig,
    TimeoutsConfig,
    TrainingConfig,
)
from flywheel.platforms.base import StepContext
from flywheel.platforms.nemo import NemoPlatform
from flywheel.schemas import (
    DatasetFormat,
    DatasetRef,
    DeployInput,
    Deployment,
    EvalKind,
    EvaluateInput,
    WorkloadType,
)
from tests.support.nmp_emulator import NMPEmulator

NS = "dfw"
MODEL = "meta/llama-3.2-1b-instruct"
RUN_ID = "flywheel-orders-20240101T000000Z"
HF_ENV = "FLYWHEEL_TEST_NMP_HF_TOKEN"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_order",
            "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
        },
    },
    {"type": "function", "function": {"name": "cancel_order", "parameters": {"type": "object"}}},
]


def tool_record(i: int) -> dict[str, Any]:
    """An eval record whose production answer is ``get_order(order_id=str(i))``."""
    call = {
        "type": "function",
        "function": {"name": "get_order", "arguments": {"order_id": str(i)}},
    }
    return {
        "workload_id": "orders",
        "client_id": "tests",
        "timestamp": 1_700_000_000,
        "request": {
            "messages": [{"role": "user", "content": f"where is order {i}"}],
            "tools": TOOLS,
        },
        "response": {
            "choices": [{"message": {"role": "assistant", "content": None, "tool_calls": [call]}}]
        },
    }


def text_record(i: int) -> dict[str, Any]:
    return {
        "workload_id": "chat",
        "client_id": "tests",
        "timestamp": 1_700_000_000,
        "request": {"messages": [{"role": "user", "content": f"say hello {i}"}]},
        "response": {"choices": [{"message": {"role": "assistant", "content": f"hello {i}"}}]},
    }


def train_line(i: int) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "user", "content": f"where is order {i}"},
            {"role": "assistant", "content": "", "tool_calls": [{"type": "function"}]},
        ],
        "tools": TOOLS,
    }


def order_responder(body: dict[str, Any]) -> dict[str, Any]:
    """The NIM's answers: right for most orders; order 7 gets a wrong id, order 9 a wrong tool
    (so function-name accuracy is 0.9 and names-and-arguments accuracy 0.8 on ten records)."""
    i = int(body["messages"][-1]["content"].split()[-1])
    name = "cancel_order" if i == 9 else "get_order"
    order_id = "70" if i == 7 else str(i)
    return {"tool_calls": [{"name": name, "arguments": json.dumps({"order_id": order_id})}]}


def make_candidate(name: str = "llama-1b", model: str = MODEL, **changes: Any) -> Candidate:
    values: dict[str, Any] = {
        "name": name,
        "model": model,
        "platform": Platform.NEMO,
        "customization_enabled": True,
        "customizer": CustomizerConfig(target=f"{model}@2.0", gpus=1, max_seq_length=4096),
        "nim": NimDeploymentOptions(tag="1.8.3", gpus=1, pvc_size="25Gi"),
    }
    values.update(changes)
    return Candidate(**values)


def make_config(
    emulator: NMPEmulator,
    *candidates: Candidate,
    nmp_changes: dict[str, Any] | None = None,
    **changes: Any,
) -> RunConfig:
    nmp_values: dict[str, Any] = {
        "nemo_base_url": emulator.base_url,
        "nim_base_url": emulator.nim_url,
        "datastore_base_url": emulator.base_url,
        "nmp_namespace": NS,
        "hf_token_env": HF_ENV,
        "max_retries": 8,
        "retry_backoff_s": 0.005,
        "request_timeout_s": 10,
    }
    nmp_values.update(nmp_changes or {})
    values: dict[str, Any] = {
        "nmp_config": NMPConfig(**nmp_values),
        "candidates": list(candidates) or [make_candidate()],
        "timeouts": TimeoutsConfig(
            poll_interval_s=0.02,
            deploy_timeout_s=20,
            customization_timeout_s=20,
            evaluation_timeout_s=20,
        ),
        "evaluation": EvaluationConfig(concurrency=4, max_retries=6, retry_backoff_s=0.002),
        "training_config": TrainingConfig(epochs=2),
    }
    values.update(changes)
    return RunConfig(**values)


@dataclass
class Steps:
    """A StepContext that records every heartbeat (and can hand a resume to the next attempt).

    ``final_cancel=False`` makes a cancellation look like a worker shutting down: the remote job
    must be left running for the next attempt.
    """

    resume: dict[str, Any] = field(default_factory=dict)
    beats: list[dict[str, Any]] = field(default_factory=list)
    final_cancel: bool = True

    @property
    def ctx(self) -> StepContext:
        final = self.final_cancel
        return StepContext(
            heartbeat=self.beats.append, resume=self.resume, cancel_is_final=lambda: final
        )

    def last(self, key: str) -> dict[str, Any]:
        """The last heartbeat that carries ``key``."""
        return next(b for b in reversed(self.beats) if key in b)


async def put(
    store: ArtifactStore, records: list[dict[str, Any]], fmt: DatasetFormat
) -> DatasetRef:
    return await store.put_jsonl(records, fmt)


async def deploy(
    platform: NemoPlatform, config: RunConfig, candidate: Candidate | None = None
) -> Deployment:
    candidate = candidate or config.candidates[0]
    request = DeployInput(run_id=RUN_ID, candidate=candidate, config=config)
    return await platform.deploy(request, Steps().ctx)


async def eval_input(
    store: ArtifactStore,
    config: RunConfig,
    deployment: Deployment,
    *,
    kind: EvalKind = EvalKind.BASE,
    records: list[dict[str, Any]] | None = None,
    workload_type: WorkloadType = WorkloadType.TOOL_CALLING,
    model: str | None = None,
) -> EvaluateInput:
    dataset = await put(store, records or [tool_record(i) for i in range(10)], DatasetFormat.EVAL)
    return EvaluateInput(
        run_id=RUN_ID,
        candidate=config.candidates[0],
        config=config,
        deployment=deployment,
        kind=kind,
        dataset=dataset,
        workload_type=workload_type,
        model=model,
    )
