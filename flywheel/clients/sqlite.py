"""What the SQLite log and result stores share: URL parsing, connecting, a lazy connection.

Both stores may use the same file: each opens its own connection with a busy timeout, and WAL
lets readers and one writer work at the same time.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiosqlite

from flywheel.errors import ConfigError, ConnectionFailed

__all__ = ["DEFAULT_BUSY_TIMEOUT_MS", "LazySQLite", "connect_sqlite", "sqlite_path_from_url"]

DEFAULT_BUSY_TIMEOUT_MS = 10_000
"""How long a connection waits for another connection's write lock before failing."""

_MEMORY = ":memory:"


def sqlite_path_from_url(url: str, *, what: str) -> Path | str:
    """The file named by ``sqlite:///PATH`` (relative) or ``sqlite:////PATH`` (absolute).

    ``~`` is expanded; ``sqlite:///:memory:`` gives a private in-memory database. ``what`` names
    the store in the error message.
    """
    prefix = "sqlite:///"
    if not url.lower().startswith(prefix):
        raise ConfigError(
            f"invalid {what} URL {url!r}: expected sqlite:///relative/path.db or "
            "sqlite:////absolute/path.db"
        )
    raw = url[len(prefix) :].split("?", 1)[0]
    if not raw or raw.endswith("/"):
        raise ConfigError(f"invalid {what} URL {url!r}: it names no database file")
    if raw == _MEMORY:
        return _MEMORY
    return Path(raw).expanduser()


async def connect_sqlite(
    path: Path | str, *, what: str, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS
) -> aiosqlite.Connection:
    """Open ``path`` in autocommit mode with WAL and a busy timeout, creating parent folders.

    Raises ConnectionFailed naming the file when it cannot be created or is not a database.
    """
    if isinstance(path, Path):
        try:
            await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        except OSError as exc:
            raise ConnectionFailed(
                f"cannot create the folder for the SQLite {what} {path}: {exc.strerror or exc}; "
                "choose a writable location"
            ) from None
    try:
        db = await aiosqlite.connect(str(path), isolation_level=None)
    except sqlite3.Error as exc:
        raise ConnectionFailed(
            f"cannot open the SQLite {what} {path}: {exc}; check that the path is writable"
        ) from None
    try:
        await db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        if path != _MEMORY:
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.Error as exc:
        await db.close()
        raise ConnectionFailed(
            f"cannot use {path} as the SQLite {what}: {exc}; point the URL at a new file or an "
            "existing flywheel database"
        ) from None
    return db


class LazySQLite:
    """One connection to ``path``, opened on first use with the ``schema`` script applied.

    ``what`` names the store and ``table`` its table in error messages.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        what: str,
        table: str,
        schema: str,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    ) -> None:
        self.path = path
        self._what = what
        self._table = table
        self._schema = schema
        self._busy_timeout_ms = busy_timeout_ms
        self._db: aiosqlite.Connection | None = None
        self._open_lock = asyncio.Lock()
        self._closed = False

    async def connection(self) -> aiosqlite.Connection:
        """The open connection; raises ConnectionFailed once closed or if the schema fails."""
        if self._db is not None:
            return self._db
        async with self._open_lock:
            if self._closed:
                raise ConnectionFailed(f"the SQLite {self._what} {self.path} is closed")
            if self._db is None:
                db = await connect_sqlite(
                    self.path, what=self._what, busy_timeout_ms=self._busy_timeout_ms
                )
                try:
                    await db.executescript(self._schema)
                except sqlite3.Error as exc:
                    await db.close()
                    raise ConnectionFailed(
                        f"cannot create the {self._table} table in {self.path}: {exc}"
                    ) from None
                self._db = db
            return self._db

    async def aclose(self) -> None:
        """Close the connection (idempotent); later :meth:`connection` calls fail."""
        async with self._open_lock:
            self._closed = True
            db, self._db = self._db, None
        if db is not None:
            await db.close()
