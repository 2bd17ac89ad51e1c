"""LLM-as-judge similarity for the built-in evaluator: ask a judge model to rate each reply.

The judge is an OpenAI-compatible chat endpoint (``llm_judge_config``: ``deployment_type:
remote``). Each candidate answer is rated 1–10 against the production model's logged answer with
:func:`~flywheel.scoring.judge.judge_messages` and read with
:func:`~flywheel.scoring.judge.parse_judge_score`. A judge that fails for one record (after the
client's retries) never fails the evaluation: that record's rating is None, counted as unparsed
in the metrics, and the failure is counted in :attr:`Judge.counts`. The API key is read on the
worker from the environment and only ever sent as a bearer token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flywheel.clients.closing import AsyncClosing
from flywheel.clients.llm import ChatClient
from flywheel.config import EvaluationConfig, LLMJudgeConfig, read_secret
from flywheel.errors import ConfigError, RemoteCallError, UnsupportedOperation
from flywheel.schemas import WorkloadType
from flywheel.scoring.judge import judge_messages, parse_judge_score
from flywheel.scoring.metrics import message_text

__all__ = ["Judge", "JudgeCounts", "JudgePair", "judge_base_url", "last_user_text", "open_judge"]

log = logging.getLogger(__name__)

LOCAL_JUDGE_REASON = (
    "llm_judge_config.deployment_type is `local`, but a judge NIM can only be deployed through "
    "the nemo platform (NeMo microservices), which does not deploy judges yet. Meanwhile point "
    "the flywheel at a running judge: set llm_judge_config.deployment_type: remote and url: its "
    "OpenAI-compatible chat-completions URL (for example https://…/v1/chat/completions)"
)
_CHAT_PATH = "/chat/completions"


@dataclass(frozen=True)
class JudgePair:
    """One reply to rate: the trusted reference, the candidate's answer, and the request."""

    reference: str
    candidate: str
    conversation: str | None = None


@dataclass
class JudgeCounts:
    """What a :class:`Judge` has done so far (all its :meth:`Judge.judge` calls together)."""

    judged: int = 0
    """Pairs sent to the judge."""
    failed: int = 0
    """Judge calls that failed after the client's retries (their rating is None)."""
    unparsed: int = 0
    """Judge replies with no readable 1–10 rating (their rating is None)."""


def judge_base_url(url: str) -> str:
    """The ``…/v1`` base URL for :class:`ChatClient` from the configured judge URL.

    The blueprint configures the full chat-completions URL (``…/v1/chat/completions``); a bare
    ``…/v1`` base is accepted too.
    """
    base = url.strip().rstrip("/")
    return base.removesuffix(_CHAT_PATH)


def last_user_text(request: Mapping[str, Any] | None) -> str | None:
    """The text of the last user turn of a logged chat request (None when it has none)."""
    messages = request.get("messages") if isinstance(request, Mapping) else None
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, Mapping) and message.get("role") == "user":
            return message_text(message)
    return None


