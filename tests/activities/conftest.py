"""Fixtures for the recording activities: a migrated database (SQLite and PostgreSQL), a store per backend, a
space with a call and its conversation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.enums import CallDirection, CallState, Channel
from models.tables import Call, Conversation, Space, utcnow
from storage import BlobStore
from tests.conftest import Platform
from tests.support.stores import BACKENDS, build_test_store, store_settings


@dataclass
class CallRows:
    space_id: str
    call_id: str
    conversation_id: str


async def new_call(platform: Platform | async_sessionmaker[AsyncSession], space_id: str | None = None) -> CallRows:
    """A call with its conversation, in ``space_id`` or in a new space."""
    sessions = platform.sessions if isinstance(platform, Platform) else platform
    async with sessions() as session:
        if space_id is None:
            space = Space(name="recordings")
            session.add(space)
            await session.flush()
            space_id = space.id
        conversation = Conversation(space_id=space_id, channel=Channel.VOICE, external_party="+14155550100")
        session.add(conversation)
        await session.flush()
        call = Call(
            space_id=space_id,
            workflow_id=f"call-{uuid.uuid4().hex}",
            direction=CallDirection.INBOUND,
            from_number="+14155550100",
            to_number="+14155550199",
            state=CallState.ENDED,
            conversation_id=conversation.id,
            connected_at=utcnow(),
        )
        session.add(call)
        await session.commit()
        return CallRows(space_id, call.id, conversation.id)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    s3 = request.getfixturevalue("s3_server") if request.param == "s3" else None
    return build_test_store(store_settings(request.param, tmp_path, s3))
