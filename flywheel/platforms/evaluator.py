"""The built-in evaluator shared by every platform: replay eval records, checkpoint, score.

Each eval record's logged request is replayed against the candidate with bounded concurrency;
every reply is checkpointed to the artifact store as it completes, so an activity retried after a
worker crash resumes where it stopped. Replies are then scored against the production model's
logged answers. Results depend only on the replies, never on completion order or on resumption.

When a judge is given (``llm_judge_config``), generic workloads are also rated by an LLM judge
once every reply is in; tool-calling workloads are scored on their calls and never judged.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from flywheel.clients.artifacts import ArtifactStore, dumps_line
from flywheel.clients.embeddings import Embedder, EmbedderCache, open_embedder
from flywheel.clients.llm import ChatClient
from flywheel.config import EvaluationConfig, read_secret
from flywheel.platforms.base import StepContext
from flywheel.platforms.checkpoint import EvalCheckpoint, checkpoint_prefix
from flywheel.platforms.judging import Judge, JudgePair, last_user_text, open_judge
from flywheel.platforms.memory import collector_paused, heap_frozen, release_in_background
from flywheel.platforms.replies import (
    DEFAULT_MAX_TOKENS,
    HttpResponder,
    Reply,
    Responder,
    build_chat_request,
    reply_from_response,
)
from flywheel.schemas import (
    ArtifactRef,
    EvalKind,
    EvalResult,
    EvaluateInput,
    StepStatus,
    WorkloadType,
    utcnow,
)
from flywheel.scoring.confidence import metric_intervals
from flywheel.scoring.divergence import example_line, most_divergent, record_divergence
from flywheel.scoring.judge import judge_row
from flywheel.scoring.latency import latency_summary, output_tokens_per_second
from flywheel.scoring.metrics import (
    aggregate_scores,
    exceeds_failure_budget,
    message_text,
    score_reply,
)
from flywheel.scoring.similarity import EMBEDDING_COSINE, embedding_cosine
from flywheel.scoring.stats import percentile
from flywheel.scoring.tool_metrics import ToolConfusion

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "EvalCheckpoint",
    "HttpResponder",
    "Reply",
    "Responder",
    "build_chat_request",
    "checkpoint_prefix",
    "collector_paused",
    "evaluate_over_http",
    "open_similarity_embedder",
    "release_in_background",
    "reply_from_response",
    "run_evaluation",
]

EXAMPLES_FILE = "divergent-examples.jsonl"
"""Next to an evaluation's ``replies/`` checkpoint: where it differs most from production."""

BuildRequest = Callable[[dict[str, Any], str, EvaluationConfig], dict[str, Any]]


class _Progress:
    """Replies gathered during one evaluation, checkpointed in chunks of ``every``."""

    def __init__(
        self,
        replies: dict[int, Reply],
        total: int,
        checkpoint: EvalCheckpoint,
        every: int,
        heartbeat: Callable[[dict[str, Any]], None],
    ) -> None:
        self.replies = replies
        self.total = total
        self.checkpoint = checkpoint
        self.every = max(1, every)
        self.heartbeat = heartbeat
        self.buffer: list[Reply] = []
        self.checkpointed = len(replies)
        self.failed = sum(1 for r in replies.values() if not r.ok)
        self._writes: set[asyncio.Future[None]] = set()

    def details(self) -> dict[str, int]:
        return {
            "done": len(self.replies),
            "total": self.total,
            "failed": self.failed,
            "checkpointed": self.checkpointed,
        }

    async def add(self, reply: Reply) -> None:
        """Record one completed reply; write a chunk when ``every`` are buffered; heartbeat."""
        previous = self.replies.get(reply.index)
        self.failed += (not reply.ok) - (previous is not None and not previous.ok)
        self.replies[reply.index] = reply
        self.buffer.append(reply)
        if len(self.buffer) >= self.every:
            await self.flush()
        self.heartbeat(self.details())

    async def flush(self) -> None:
        """Write the buffered replies as one chunk.

        The write is shielded: a worker cancelled mid-write leaves it running to completion, so
        a chunk is never half-counted and chunk numbers are never reused.
        """
        chunk, self.buffer = self.buffer, []
        if chunk:
            task = asyncio.ensure_future(self._write(chunk))
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)
            await asyncio.shield(task)

    async def drain(self) -> None:
        """Wait for chunk writes in flight, then write whatever is still buffered."""
        while self._writes:
            await asyncio.gather(*list(self._writes), return_exceptions=True)
        await self.flush()

    async def _write(self, chunk: list[Reply]) -> None:
        await self.checkpoint.append(chunk)
        self.checkpointed += len(chunk)


