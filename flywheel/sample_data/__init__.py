"""Deterministic, realistic sample workloads in the blueprint's log schema (blueprint-spec §1).

The demo, the quickstart and the tests need logs that look like a real application's traffic
without shipping a data set: this package makes them from templates, entity lists and a seeded
random generator, so the same seed always gives the same records and another seed gives others.

Two workloads are offered:

* :func:`generate_customer_service_logs`: a tool-calling customer-service agent for an online
  shop (nine tools, uneven tool mix, a share of plain answers, multi-turn context). Every tool
  call's argument values are copied from, or follow plainly from, the user's words, so a small
  model can learn the mapping by fine-tuning.
* :func:`generate_generic_logs`: a workload without tools (short answers to shop FAQ questions).

Each record is one logged LLM call: ``workload_id``, ``client_id``, ``timestamp`` (ISO 8601 UTC,
strictly increasing), ``request`` (the OpenAI ``chat.completions.create`` payload) and
``response`` (an OpenAI ``ChatCompletion``, tool-call arguments as JSON *strings*, as the raw API
returns them). Generation is pure; :func:`write_jsonl` is the only function that touches disk.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from flywheel.sample_data.faq import generate_generic_logs
from flywheel.sample_data.records import DEFAULT_START, generate_customer_service_logs
from flywheel.sample_data.tools import COMPACT_TOOLS, CUSTOMER_SERVICE_TOOLS

__all__ = [
    "COMPACT_TOOLS",
    "CUSTOMER_SERVICE_TOOLS",
    "DEFAULT_START",
    "generate_customer_service_logs",
    "generate_generic_logs",
    "write_jsonl",
]


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    """Write one compact JSON object a line (orjson) to ``path``; return how many were written.

    Parent folders are created; an existing file is replaced.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("wb") as fh:
        for record in records:
            fh.write(orjson.dumps(record))
            fh.write(b"\n")
            count += 1
    return count
