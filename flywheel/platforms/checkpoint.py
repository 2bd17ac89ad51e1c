"""An evaluation's checkpoint: replies and judge ratings in the artifact store, chunk by chunk,
so a retried evaluation resumes instead of asking again."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from flywheel.clients.artifacts import ArtifactStore, dumps_line, safe_path_part
from flywheel.platforms.replies import Reply
from flywheel.schemas import EvalKind

REPLY_CHUNK = "chunk-"
JUDGE_CHUNK = "judge-"
"""File name prefixes of the checkpoint's reply and judge-rating chunks."""


def checkpoint_prefix(run_id: str, candidate: str, kind: EvalKind | str) -> str:
    """Where the replies of one evaluation are checkpointed in the artifact store."""
    kind_name = kind.value if isinstance(kind, EvalKind) else str(kind)
    return (
        f"runs/{safe_path_part(run_id)}/{safe_path_part(candidate)}/"
        f"{safe_path_part(kind_name)}/replies"
    )


class EvalCheckpoint:
    """Replies persisted in numbered JSONL chunks ``{prefix}/chunk-{n:06d}.jsonl``, judge
    ratings in ``{prefix}/judge-{n:06d}.jsonl``.

    Chunks are only ever added, never rewritten; on load a later chunk wins for the same index
    (a request that failed before and succeeded on resumption).
    """

    def __init__(self, artifacts: ArtifactStore, prefix: str) -> None:
        self.artifacts = artifacts
        self.prefix = prefix.strip("/")
        self._next: int | None = None
        self._next_ratings: int | None = None
        self._lock = asyncio.Lock()

    async def load(self) -> dict[int, Reply]:
        """Every checkpointed reply, by record index."""
        replies: dict[int, Reply] = {}
        last = -1
        for number, path in await self._chunks():
            last = max(last, number)
            for line in await self.artifacts.read_jsonl(path):
                reply = Reply.from_json(line)
                replies[reply.index] = reply
        self._next = last + 1
        return replies

    async def append(self, replies: Sequence[Reply]) -> None:
        """Write ``replies`` as the next chunk (nothing when empty)."""
        if not replies:
            return
        async with self._lock:
            if self._next is None:
                chunks = await self._chunks()
                self._next = chunks[-1][0] + 1 if chunks else 0
            path = f"{self.prefix}/{REPLY_CHUNK}{self._next:06d}.jsonl"
            data = b"".join(dumps_line(r.to_json()) + b"\n" for r in replies)
            await self.artifacts.write_bytes(path, data)
            self._next += 1

    async def load_ratings(self) -> dict[int, int | None]:
        """The judge ratings checkpointed so far, by record index (None: an unreadable reply)."""
        ratings: dict[int, int | None] = {}
        chunks = await self._chunks(JUDGE_CHUNK)
        for _, path in chunks:
            for line in await self.artifacts.read_jsonl(path):
                rating = line.get("rating")
                ratings[int(line["index"])] = int(rating) if rating is not None else None
        self._next_ratings = chunks[-1][0] + 1 if chunks else 0
        return ratings

    async def append_ratings(self, ratings: Sequence[tuple[int, int | None]]) -> None:
        """Write ``(record index, rating)`` pairs as the next judge chunk (nothing when empty)."""
        if not ratings:
            return
        async with self._lock:
            if self._next_ratings is None:
                chunks = await self._chunks(JUDGE_CHUNK)
                self._next_ratings = chunks[-1][0] + 1 if chunks else 0
            path = f"{self.prefix}/{JUDGE_CHUNK}{self._next_ratings:06d}.jsonl"
            data = b"".join(
                dumps_line({"index": index, "rating": rating}) + b"\n" for index, rating in ratings
            )
            await self.artifacts.write_bytes(path, data)
            self._next_ratings += 1

    async def _chunks(self, kind: str = REPLY_CHUNK) -> list[tuple[int, str]]:
        found = []
        for path in await self.artifacts.list(self.prefix):
            name = path.rsplit("/", 1)[-1]
            if name.startswith(kind) and name.endswith(".jsonl"):
                number = name[len(kind) : -len(".jsonl")]
                if number.isdigit():
                    found.append((int(number), path))
        return sorted(found)
