"""Thin clients for NeMo Microservices (NMP), built on the ``nemo-microservices`` SDK and, for
dataset files, ``huggingface_hub`` against the Data Store.

:class:`NemoClient` bundles them for one ``nmp_config``: ``datasets`` (Data Store + Entity
Store), ``deployments`` (DMS), ``customizer`` (Customizer) and ``evaluator`` (Evaluator). Every
call is retried where that is safe and fails as a :class:`~flywheel.errors.RemoteCallError`
naming the call; see :mod:`.errors` and :mod:`.connection`.
"""

from __future__ import annotations

from flywheel.clients.closing import AsyncClosing
from flywheel.clients.nemo.connection import NemoConnection, nim_root, nim_v1
from flywheel.clients.nemo.customizer import Customizer
from flywheel.clients.nemo.datastore import DatasetFile, DataStore
from flywheel.clients.nemo.deployments import Deployments, DeploymentSpec
from flywheel.clients.nemo.evaluator import EvaluatorJobs
from flywheel.config import NMPConfig

__all__ = [
    "DataStore",
    "DatasetFile",
    "DeploymentSpec",
    "NemoClient",
    "NemoConnection",
    "nim_root",
    "nim_v1",
]


class NemoClient(AsyncClosing):
    """Everything the ``nemo`` platform calls on one NMP installation."""

    def __init__(self, conn: NemoConnection) -> None:
        self.conn = conn
        self.datasets = DataStore(conn)
        self.deployments = Deployments(conn)
        self.customizer = Customizer(conn)
        self.evaluator = EvaluatorJobs(conn)

    @classmethod
    def from_config(cls, config: NMPConfig) -> NemoClient:
        """A client for ``config``; API key and Data Store token come from the environment
        variables it names (read here, on the worker, never stored in config or history)."""
        return cls(NemoConnection.from_config(config))

    async def aclose(self) -> None:
        await self.conn.aclose()