class _Scores:
    """Per-record scores, computed as each reply arrives (so little is left to do after the
    last one): one score row per answered record and, for tool-calling workloads, the per-tool
    counts. Each record is scored once, from its final reply."""

    def __init__(self, records: list[dict[str, Any]], workload_type: WorkloadType) -> None:
        self._records = records
        self.workload_type = WorkloadType(workload_type)
        self.rows: dict[int, dict[str, float | None]] = {}
        self.tools = ToolConfusion() if self.workload_type is WorkloadType.TOOL_CALLING else None

    def add(self, reply: Reply) -> None:
        if not reply.ok or reply.index in self.rows:
            return
        expected = _expected_message(self._records[reply.index])
        self.rows[reply.index] = dict(score_reply(self.workload_type, expected, reply.message))
        if self.tools is not None:
            self.tools.add(expected, reply.message)


async def evaluate_over_http(
    artifacts: ArtifactStore,
    request: EvaluateInput,
    ctx: StepContext,
    *,
    base_url: str,
    api_key: str | None,
    embedders: EmbedderCache,
) -> EvalResult:
    """The built-in evaluator against an OpenAI-compatible endpoint (an endpoint candidate, a
    NIM): read the eval set, replay it with checkpoints, judge and score it."""
    settings = request.config.evaluation
    with collector_paused():  # ten times faster to parse a large dataset
        records = await artifacts.read_dataset(request.dataset)
    checkpoint = EvalCheckpoint(
        artifacts, checkpoint_prefix(request.run_id, request.candidate.name, request.kind)
    )
    async with (
        ChatClient(
            base_url,
            api_key=api_key,
            timeout_s=settings.request_timeout_s,
            max_retries=settings.max_retries,
            retry_backoff_s=settings.retry_backoff_s,
            max_connections=settings.concurrency,
        ) as client,
        open_judge(
            request.config.llm_judge_config, settings, workload_type=request.workload_type
        ) as judge,
        open_similarity_embedder(settings, request.workload_type, embedders) as embedder,
    ):
        try:
            return await run_evaluation(
                records=records,
                responder=HttpResponder(client, settings.concurrency),
                checkpoint=checkpoint,
                kind=request.kind,
                workload_type=request.workload_type,
                model=request.model or request.deployment.model,
                config=settings,
                ctx=ctx,
                judge=judge,
                embedder=embedder,
            )
        finally:
            release_in_background(records)


async def run_evaluation(
    *,
    records: list[dict[str, Any]],
    responder: Responder,
    checkpoint: EvalCheckpoint,
    kind: EvalKind,
    workload_type: WorkloadType,
    model: str,
    config: EvaluationConfig,
    ctx: StepContext,
    build_request: BuildRequest = build_chat_request,
    judge: Judge | None = None,
    embedder: Embedder | None = None,
) -> EvalResult:
    """Replay ``records`` through ``responder`` (resuming from ``checkpoint``) and score them.

    Only records without a successful checkpointed reply are requested. If the heartbeat raises
    (cancellation) or the task is cancelled, workers stop, the replies so far are checkpointed
    and the exception propagates. With a ``judge``, every answered record of a generic workload
    is also rated by it (see :func:`_judge_replies`); with an ``embedder``, also scored by the
    cosine of its answer's and the logged answer's embeddings.
    """
    started_at = utcnow()
    total = len(records)
    loaded = await checkpoint.load()
    done = {i: r for i, r in loaded.items() if r.ok and 0 <= i < total}
    pending = [i for i in range(total) if i not in done]
    progress = _Progress(done, total, checkpoint, config.checkpoint_every, ctx.heartbeat)
    scores = _Scores(records, workload_type)
    ctx.heartbeat(progress.details())

    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in pending:
        queue.put_nowait(index)

    async def worker() -> None:
        while not queue.empty():
            batch: list[int] = []
            while len(batch) < max(1, responder.batch_size) and not queue.empty():
                batch.append(queue.get_nowait())
            requests = [(i, build_request(records[i], model, config)) for i in batch]
            answered = {r.index: r for r in await responder.answer(requests)}
            for index in batch:
                reply = answered.get(index) or Reply.failed(index, "the responder gave no reply")
                await progress.add(reply)
                scores.add(reply)

    n_workers = min(max(1, responder.concurrency), len(pending))
    replay_started = time.perf_counter()
    with heap_frozen():
        tasks = [asyncio.create_task(worker()) for _ in range(n_workers)]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await progress.drain()
            raise
        await progress.drain()
        replay_s = time.perf_counter() - replay_started
        ctx.heartbeat(progress.details())
        replies = [progress.replies[i] for i in range(total)]
        judged = embedded = None
        if WorkloadType(workload_type) is WorkloadType.GENERIC:
            if judge is not None:
                judged = await _judge_replies(
                    judge, records, replies, config, ctx, progress.details(), checkpoint
                )
            if embedder is not None:
                embedded = await _embedding_similarity(embedder, records, replies)
        for reply in replies:  # those checkpointed by an earlier attempt
            scores.add(reply)
        result = _score(
            scores=scores,
            replies=replies,
            kind=kind,
            workload_type=workload_type,
            model=model,
            config=config,
            started_at=started_at,
            judged=judged,
            embedded=embedded,
            throughput_rps=len(pending) / replay_s if pending and replay_s > 0 else None,
            concurrency=(n_workers or max(1, responder.concurrency)) * max(1, responder.batch_size),
        )
        if config.divergent_examples > 0 and result.n_scored:
            lines = divergent_examples(
                records, replies, scores.rows, workload_type, config.divergent_examples
            )
            result.examples = await write_examples(checkpoint, lines)
        return result


