"""Activities turning a call's recording into a space asset: a local stereo WAV written by the voice runtime
(media-stream and console calls), or a LiveKit egress file already in the space's storage.

Both are idempotent through ``Asset.source_key`` ("call:<id>:stereo", "egress:<id>"): a retried attempt, or the
workflow running the activity again, finds the row of the first and returns it (``created=False``). The blob is
uploaded before the row is written, under a key derived from the call, so an attempt that died between the two
overwrites the same blob and then writes the row once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import wave
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from models.assets import (
    MONO_MIXED_LAYOUT,
    RECORDING_FILE_MISSING,
    AssetAction,
    AssetStatus,
    JoinedRecordingParts,
    JoinRecordingPartsInput,
    RegisterEgressAssetInput,
    StoredAsset,
    StoreRecordingInput,
    retention_deadline,
)
from models.enums import AssetType
from models.tables import Asset, AssetAudit, RetentionPolicy, utcnow
from storage import BlobNotFoundError, BlobStore, space_key
from voice.recording.parts import join_parts, joined_before, manifest_path, remove_parts
from voice.recording.stereo import repair_wav

log = logging.getLogger(__name__)

WORKER_ACTOR = "worker"


def _result(asset: Asset, created: bool) -> StoredAsset:
    return StoredAsset(
        asset_id=asset.id,
        status=asset.status.value,
        size_bytes=asset.size_bytes,
        sha256=asset.sha256,
        duration_seconds=asset.duration_seconds,
        created=created,
    )


def wav_duration(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


def egress_key(space_id: str, location: str) -> str | None:
    """The store key inside an egress file location (an S3 URL or a path), if it is one of this space's keys:
    ``spaces/<space>/recordings/<name>`` (storage/egress.py, behind an S3 store's key prefix) or
    ``recordings/<space>/<name>`` (egresses started before recordings went to the space's key)."""
    path = location.split("?", 1)[0]
    for marker in (f"spaces/{space_id}/recordings/", f"recordings/{space_id}/"):
        index = path.find(marker)
        if index < 0:
            continue
        name = path[index + len(marker) :]
        try:
            space_key(space_id, "recordings", name)  # a plain file name, nothing else
        except ValueError:
            return None
        return marker + name
    return None


def _remove_local(path: Path) -> None:
    """The stored recording and its part manifest (``voice/recording/parts.py``) leave the process's disk."""
    path.unlink(missing_ok=True)
    manifest_path(path).unlink(missing_ok=True)


class RecordingAssetActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], store: BlobStore) -> None:
        self._sessions = sessions
        self._store = store

    async def _existing(self, session: AsyncSession, space_id: str, source_key: str) -> Asset | None:
        return await session.scalar(select(Asset).where(Asset.space_id == space_id, Asset.source_key == source_key))

    async def _deadline_days(self, session: AsyncSession, space_id: str) -> int | None:
        policy = await session.get(RetentionPolicy, space_id)
        return policy.recording_days if policy else None

    async def _insert(self, asset: Asset) -> tuple[Asset, bool]:
        """Insert the row with its audit entry; if another attempt won the race, return that one's row."""
        async with self._sessions() as session:
            asset.retention_until = retention_deadline(
                asset.created_at, await self._deadline_days(session, asset.space_id)
            )
            session.add(asset)
            try:
                await session.flush()
                detail = asset.status.value if asset.status != AssetStatus.STORED else None
                session.add(
                    AssetAudit(
                        space_id=asset.space_id,
                        asset_id=asset.id,
                        action=AssetAction.CREATED,
                        actor=WORKER_ACTOR,
                        detail=detail,
                    )
                )
                await session.commit()
                return asset, True
            except IntegrityError as exc:
                await session.rollback()
                conflict = exc
        async with self._sessions() as session:
            assert asset.source_key is not None
            existing = await self._existing(session, asset.space_id, asset.source_key)
            if existing is None:
                raise conflict
            return existing, False

    @activity.defn
    async def store_recording(self, request: StoreRecordingInput) -> StoredAsset:
        """Upload a finished local recording to the space's store and register it as the call's asset."""
        source_key = f"call:{request.call_id}:{request.name or 'stereo'}"
        path = Path(request.path)
        async with self._sessions() as session:
            existing = await self._existing(session, request.space_id, source_key)
        if existing is not None:
            if request.delete_local_file:
                await asyncio.to_thread(_remove_local, path)
            return _result(existing, created=False)
        if not await asyncio.to_thread(path.is_file):
            raise ApplicationError(
                "the recording file is not on this worker", type=RECORDING_FILE_MISSING, non_retryable=True
            )
        if request.content_type == "audio/wav":
            await asyncio.to_thread(repair_wav, path)  # a recorder that died mid-call left its header short
        duration = request.duration_seconds
        if duration is None and request.content_type == "audio/wav":
            duration = await asyncio.to_thread(wav_duration, path)
        file_name = f"{request.call_id}-{request.name}.wav" if request.name else f"{request.call_id}.wav"
        key = space_key(request.space_id, "recordings", file_name)
        blob = await asyncio.to_thread(self._store.put_file, key, path, request.content_type)
        asset, created = await self._insert(
            Asset(
                space_id=request.space_id,
                call_id=request.call_id,
                conversation_id=request.conversation_id,
                type=AssetType.RECORDING,
                storage_key=key,
                content_type=request.content_type,
                size_bytes=blob.size,
                sha256=blob.sha256,
                status=AssetStatus.STORED,
                duration_seconds=duration,
                channel_layout=request.channel_layout,
                paused_spans=[list(span) for span in request.paused_spans],
                source_key=source_key,
                created_at=utcnow(),
            )
        )
        if request.delete_local_file:
            await asyncio.to_thread(_remove_local, path)
        log.info("recording stored", extra={"asset_id": asset.id, "call_id": request.call_id, "new_asset": created})
        return _result(asset, created)

    @activity.defn
    async def join_recording_parts(self, request: JoinRecordingPartsInput) -> JoinedRecordingParts:
        """A call that moved between media processes (one died or drained): join the parts each recorded into one
        file on the call's timeline, on the process that carried it last. Parts on another machine's disk are
        missing (their time is silence); an attempt retried after the parts were joined and removed finds the
        joined file."""
        parts = [Path(p) for p in request.parts]
        out = parts[-1].with_name(f"{request.call_id}-joined.wav")

        def join() -> JoinedRecordingParts:
            done = joined_before(out, parts)
            if done is None:
                if not any(p.is_file() for p in parts):
                    raise ApplicationError(
                        "no part of the recording is on this worker", type=RECORDING_FILE_MISSING, non_retryable=True
                    )
                done = join_parts(parts, out)
                remove_parts(parts)
            return JoinedRecordingParts(str(done.path), done.paused_spans, done.joined, done.missing)

        joined = await asyncio.to_thread(join)
        log.info(
            "recording parts joined",
            extra={"call_id": request.call_id, "parts": joined.joined, "missing": joined.missing},
        )
        return joined

    def _hash_blob(self, key: str) -> tuple[int, str]:
        digest = hashlib.sha256()
        size = 0
        for chunk in self._store.read_range(key):
            digest.update(chunk)
            size += len(chunk)
        return size, digest.hexdigest()

    @activity.defn
    async def register_egress_asset(self, request: RegisterEgressAssetInput) -> StoredAsset:
        """Register a LiveKit egress result as the call's asset: stored if its file is in the space's storage,
        failed (with the reason) otherwise. The call itself is never affected."""
        source_key = f"egress:{request.egress_id}"
        async with self._sessions() as session:
            existing = await self._existing(session, request.space_id, source_key)
        if existing is not None:
            return _result(existing, created=False)
        key = egress_key(request.space_id, request.location or "")
        error = request.error
        size = sha256 = None
        if error is None and key is None:
            error = "egress file is not in this space's storage"
        if error is None and key is not None:
            try:
                size, sha256 = await asyncio.to_thread(self._hash_blob, key)
            except BlobNotFoundError:
                error = "egress file not found in storage"
        failed = error is not None
        if key is None:
            key = space_key(request.space_id, "recordings", f"{request.call_id}-{request.egress_id}.ogg")
        asset, created = await self._insert(
            Asset(
                space_id=request.space_id,
                call_id=request.call_id,
                conversation_id=request.conversation_id,
                type=AssetType.RECORDING,
                storage_key=key,
                content_type=request.content_type,
                size_bytes=size,
                sha256=sha256,
                status=AssetStatus.FAILED if failed else AssetStatus.STORED,
                duration_seconds=request.duration_seconds,
                channel_layout=MONO_MIXED_LAYOUT,
                error=error[:2000] if error else None,
                source_key=source_key,
                created_at=utcnow(),
            )
        )
        log.info("egress asset registered", extra={"asset_id": asset.id, "failed": failed, "new_asset": created})
        return _result(asset, created)
