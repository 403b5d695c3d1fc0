"""The ``livekit_standin`` pytest fixture: a started ``LiveKitStandIn`` per test.

Import it into a conftest (``from tests.livekit_standin.fixtures import livekit_standin``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from .server import LiveKitStandIn


@pytest_asyncio.fixture
async def livekit_standin() -> AsyncIterator[LiveKitStandIn]:
    async with LiveKitStandIn() as standin:
        yield standin
