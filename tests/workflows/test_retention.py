"""Retention with Temporal's time-skipping test server: eight days pass in no time, expired recordings (and their
transcript messages, per the space's policy) are deleted with an audit entry, legal holds are kept. The daily
schedule is created once, on a real dev server."""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from temporalio.client import ScheduleActionStartWorkflow, ScheduleIntervalSpec
from temporalio.service import RPCError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities.recording_assets import RecordingAssetActivities
from activities.retention import RetentionActivities
from models.assets import (
    RECORDING_SOURCE,
    RETENTION_SCHEDULE_ID,
    AssetAction,
    AssetStatus,
    RetentionInput,
    StoreRecordingInput,
)
from models.enums import MessageRole
from models.settings import Settings
from models.tables import Asset, AssetAudit, Message, utcnow
from storage import BlobStore
from tests.activities.conftest import new_call
from tests.activities.test_recording_assets import short_recording
from tests.conftest import SECRET_KEY, Platform, SpaceKeys, make_platform, new_database_url, serve_api
from tests.support.postgres import PostgresServer
from workflows.retention import RetentionWorkflow
from workflows.retention_schedule import ensure_retention_schedule


@pytest.fixture
async def time_skipping() -> AsyncIterator[WorkflowEnvironment]:
    """Its own server per test: skipped time does not come back."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(Path(sys.executable).parent / "temporal-test-server")
    )
    try:
        yield env
    finally:
        await env.shutdown()


async def recorded(api: Platform, store: BlobStore, space: SpaceKeys, tmp_path: Path) -> tuple[str, str]:
    """A call of ``space`` with a stored recording, two transcript messages and one live message."""
    rows = await new_call(api, space.id)
    path = tmp_path / f"{rows.call_id}.wav"
    short_recording(path, seconds=1.0)
    stored = await ActivityEnvironment().run(
        RecordingAssetActivities(api.sessions, store).store_recording,
        StoreRecordingInput(
            space_id=space.id, call_id=rows.call_id, conversation_id=rows.conversation_id, path=str(path)
        ),
    )
    async with api.sessions() as session:
        for source, role in (
            (RECORDING_SOURCE, MessageRole.CALLER),
            (RECORDING_SOURCE, MessageRole.AGENT),
            ("voice", MessageRole.CALLER),
        ):
            session.add(
                Message(
                    space_id=space.id,
                    conversation_id=rows.conversation_id,
                    call_id=rows.call_id,
                    role=role,
                    source=source,
                    text="words",
                    dedupe_key=f"t:{uuid.uuid4().hex}",
                    created_at=utcnow(),
                )
            )
        await session.commit()
    return rows.call_id, stored.asset_id


async def message_sources(api: Platform, call_id: str) -> list[str]:
    async with api.sessions() as session:
        return sorted((await session.scalars(select(Message.source).where(Message.call_id == call_id))).all())


@pytest.fixture(params=["sqlite", "postgres"])
async def own_platform(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_server: PostgresServer | None
) -> Platform:
    """A database of its own: retention is platform-wide, other tests' assets must not count."""
    url = new_database_url(request.param, tmp_path, postgres_server)
    return await make_platform(Settings(data_dir=tmp_path, database_url=url, secret_keys=SECRET_KEY))


async def test_expired_recordings_deleted_legal_holds_kept(
    own_platform: Platform, time_skipping: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with serve_api(own_platform) as api:
        assert api.app is not None
        store: BlobStore = api.app.state.store
        space, other = await api.new_space("kept 7 days"), await api.new_space("keeps everything")
        expiring_call, expiring = await recorded(api, store, space, tmp_path)
        held_call, held = await recorded(api, store, space, tmp_path)
        forever_call, forever = await recorded(api, store, other, tmp_path)
        # The policy is set after the recordings exist: their deadlines are recomputed.
        policy = await api.client.put(
            space.path("/retention-policy"), json={"recording_days": 7, "transcript_days": 7}, headers=space.admin
        )
        assert policy.json()["assets_updated"] == 2
        hold = await api.client.put(
            space.path(f"/recordings/{held}/legal-hold"), json={"legal_hold": True}, headers=space.admin
        )
        assert hold.status_code == 200

        queue = f"retention-{uuid.uuid4().hex[:8]}"
        client = time_skipping.client
        async with Worker(
            client,
            task_queue=queue,
            workflows=[RetentionWorkflow],
            activities=[
                (acts := RetentionActivities(api.sessions, store)).find_expired_assets,
                acts.delete_asset,
                acts.delete_expired_transcripts,
            ],
        ):

            async def run_retention() -> tuple[int, int]:
                result = await client.execute_workflow(
                    RetentionWorkflow.run, RetentionInput(), id=f"retention-{uuid.uuid4().hex}", task_queue=queue
                )
                return result.assets_deleted, result.messages_deleted

            assert await run_retention() == (0, 0)  # nothing is due yet
            await time_skipping.sleep(timedelta(days=8))
            assert await run_retention() == (1, 2)
            assert await run_retention() == (0, 0)  # a second run the same day: one effect

        async with api.sessions() as session:
            deleted = await session.get(Asset, expiring)
            assert deleted is not None and deleted.status == AssetStatus.DELETED and deleted.deleted_at is not None
            for kept in (held, forever):
                row = await session.get(Asset, kept)
                assert row is not None and row.status == AssetStatus.STORED
            audits = await session.scalar(
                select(func.count()).where(AssetAudit.asset_id == expiring, AssetAudit.action == AssetAction.DELETED)
            )
            assert audits == 1
        assert not store.exists(deleted.storage_key)
        gone = await api.client.get(space.path(f"/recordings/{expiring}/content"), headers=space.viewer)
        assert gone.status_code == 410
        held_content = await api.client.get(space.path(f"/recordings/{held}/content"), headers=space.viewer)
        assert held_content.status_code == 200
        assert await message_sources(api, expiring_call) == ["voice"]  # the live transcript is not the policy's
        assert await message_sources(api, held_call) == ["recording", "recording", "voice"]
        assert await message_sources(api, forever_call) == ["recording", "recording", "voice"]


async def test_the_daily_schedule_is_created_once(temporal_env: WorkflowEnvironment) -> None:
    client = temporal_env.client
    with contextlib.suppress(RPCError):  # worker processes of other tests may have created it on this server
        await client.get_schedule_handle(RETENTION_SCHEDULE_ID).delete()
    assert await ensure_retention_schedule(client, "retention-queue") is True
    assert await ensure_retention_schedule(client, "retention-queue") is False
    described = await client.get_schedule_handle(RETENTION_SCHEDULE_ID).describe()
    assert described.schedule.spec.intervals == [ScheduleIntervalSpec(every=timedelta(days=1))]
    action = described.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow) and action.workflow == "Retention"
    await client.get_schedule_handle(RETENTION_SCHEDULE_ID).delete()
