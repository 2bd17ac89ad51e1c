"""Pytest fixtures for the NMP emulator, usable from any test module or conftest:

    from tests.support import nmp

    nmp_emulator = nmp.nmp_emulator  # (assignments, so ruff's F811 stays quiet)
    nmp_client = nmp.nmp_client
    nmp_hf = nmp.nmp_hf

``nmp_emulator`` is a started ``NMPEmulator`` with ``FAST_DURATIONS``; ``nmp_client`` an
``AsyncNeMoMicroservices`` pointed at it (no SDK retries, so injected faults surface; strict
response validation); ``nmp_hf`` the real ``HfApi`` on its Data Store (token ``HF_TOKEN``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from huggingface_hub import HfApi
from huggingface_hub import constants as hf_constants
from nemo_microservices import AsyncNeMoMicroservices

from tests.support.nmp_emulator import Durations, EmulatorConfig, NMPEmulator

HF_TOKEN = "hf-test-token"

FAST_DURATIONS = Durations(
    deploy=0.2,
    customization_queue=0.05,
    customization=0.4,
    evaluation_queue=0.05,
    evaluation=0.2,
    model_sync=0.05,
)


def start_emulator(**overrides: Any) -> NMPEmulator:
    """A started emulator with fast durations (``overrides`` go to ``EmulatorConfig``)."""
    overrides.setdefault("durations", FAST_DURATIONS)
    return NMPEmulator(EmulatorConfig(**overrides)).start()


def make_client(
    emulator: NMPEmulator, *, max_retries: int = 0, strict: bool = True, **kwargs: Any
) -> AsyncNeMoMicroservices:
    """An SDK client for the emulator; ``strict`` validates every response against the SDK's
    types (a shape the SDK cannot parse fails loudly instead of leaving fields unset)."""
    return AsyncNeMoMicroservices(
        base_url=emulator.base_url,
        inference_base_url=emulator.inference_base_url,
        max_retries=max_retries,
        timeout=10.0,
        _strict_response_validation=strict,
        **kwargs,
    )


async def wait_until(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool],
    *,
    within: float = 5.0,
    interval: float = 0.02,
) -> None:
    """Poll ``check`` (sync or async) until it is true; ``AssertionError`` after ``within`` s."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(interval)


@pytest.fixture
def nmp_emulator() -> Iterator[NMPEmulator]:
    emulator = start_emulator()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def nmp_client(nmp_emulator: NMPEmulator) -> AsyncNeMoMicroservices:
    return make_client(nmp_emulator)


@pytest.fixture
def nmp_hf(nmp_emulator: NMPEmulator, monkeypatch: pytest.MonkeyPatch) -> HfApi:
    """The real ``HfApi`` on the emulator's Data Store, in online mode."""
    allow_hf_hub(monkeypatch)
    return HfApi(endpoint=nmp_emulator.hf_endpoint, token=HF_TOKEN)


def allow_hf_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """Undo ``HF_HUB_OFFLINE`` for one test: huggingface_hub reads it once, at import, and
    then refuses every request (other tests set it while loading local models)."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
