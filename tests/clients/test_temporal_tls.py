"""Temporal connection security: plain, TLS, mTLS client certificates (Temporal Cloud), private CA.

The settings come from the environment the way a Kubernetes pod sets them (the chart mounts the
certificate Secret and points these keys at its files).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.service import TLSConfig

from flywheel.clients.temporal import connect, tls_config
from flywheel.config import TemporalConfig, load_settings
from flywheel.errors import ConfigError, ConnectionFailed

CERT = b"-----BEGIN CERTIFICATE-----\nclient\n-----END CERTIFICATE-----\n"
KEY = b"-----BEGIN PRIVATE KEY-----\nkey\n-----END PRIVATE KEY-----\n"
CA = b"-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n"


@pytest.fixture
def pem_files(tmp_path: Path) -> dict[str, Path]:
    files = {"tls.crt": CERT, "tls.key": KEY, "ca.crt": CA}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return {name: tmp_path / name for name in files}


def test_plain_and_system_roots() -> None:
    assert tls_config(TemporalConfig()) is False
    assert tls_config(TemporalConfig(tls=True)) is True


def test_mtls_from_environment(
    tmp_path: Path, pem_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLYWHEEL_TEMPORAL__ADDRESS", "my-ns.a1b2c.tmprl.cloud:7233")
    monkeypatch.setenv("FLYWHEEL_TEMPORAL__TLS_CLIENT_CERT_PATH", str(pem_files["tls.crt"]))
    monkeypatch.setenv("FLYWHEEL_TEMPORAL__TLS_CLIENT_KEY_PATH", str(pem_files["tls.key"]))
    temporal = load_settings(data_dir=tmp_path / "data").temporal
    assert temporal.uses_tls and not temporal.tls  # a client certificate implies TLS
    config = tls_config(temporal)
    assert isinstance(config, TLSConfig)
    assert (config.client_cert, config.client_private_key) == (CERT, KEY)
    assert config.server_root_ca_cert is None  # the system's roots
    assert config.domain is None


def test_private_ca_and_server_name(pem_files: dict[str, Path]) -> None:
    config = tls_config(
        TemporalConfig(tls_server_ca_path=pem_files["ca.crt"], tls_server_name="temporal.internal")
    )
    assert isinstance(config, TLSConfig)
    assert config.server_root_ca_cert == CA
    assert config.domain == "temporal.internal"
    assert config.client_cert is None
    assert isinstance(tls_config(TemporalConfig(tls_server_name="x.internal")), TLSConfig)


def test_certificate_needs_its_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLYWHEEL_TEMPORAL__TLS_CLIENT_CERT_PATH", "/etc/temporal/tls.crt")
    with pytest.raises(ConfigError, match="tls_client_cert_path and tls_client_key_path"):
        load_settings(data_dir=tmp_path / "data")


def test_unreadable_file_names_the_key(tmp_path: Path) -> None:
    config = TemporalConfig(
        tls_client_cert_path=tmp_path / "missing.crt", tls_client_key_path=tmp_path / "k"
    )
    with pytest.raises(ConfigError, match=r"temporal\.tls_client_cert_path: cannot read"):
        tls_config(config)


async def test_mtls_connection_failure_is_a_clear_error(pem_files: dict[str, Path]) -> None:
    # These PEMs are not real keys: the SDK's complaint comes back as the flywheel's one-line
    # connection error (naming the address), not as a traceback.
    config = TemporalConfig(
        address="127.0.0.1:9",
        tls_client_cert_path=pem_files["tls.crt"],
        tls_client_key_path=pem_files["tls.key"],
    )
    with pytest.raises(ConnectionFailed, match=r"127\.0\.0\.1:9"):
        await connect(config)
