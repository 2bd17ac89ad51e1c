"""An emulator of NVIDIA NeMo Microservices (NMP) for tests: one loopback HTTP server.

    from tests.support.nmp_emulator import NMPEmulator, EmulatorConfig, Durations, Faults

    with NMPEmulator(EmulatorConfig(durations=Durations(deploy=0.1))) as nmp:
        client = AsyncNeMoMicroservices(base_url=nmp.base_url,
                                        inference_base_url=nmp.inference_base_url)
        hf = HfApi(endpoint=nmp.hf_endpoint, token="t")
        ...
        assert nmp.customization_jobs_created("my-job") == 1
        assert nmp.live_deployments() == []

See ``server.py`` for the public API, ``faults.py`` for what can go wrong, and ``config.py`` for
the hooks (chat responder, evaluation scorer).
"""

from tests.support.nmp_emulator.config import (
    DEFAULT_SCORE,
    DEFAULT_SCORES,
    EmulatorConfig,
    Responder,
    ScoreContext,
    Scorer,
)
from tests.support.nmp_emulator.evaluator import replay_tool_calling_scorer
from tests.support.nmp_emulator.faults import ANY, Durations, Faults
from tests.support.nmp_emulator.inference import default_responder
from tests.support.nmp_emulator.server import NMPEmulator
from tests.support.nmp_emulator.state import LoggedRequest, ManualClock

__all__ = [
    "ANY",
    "DEFAULT_SCORE",
    "DEFAULT_SCORES",
    "Durations",
    "EmulatorConfig",
    "Faults",
    "LoggedRequest",
    "ManualClock",
    "NMPEmulator",
    "Responder",
    "ScoreContext",
    "Scorer",
    "default_responder",
    "replay_tool_calling_scorer",
]
