"""The drills' integration tests: the opt-in real-model one runs only when asked for."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``real_model`` tests run only with ``-m real_model`` (as tests/integration/gateway's)."""
    if "real_model" in (config.getoption("markexpr") or ""):
        return
    opt_in = [item for item in items if item.get_closest_marker("real_model")]
    if opt_in:
        config.hook.pytest_deselected(items=opt_in)
        items[:] = [item for item in items if not item.get_closest_marker("real_model")]