async def _judge_replies(
    judge: Judge,
    records: list[dict[str, Any]],
    replies: list[Reply],
    config: EvaluationConfig,
    ctx: StepContext,
    details: dict[str, Any],
    checkpoint: EvalCheckpoint,
) -> dict[int, int | None]:
    """The judge's rating of every answered record, by record index (None: no rating).

    The judge sees the record's last user turn, the logged answer as the reference and the
    candidate's answer; heartbeats carry the reply progress plus the judging progress. Ratings
    are checkpointed like replies, so a retried evaluation asks the judge only about the
    records it had not rated (a failed judge call is asked again).
    """
    ratings = await checkpoint.load_ratings()
    todo = [r for r in replies if r.ok and r.index not in ratings]
    pairs = [
        JudgePair(
            reference=message_text(_expected_message(records[r.index])),
            candidate=message_text(r.message),
            conversation=last_user_text(records[r.index].get("request")),
        )
        for r in todo
    ]
    buffer: list[tuple[int, int | None]] = []

    async def flush() -> None:
        chunk = buffer[:]
        buffer.clear()
        await asyncio.shield(checkpoint.append_ratings(chunk))

    async def on_rating(position: int, rating: int | None) -> None:
        buffer.append((todo[position].index, rating))
        if len(buffer) >= config.checkpoint_every:
            await flush()

    try:
        scores = await judge.judge(
            pairs,
            concurrency=config.concurrency,
            heartbeat=lambda judging: ctx.heartbeat({**details, "judge": judging}),
            on_rating=on_rating,
        )
    finally:
        await flush()
    ratings.update((r.index, score) for r, score in zip(todo, scores, strict=True))
    return {r.index: ratings.get(r.index) for r in replies if r.ok}


@contextlib.asynccontextmanager
async def open_similarity_embedder(
    config: EvaluationConfig, workload_type: WorkloadType, cache: EmbedderCache
) -> AsyncIterator[Embedder | None]:
    """The embedder of ``evaluation.similarity_embedding`` for a generic workload, else None."""
    settings = config.similarity_embedding
    if settings is None or WorkloadType(workload_type) is not WorkloadType.GENERIC:
        yield None
        return
    embedder = open_embedder(settings, api_key=read_secret(settings.api_key_env), cache=cache)
    try:
        yield embedder
    finally:
        await embedder.aclose()


async def _embedding_similarity(
    embedder: Embedder, records: list[dict[str, Any]], replies: list[Reply]
) -> dict[int, float]:
    """Cosine of each answered record's reply and logged answer embeddings, by record index."""
    ok = [r for r in replies if r.ok]
    if not ok:
        return {}
    references = [message_text(_expected_message(records[r.index])) or " " for r in ok]
    candidates = [message_text(r.message) or " " for r in ok]
    vectors = await embedder.embed([*references, *candidates], input_type="passage")
    cosines = embedding_cosine(vectors[: len(ok)], vectors[len(ok) :])
    return {r.index: cosine for r, cosine in zip(ok, cosines, strict=True)}