class Judge(AsyncClosing):
    """Rates candidate answers against reference answers with a remote judge model."""

    def __init__(
        self,
        config: LLMJudgeConfig,
        *,
        api_key: str | None = None,
        timeout_s: float = 120,
        max_retries: int = 3,
        retry_backoff_s: float = 0.5,
        max_connections: int = 16,
    ) -> None:
        if config.deployment_type == "local":
            raise UnsupportedOperation(LOCAL_JUDGE_REASON)
        if not config.url:
            raise ConfigError(
                "llm_judge_config has no url: set it to the judge's chat-completions URL"
            )
        self.model = config.model_name
        self.counts = JudgeCounts()
        self._client = ChatClient(
            judge_base_url(config.url),
            api_key=api_key,
            timeout_s=timeout_s,
            max_retries=max_retries,
            retry_backoff_s=retry_backoff_s,
            max_connections=max_connections,
        )

    @classmethod
    def from_config(cls, config: LLMJudgeConfig, settings: EvaluationConfig) -> Judge:
        """A judge for ``config``, its API key read from ``config.api_key_env`` on the worker.

        Timeouts, retries and connections follow the evaluation settings.
        """
        if config.deployment_type == "local":
            raise UnsupportedOperation(LOCAL_JUDGE_REASON)
        api_key = read_secret(config.api_key_env)
        if config.api_key_env and api_key is None:
            raise ConfigError(
                f"llm_judge_config names api_key_env {config.api_key_env}, but that environment "
                "variable is not set on the worker: set it where the worker runs"
            )
        return cls(
            config,
            api_key=api_key,
            timeout_s=settings.request_timeout_s,
            max_retries=settings.max_retries,
            retry_backoff_s=settings.retry_backoff_s,
            max_connections=settings.concurrency,
        )

    async def aclose(self) -> None:
        """Close the judge's connections."""
        await self._client.aclose()

    async def judge(
        self,
        pairs: Sequence[JudgePair],
        *,
        concurrency: int,
        heartbeat: Callable[[dict[str, Any]], None] | None = None,
        on_rating: Callable[[int, int | None], Awaitable[None]] | None = None,
    ) -> list[int | None]:
        """The judge's 1–10 rating of each pair, in the order of ``pairs`` (None: no rating).

        At most ``concurrency`` calls run at once. A failed call or an unreadable reply gives
        None and is counted in :attr:`counts`; neither raises. ``heartbeat`` (if given) gets
        the progress after every rating; if it raises (cancellation), the calls in flight are
        cancelled and the exception propagates. ``on_rating(position, rating)`` is awaited
        after every answered call (not after failed ones), e.g. to checkpoint ratings.
        """
        scores: list[int | None] = [None] * len(pairs)
        if not pairs:
            return scores
        queue: asyncio.Queue[int] = asyncio.Queue()
        for index in range(len(pairs)):
            queue.put_nowait(index)
        done = failed = unparsed = 0

        async def worker() -> None:
            nonlocal done, failed, unparsed
            while not queue.empty():
                index = queue.get_nowait()
                score, call_failed = await self._rate(pairs[index])
                scores[index] = score
                if on_rating is not None and not call_failed:
                    await on_rating(index, score)
                done += 1
                failed += call_failed
                unparsed += score is None and not call_failed
                if heartbeat is not None:
                    heartbeat(
                        {"stage": "judging", "judged": done, "total": len(pairs), "failed": failed}
                    )

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(min(max(1, concurrency), len(pairs))):
                    group.create_task(worker())
        except BaseExceptionGroup as group_error:
            # Only a heartbeat (or cancellation) can raise here: re-raise its first exception.
            raise group_error.exceptions[0] from None
        finally:
            self.counts.judged += done
            self.counts.failed += failed
            self.counts.unparsed += unparsed
        if failed or unparsed:
            log.warning(
                "judge %s: %d of %d ratings missing (%d calls failed, %d replies unreadable)",
                self.model,
                failed + unparsed,
                len(pairs),
                failed,
                unparsed,
            )
        return scores

    async def _rate(self, pair: JudgePair) -> tuple[int | None, bool]:
        """(rating or None, whether the call failed) for one pair."""
        payload = {
            "model": self.model,
            "messages": judge_messages(
                pair.reference, pair.candidate, conversation=pair.conversation
            ),
            "temperature": 0,
        }
        try:
            reply = await self._client.chat(payload)
        except RemoteCallError as exc:
            # The client's messages never hold the API key; still log only the status.
            log.debug("judge call failed (HTTP status %s)", exc.status_code)
            return None, True
        choices = reply.response.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        message = choice.get("message") if isinstance(choice, Mapping) else None
        return parse_judge_score(message_text(message)), False


@contextlib.asynccontextmanager
async def open_judge(
    config: LLMJudgeConfig | None, settings: EvaluationConfig, *, workload_type: WorkloadType
) -> AsyncIterator[Judge | None]:
    """The run's judge, closed on the way out; None when there is nothing for it to do.

    Only generic workloads are judged (tool calls are compared exactly). A ``local`` judge (a
    NIM deployed through NeMo, as in the blueprint's config) is skipped with a warning until the
    nemo platform can deploy it, so a blueprint config still evaluates. Raises
    :class:`~flywheel.errors.ConfigError` when the judge's API key variable is unset.
    """
    if config is None or workload_type != WorkloadType.GENERIC:
        yield None
        return
    if config.deployment_type == "local":
        log.warning(
            "llm_judge_config.deployment_type is local: a judge NIM needs the nemo platform, so "
            "this evaluation is not judged; set deployment_type: remote and url to judge now"
        )
        yield None
        return
    async with Judge.from_config(config, settings) as judge:
        yield judge
