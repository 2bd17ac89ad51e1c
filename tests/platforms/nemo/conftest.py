"""Fixtures for the nemo platform's tests: a fast NMP emulator, an artifact store, the platform.

Everything goes over real HTTP: the platform's own SDK client and HfApi talk to the emulator on
loopback. Poll intervals and retry back-offs are tiny, so the whole package runs in seconds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from flywheel.clients.artifacts import ArtifactStore
from flywheel.platforms.nemo import NemoPlatform
from tests.platforms.nemo.support import HF_ENV, order_responder
from tests.support import nmp
from tests.support.nmp import HF_TOKEN, allow_hf_hub
from tests.support.nmp_emulator import NMPEmulator

nmp_emulator = nmp.nmp_emulator  # the shared fixtures (assignments keep ruff's F811 quiet)
nmp_client = nmp.nmp_client


@pytest.fixture(autouse=True)
def _online(monkeypatch: pytest.MonkeyPatch) -> None:
    """huggingface_hub online (other tests set HF_HUB_OFFLINE) and the Data Store token set."""
    allow_hf_hub(monkeypatch)
    monkeypatch.setenv(HF_ENV, HF_TOKEN)


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path.as_uri())


@pytest_asyncio.fixture
async def platform(store: ArtifactStore) -> AsyncIterator[NemoPlatform]:
    platform = NemoPlatform(store)
    try:
        yield platform
    finally:
        await platform.aclose()


@pytest.fixture
def emulator(nmp_emulator: NMPEmulator) -> Iterator[NMPEmulator]:
    """The emulator answering order questions like a slightly imperfect candidate."""
    nmp_emulator.responder = order_responder
    yield nmp_emulator