def _expected_message(record: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The production model's logged answer: ``response.choices[0].message``."""
    choices = (record.get("response") or {}).get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
        message = choices[0].get("message")
        return message if isinstance(message, Mapping) else None
    return None


def _score(
    *,
    scores: _Scores,
    replies: list[Reply],
    kind: EvalKind,
    workload_type: WorkloadType,
    model: str,
    config: EvaluationConfig,
    started_at: datetime,
    judged: Mapping[int, int | None] | None = None,
    embedded: Mapping[int, float] | None = None,
    throughput_rps: float | None = None,
    concurrency: int | None = None,
) -> EvalResult:
    """Metrics with their confidence intervals, latency distribution and token totals over
    index-ordered replies.

    ``judged`` (record index → judge rating) adds the judge metrics to each answered record,
    ``embedded`` (record index → cosine) the embedding similarity. ``throughput_rps`` is what
    the replay measured (requests answered per second with ``concurrency`` in flight).
    """
    ok = [r for r in replies if r.ok]
    failed = [r for r in replies if not r.ok]
    rows = [scores.rows[r.index] for r in ok]
    if judged is not None:
        for row, reply in zip(rows, ok, strict=True):
            row.update(judge_row(judged.get(reply.index)))
    if embedded is not None:
        for row, reply in zip(rows, ok, strict=True):
            row[EMBEDDING_COSINE] = embedded.get(reply.index)
    n_total = len(replies)
    status, error = StepStatus.COMPLETED, None
    if exceeds_failure_budget(n_total, len(failed), config.max_failure_rate):
        status = StepStatus.FAILED
        error = (
            f"{len(failed)} of {n_total} requests failed (first error: {failed[0].error})"
            if n_total
            else "the eval dataset has no records"
        )
    latencies = [r.latency_s for r in ok]
    first_tokens = [r.ttft_s for r in ok if r.ttft_s is not None]
    metrics = aggregate_scores(rows)
    intervals = metric_intervals(
        rows,
        level=config.confidence_level,
        resamples=config.bootstrap_resamples,
        seed=config.bootstrap_seed,
    )
    per_tool: dict[str, dict[str, float | int | None]] = {}
    if scores.tools is not None and ok:
        report = scores.tools.report()
        metrics.update(report.metrics())
        per_tool = {
            label: {
                "support": score.support,
                "predicted": score.predicted,
                "precision": score.precision,
                "recall": score.recall,
                "f1": score.f1,
            }
            for label, score in report.first_call.labels.items()
        }
    return EvalResult(
        kind=kind,
        status=status,
        model=model,
        metrics=metrics,
        per_tool=per_tool,
        n_total=n_total,
        n_scored=len(rows),
        n_failed=len(failed),
        latency_p50_s=percentile(latencies, 50),
        latency_p95_s=percentile(latencies, 95),
        tokens_in=sum(r.tokens_in for r in replies),
        tokens_out=sum(r.tokens_out for r in replies),
        error=error,
        started_at=started_at,
        finished_at=utcnow(),
        intervals=intervals,
        latency=latency_summary(latencies),
        ttft_p50_s=percentile(first_tokens, 50),
        ttft_p95_s=percentile(first_tokens, 95),
        tokens_per_s=output_tokens_per_second(sum(r.tokens_out for r in ok), sum(latencies)),
        throughput_rps=throughput_rps,
        concurrency=concurrency,
    )


def divergent_examples(
    records: Sequence[Mapping[str, Any]],
    replies: Sequence[Reply],
    rows: Mapping[int, Mapping[str, float | None]],
    workload_type: WorkloadType,
    n: int,
) -> list[dict[str, Any]]:
    """The ``n`` answered records that diverge most from production, as review lines."""
    answered = {r.index: r for r in replies if r.ok and r.index in rows}
    scored = (
        (
            index,
            record_divergence(
                workload_type,
                _expected_message(records[index]),
                reply.message,
                rows[index],
            ),
        )
        for index, reply in answered.items()
    )
    return [
        example_line(
            index,
            divergence,
            records[index],
            _expected_message(records[index]),
            answered[index].message,
            rows[index],
        )
        for index, divergence in most_divergent(scored, n)
    ]


async def write_examples(
    checkpoint: EvalCheckpoint, lines: Sequence[Mapping[str, Any]]
) -> ArtifactRef:
    """Write review lines next to the evaluation's checkpoint (same path on a retry)."""
    folder = checkpoint.prefix.rsplit("/", 1)[0] if "/" in checkpoint.prefix else ""
    path = f"{folder}/{EXAMPLES_FILE}" if folder else EXAMPLES_FILE
    data = b"".join(dumps_line(line) + b"\n" for line in lines)
    uri = await checkpoint.artifacts.write_bytes(path, data)
    return ArtifactRef(uri=uri, sha256=hashlib.sha256(data).hexdigest(), n_records=len(lines))
