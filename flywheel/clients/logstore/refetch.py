"""Curation's survivors kept by their key in the log store; fetched again only where needed.

Pass one of curation keeps every surviving record's training line; the full record is needed
again only for the few that become eval records or few-shot examples. Rather than hold (or park
on disk) hundreds of megabytes of raw JSON for that, the keeper holds each survivor's key and
fetches the records pass two asks for, a page at a time, with :meth:`RefetchingKeeper.load`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flywheel.clients.logstore import LogStore, RawLog, RecordKey

FETCH_PAGE = 1000
"""Records fetched per log-store call."""


class RefetchingKeeper:
    """Survivors by position: a store key (or an already parsed record) each, with the records
    loaded by :meth:`load` readable by position (a :class:`~flywheel.curation.pipeline.RawKeeper`).
    """

    def __init__(self, store: LogStore) -> None:
        self._store = store
        self._items: list[RecordKey | dict[str, Any]] = []
        self._loaded: dict[int, RawLog] = {}

    def append(self, item: RecordKey | dict[str, Any], /) -> None:
        self._items.append(item)

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, position: int, /) -> RawLog | dict[str, Any]:
        item = self._items[position]
        if isinstance(item, dict):
            return item
        try:
            return self._loaded[position]
        except KeyError:
            raise LookupError(
                f"the record at position {position} was not loaded (call load() first)"
            ) from None

    async def load(self, positions: Iterable[int]) -> None:
        """Fetch the records at ``positions`` from the store (those not at hand already)."""
        wanted = [
            position
            for position in dict.fromkeys(positions)
            if position not in self._loaded and not isinstance(self._items[position], dict)
        ]
        for start in range(0, len(wanted), FETCH_PAGE):
            page = wanted[start : start + FETCH_PAGE]
            keys = [self._items[position] for position in page]
            docs = await self._store.fetch_raw(keys)  # type: ignore[arg-type]
            self._loaded.update(zip(page, docs, strict=True))

    def forget(self, positions: Iterable[int]) -> None:
        """Drop loaded records that are no longer needed (their keys stay)."""
        for position in positions:
            self._loaded.pop(position, None)
