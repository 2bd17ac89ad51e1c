"""Connecting to Temporal, with the pydantic data converter and the flywheel's search attributes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, TLSConfig

from flywheel.config import TemporalConfig, read_secret
from flywheel.search_attributes import (
    BEST_CANDIDATE,
    BEST_EVAL_KIND,
    BEST_SCORE,
    CLIENT_ID,
    RESULT_SEARCH_ATTRIBUTES,
    SEARCH_ATTRIBUTES,
    WORKLOAD_ID,
)

__all__ = [
    "BEST_CANDIDATE",
    "BEST_EVAL_KIND",
    "BEST_SCORE",
    "CLIENT_ID",
    "RESULT_SEARCH_ATTRIBUTES",
    "SEARCH_ATTRIBUTES",
    "WORKLOAD_ID",
    "cli_type_name",
    "connect",
    "ensure_search_attributes",
    "registered_result_attributes",
    "run_search_attributes",
    "tls_config",
]
from flywheel.errors import ConfigError, ConnectionFailed

_CLI_TYPE_NAMES = {
    IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD: "Keyword",
    IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE: "Double",
}


def cli_type_name(key: SearchAttributeKey[Any]) -> str:
    """The type name the ``temporal`` CLI takes for ``key`` (``--search-attribute Name=Type``)."""
    return _CLI_TYPE_NAMES[IndexedValueType.ValueType(int(key.indexed_value_type))]


def run_search_attributes(workload_id: str, client_id: str | None) -> TypedSearchAttributes:
    pairs = [SearchAttributePair(WORKLOAD_ID, workload_id)]
    if client_id:
        pairs.append(SearchAttributePair(CLIENT_ID, client_id))
    return TypedSearchAttributes(pairs)


async def connect(config: TemporalConfig) -> Client:
    """A client for the configured Temporal; a clear error when it cannot be reached."""
    api_key = read_secret(config.api_key_env)
    if config.api_key_env and api_key is None:
        raise ConfigError(
            f"temporal.api_key_env names {config.api_key_env}, which is not set in the environment"
        )
    try:
        return await Client.connect(
            config.address,
            namespace=config.namespace,
            api_key=api_key,
            tls=tls_config(config) or bool(api_key),
            data_converter=pydantic_data_converter,
        )
    except RuntimeError as exc:
        raise ConnectionFailed(
            f"cannot reach Temporal at {config.address} (namespace {config.namespace}): "
            f"{_short(exc)}. Start a local one with `flywheel dev`, or set temporal.address."
        ) from None


def tls_config(config: TemporalConfig) -> TLSConfig | bool:
    """How to connect: plain (False), TLS with the system's roots (True), or a TLSConfig that
    carries an mTLS client certificate, a private CA and/or the server name to expect."""
    if not config.uses_tls:
        return False
    custom = (config.tls_client_cert_path, config.tls_server_ca_path, config.tls_server_name)
    if all(value is None for value in custom):
        return True
    return TLSConfig(
        server_root_ca_cert=_read_pem(config.tls_server_ca_path, "tls_server_ca_path"),
        domain=config.tls_server_name,
        client_cert=_read_pem(config.tls_client_cert_path, "tls_client_cert_path"),
        client_private_key=_read_pem(config.tls_client_key_path, "tls_client_key_path"),
    )


def _read_pem(path: Path | None, key: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.expanduser().read_bytes()
    except OSError as exc:
        raise ConfigError(f"temporal.{key}: cannot read {path}: {exc.strerror}") from None


async def ensure_search_attributes(client: Client) -> list[str]:
    """Register the flywheel's search attributes where missing; return the names added."""
    try:
        existing = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        missing = [
            key
            for key in SEARCH_ATTRIBUTES
            if key.name not in existing.custom_attributes
            and key.name not in existing.system_attributes
        ]
        if missing:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(
                    namespace=client.namespace,
                    search_attributes={
                        key.name: IndexedValueType.ValueType(int(key.indexed_value_type))
                        for key in missing
                    },
                )
            )
        return [key.name for key in missing]
    except RPCError as exc:
        raise ConnectionFailed(f"cannot register search attributes: {exc.message}") from None


async def registered_result_attributes(client: Client) -> list[str]:
    """Which of :data:`RESULT_SEARCH_ATTRIBUTES` the namespace has, with the right type.

    A run upserts only these: upserting an unregistered attribute would fail its workflow task.
    A server that cannot say (no operator service, no permission) gives ``[]``.
    """
    try:
        existing = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace),
            timeout=timedelta(seconds=10),
        )
    except RPCError:
        return []
    return [
        key.name
        for key in RESULT_SEARCH_ATTRIBUTES
        if existing.custom_attributes.get(key.name) == int(key.indexed_value_type)
    ]


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]
