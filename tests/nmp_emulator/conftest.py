"""Fixtures for the emulator's own tests: a fast emulator, the real SDK, the real HfApi."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from huggingface_hub import HfApi
from nemo_microservices import AsyncNeMoMicroservices

from tests.support import nmp
from tests.support.nmp import HF_TOKEN, allow_hf_hub, make_client
from tests.support.nmp_emulator import EmulatorConfig, ManualClock, NMPEmulator

nmp_emulator = nmp.nmp_emulator  # fixtures shared with the rest of the suite
nmp_client = nmp.nmp_client


@pytest.fixture
def manual_nmp() -> Iterator[NMPEmulator]:
    """An emulator on a ``ManualClock``: time moves only with ``manual_nmp.advance(s)``."""
    emulator = NMPEmulator(EmulatorConfig(clock=ManualClock())).start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def manual_client(manual_nmp: NMPEmulator) -> AsyncNeMoMicroservices:
    return make_client(manual_nmp)


@pytest.fixture
def hf(nmp_emulator: NMPEmulator, monkeypatch: pytest.MonkeyPatch) -> HfApi:
    """The real ``HfApi`` on the emulator's Data Store (like ``tests.support.nmp.nmp_hf``)."""
    allow_hf_hub(monkeypatch)
    return HfApi(endpoint=nmp_emulator.hf_endpoint, token=HF_TOKEN)
