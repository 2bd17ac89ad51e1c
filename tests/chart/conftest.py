"""Rendered releases shared by the chart tests (rendering takes milliseconds; parsing once)."""

from __future__ import annotations

import pytest

from tests.chart.render import ALL_FEATURES, Release, load_values, render


@pytest.fixture(scope="session")
def default_release() -> Release:
    return render()


@pytest.fixture(scope="session")
def all_features() -> Release:
    return render(load_values(ALL_FEATURES))


@pytest.fixture(params=["default", "all-features"])
def release(request: pytest.FixtureRequest) -> Release:
    """Each values file in turn."""
    name = "default_release" if request.param == "default" else "all_features"
    return request.getfixturevalue(name)
