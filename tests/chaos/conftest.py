"""The chaos suite: faults injected into real processes. CI runs a short version of each scenario (marker
``chaos``); ``make chaos`` runs the full sizes the issue names (``CHAOS_FULL=1``)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

FULL = os.environ.get("CHAOS_FULL") == "1"


@dataclass(frozen=True)
class ChaosSize:
    calls: int  # calls driven through worker kills
    burst_rate: float  # webhooks per second
    burst_seconds: float
    outage_seconds: float  # how long PostgreSQL stays down


@pytest.fixture
def size() -> ChaosSize:
    if FULL:
        return ChaosSize(calls=20, burst_rate=200, burst_seconds=60, outage_seconds=10)
    return ChaosSize(calls=4, burst_rate=20, burst_seconds=3, outage_seconds=3)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/chaos/" in str(item.fspath):
            item.add_marker(pytest.mark.chaos)
