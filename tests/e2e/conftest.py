"""Fixtures for end-to-end runs: a MongoDB wire-protocol server for the result store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.mongo import MongoServer


@pytest.fixture(scope="module")
def mongo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mongodb://127.0.0.1:PORT`` of an nx-27017 server started for this module."""
    with MongoServer(tmp_path_factory.mktemp("nx-27017-e2e")) as server:
        yield server.url
