"""store_recording and register_egress_asset against real databases and real stores."""

from __future__ import annotations

import asyncio
import hashlib
import io
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.recording_assets import RecordingAssetActivities
from models.assets import (
    RECORDING_FILE_MISSING,
    STEREO_LAYOUT,
    AssetAction,
    AssetStatus,
    RegisterEgressAssetInput,
    StoreRecordingInput,
)
from models.tables import Asset, AssetAudit, RetentionPolicy
from storage import BlobStore, space_key
from tests.activities.conftest import new_call
from tests.conftest import Platform
from voice.recording.stereo import Side, StereoRecorder


def short_recording(path: Path, seconds: float = 3.0, close: bool = True) -> bytes:
    rng = np.random.default_rng(7)
    recorder = StereoRecorder(path, header_interval=1.0)
    recorder.start(at=0.0)
    for i in range(int(seconds / 0.02)):
        frame = (rng.standard_normal(160) * 3000).astype(np.int16)
        recorder.push(Side.CALLER, frame.tobytes(), i * 0.02)
        recorder.push(Side.AGENT, (frame // 3).tobytes(), i * 0.02)
    if close:
        recorder.close()
    return path.read_bytes()


async def count(platform: Platform, *where: Any) -> int:
    async with platform.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(AssetAudit).where(*where)) or 0)


async def test_store_recording_once_per_call(platform: Platform, store: BlobStore, tmp_path: Path) -> None:
    rows = await new_call(platform)
    async with platform.sessions() as session:
        session.add(RetentionPolicy(space_id=rows.space_id, recording_days=30))
        await session.commit()
    acts = RecordingAssetActivities(platform.sessions, store)
    path = tmp_path / "call.wav"
    content = short_recording(path)
    request = StoreRecordingInput(
        space_id=rows.space_id,
        call_id=rows.call_id,
        conversation_id=rows.conversation_id,
        path=str(path),
        paused_spans=[(1.0, 1.5)],
    )
    first = await ActivityEnvironment().run(acts.store_recording, request)
    assert first.created and first.status == "stored"
    assert (first.size_bytes, first.sha256) == (len(content), hashlib.sha256(content).hexdigest())
    assert first.duration_seconds == pytest.approx(3.0)
    assert not path.exists()  # the worker's disk is not a second copy
    async with platform.sessions() as session:
        asset = await session.get(Asset, first.asset_id)
        assert asset is not None
        assert (asset.channel_layout, asset.paused_spans) == (STEREO_LAYOUT, [[1.0, 1.5]])
        assert asset.retention_until is not None
        assert abs((asset.retention_until - asset.created_at).days - 30) == 0
    assert b"".join(await asyncio.to_thread(lambda: list(store.read_range(asset.storage_key)))) == content

    # The workflow retries (or replays into) the activity: one asset, one audit entry, no second upload needed.
    again = await ActivityEnvironment().run(acts.store_recording, request)
    assert (again.asset_id, again.created) == (first.asset_id, False)
    assert await count(platform, AssetAudit.asset_id == first.asset_id, AssetAudit.action == AssetAction.CREATED) == 1


async def test_missing_file_is_a_non_retryable_failure(platform: Platform, store: BlobStore, tmp_path: Path) -> None:
    rows = await new_call(platform)
    acts = RecordingAssetActivities(platform.sessions, store)
    request = StoreRecordingInput(space_id=rows.space_id, call_id=rows.call_id, path=str(tmp_path / "nowhere.wav"))
    with pytest.raises(ApplicationError) as failure:
        await ActivityEnvironment().run(acts.store_recording, request)
    assert failure.value.type == RECORDING_FILE_MISSING and failure.value.non_retryable


async def test_a_recording_left_by_a_crash_is_repaired_and_stored(
    platform: Platform, store: BlobStore, tmp_path: Path
) -> None:
    rows = await new_call(platform)
    path = tmp_path / "crashed.wav"
    short_recording(path, seconds=4.0, close=False)  # never closed: the header covers the last fix-up only
    acts = RecordingAssetActivities(platform.sessions, store)
    stored = await ActivityEnvironment().run(
        acts.store_recording, StoreRecordingInput(space_id=rows.space_id, call_id=rows.call_id, path=str(path))
    )
    # 4 s pushed, 1 s held back, the rest of the last header interval still in the dead process's buffer.
    assert stored.duration_seconds is not None and 1.9 <= stored.duration_seconds <= 3.0


async def test_egress_results_stored_failed_and_once(platform: Platform, store: BlobStore) -> None:
    rows = await new_call(platform)
    acts = RecordingAssetActivities(platform.sessions, store)
    key = space_key(rows.space_id, "recordings", f"{rows.call_id}.ogg")
    await asyncio.to_thread(store.put_stream, key, io.BytesIO(b"OggS egress bytes"), "audio/ogg")  # as egress did
    ok = RegisterEgressAssetInput(
        space_id=rows.space_id,
        call_id=rows.call_id,
        egress_id=f"EG_{uuid.uuid4().hex}",
        location=f"s3://bucket/{key}",
        duration_seconds=12.5,
    )
    stored = await ActivityEnvironment().run(acts.register_egress_asset, ok)
    assert stored.status == "stored" and stored.sha256 == hashlib.sha256(b"OggS egress bytes").hexdigest()
    assert (await ActivityEnvironment().run(acts.register_egress_asset, ok)).asset_id == stored.asset_id

    failed = await ActivityEnvironment().run(
        acts.register_egress_asset,
        RegisterEgressAssetInput(
            space_id=rows.space_id,
            call_id=rows.call_id,
            egress_id=f"EG_{uuid.uuid4().hex}",
            location=None,
            error="upload failed",
        ),
    )
    assert failed.status == "failed" and failed.size_bytes is None
    other_space = await ActivityEnvironment().run(
        acts.register_egress_asset,
        RegisterEgressAssetInput(
            space_id=rows.space_id,
            call_id=rows.call_id,
            egress_id=f"EG_{uuid.uuid4().hex}",
            location="s3://bucket/spaces/sp_someone_else/recordings/x.ogg",
        ),
    )
    assert other_space.status == "failed"
    traversal = await ActivityEnvironment().run(
        acts.register_egress_asset,
        RegisterEgressAssetInput(
            space_id=rows.space_id,
            call_id=rows.call_id,
            egress_id=f"EG_{uuid.uuid4().hex}",
            location=f"s3://bucket/recordings/{rows.space_id}/../../spaces/sp_x/recordings/a.ogg",
        ),
    )
    assert traversal.status == "failed"
    # The layout of egresses started before recordings went to the space key (recordings/<space>/<call>.ogg).
    legacy_key = f"recordings/{rows.space_id}/{rows.call_id}.ogg"
    await asyncio.to_thread(store.put_stream, legacy_key, io.BytesIO(b"OggS legacy"), "audio/ogg")
    legacy = await ActivityEnvironment().run(
        acts.register_egress_asset,
        RegisterEgressAssetInput(
            space_id=rows.space_id, call_id=rows.call_id, egress_id=f"EG_{uuid.uuid4().hex}", location=legacy_key
        ),
    )
    assert legacy.status == "stored" and legacy.size_bytes == len(b"OggS legacy")
    async with platform.sessions() as session:
        asset = await session.get(Asset, other_space.asset_id)
        assert asset is not None and asset.status == AssetStatus.FAILED
        assert asset.error == "egress file is not in this space's storage"
