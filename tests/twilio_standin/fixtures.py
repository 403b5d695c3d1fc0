"""Pytest fixture: a started ``TwilioStandIn`` with two accounts (load with ``pytest_plugins``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.twilio_standin.resources import (
    OTHER_ACCOUNT_SID,
    OTHER_AUTH_TOKEN,
    TEST_ACCOUNT_SID,
    TEST_AUTH_TOKEN,
)
from tests.twilio_standin.server import TwilioStandIn


@pytest_asyncio.fixture(loop_scope="session")
async def twilio_standin() -> AsyncIterator[TwilioStandIn]:
    """Accounts ``TEST_ACCOUNT_SID`` and ``OTHER_ACCOUNT_SID``, the default inventory, nothing owned."""
    async with TwilioStandIn({TEST_ACCOUNT_SID: TEST_AUTH_TOKEN, OTHER_ACCOUNT_SID: OTHER_AUTH_TOKEN}) as standin:
        yield standin
