"""Fixtures for the store tests: a real MongoDB wire-protocol server for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.mongo import MongoServer


@pytest.fixture(scope="session")
def mongo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mongodb://127.0.0.1:PORT`` of an nx-27017 server started for this session."""
    with MongoServer(tmp_path_factory.mktemp("nx-27017")) as server:
        yield server.url
