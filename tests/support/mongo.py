"""Run a real MongoDB wire-protocol server (nx-27017, MongoDB on SQLite) for tests.

The server runs on a free loopback port with its data, log and pid files in a folder of the
caller's choosing, and is stopped by the PID of the process this helper started.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from tests.support.processes import stop_process

__all__ = ["MongoServer", "free_port"]

NX_27017 = Path(sys.executable).parent / "nx-27017"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MongoServer:
    """An nx-27017 process on 127.0.0.1; use as a context manager or call start()/stop()."""

    def __init__(self, data_dir: Path, *, start_timeout_s: float = 30.0) -> None:
        self.data_dir = data_dir
        self.start_timeout_s = start_timeout_s
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``mongodb://127.0.0.1:PORT`` of the running server."""
        if self.port is None:
            raise RuntimeError("the MongoDB test server is not running")
        return f"mongodb://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self, attempts: int = 3) -> Self:
        """Start the server and wait until it answers a ping; retry on a port taken meanwhile."""
        if not NX_27017.exists():
            raise RuntimeError(
                f"{NX_27017} not found: install the test extras (pip install -e .[test])"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        errors: list[str] = []
        for _ in range(attempts):
            port = free_port()
            # Console output goes to a file: the server logs every command, and a pipe nobody
            # reads would fill up and block it.
            with (self.data_dir / "nx-27017.console").open("ab") as console:
                process = subprocess.Popen(
                    [
                        str(NX_27017),
                        "--host",
                        "127.0.0.1",
                        "-p",
                        str(port),
                        "--data-dir",
                        str(self.data_dir),
                        # Own pid and log files: the defaults in /tmp are shared by every instance.
                        "--pid-file",
                        str(self.data_dir / "nx-27017.pid"),
                        "--log-file",
                        str(self.data_dir / "nx-27017.log"),
                    ],
                    stdout=console,
                    stderr=subprocess.STDOUT,
                )
            self._process, self.port = process, port
            problem = self._wait_ready()
            if problem is None:
                return self
            errors.append(problem)
            self.stop()
        raise RuntimeError("nx-27017 did not start: " + " | ".join(errors))

    def _wait_ready(self) -> str | None:
        """None once the server answers a ping, else why it did not."""
        assert self._process is not None
        deadline = time.monotonic() + self.start_timeout_s
        client: MongoClient[dict[str, Any]] = MongoClient(
            self.url, serverSelectionTimeoutMS=250, connectTimeoutMS=250
        )
        with client:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    console = (self.data_dir / "nx-27017.console").read_bytes()
                    return f"exited with {self._process.returncode}: {console.decode()[-500:]}"
                try:
                    client.admin.command("ping")
                    return None
                except PyMongoError:
                    time.sleep(0.05)
        return f"no answer on port {self.port} within {self.start_timeout_s} s"

    def stop(self, timeout_s: float = 10.0) -> None:
        """Terminate the process this helper started (kill it if it does not exit in time)."""
        process, self._process, self.port = self._process, None, None
        if process is not None:
            stop_process(process, timeout_s)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
