"""Recordings of a space: list, metadata, content with HTTP Range, short-lived download URLs, legal hold,
and the space's retention policy. Every content request and every download URL issued is audited."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.crud import get_in_space
from api.deps import Admin, SessionDep, SettingsDep, SpaceContext, Viewer
from api.pagination import CursorQuery, LimitQuery, paginate
from api.ranges import parse_range
from models.assets import AssetAction, AssetStatus, retention_deadline
from models.enums import AssetType
from models.schemas.common import Page
from models.schemas.recordings import (
    DownloadUrlOut,
    LegalHoldIn,
    RecordingOut,
    RetentionPolicyIn,
    RetentionPolicyOut,
)
from models.tables import Asset, AssetAudit, RetentionPolicy
from storage import BlobNotFoundError, BlobStore, ByteRange, LocalStore, UrlSignatureError
from storage.local import BLOB_ROUTE


async def _store(request: Request) -> BlobStore:
    store: BlobStore = request.app.state.store
    return store


StoreDep = Annotated[BlobStore, Depends(_store)]

recordings = APIRouter(prefix="/v1/spaces/{space_id}/recordings", tags=["recordings"])
retention = APIRouter(prefix="/v1/spaces/{space_id}/retention-policy", tags=["recordings"])
blobs = APIRouter(prefix=BLOB_ROUTE, tags=["recordings"])


def _actor(ctx: SpaceContext) -> str:
    return f"key:{ctx.principal.key_id}"


def _audit(session: AsyncSession, asset: Asset, action: AssetAction, actor: str, detail: str | None = None) -> None:
    session.add(AssetAudit(space_id=asset.space_id, asset_id=asset.id, action=action, actor=actor, detail=detail))


async def _recording(session: AsyncSession, ctx: SpaceContext, asset_id: str) -> Asset:
    asset = await get_in_space(session, Asset, ctx.space_id, asset_id, "recording")
    if asset.type != AssetType.RECORDING:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "recording not found")
    if asset.status == AssetStatus.DELETED:
        raise HTTPException(status.HTTP_410_GONE, "recording was deleted")
    return asset


def _require_stored(asset: Asset) -> None:
    if asset.status == AssetStatus.RECORDING:
        raise HTTPException(status.HTTP_409_CONFLICT, "recording is still in progress")
    if asset.status == AssetStatus.FAILED:
        raise HTTPException(status.HTTP_409_CONFLICT, "recording failed: no content")


async def _serve(store: BlobStore, key: str, content_type: str, range_header: str | None) -> Response:
    try:
        info = await asyncio.to_thread(store.stat, key)
    except BlobNotFoundError as exc:
        raise HTTPException(status.HTTP_410_GONE, "recording content is gone") from exc
    byte_range = parse_range(range_header, info.size)
    chunks = await asyncio.to_thread(store.read_range, key, byte_range)
    headers = {"Accept-Ranges": "bytes"}
    if byte_range is None:
        byte_range = ByteRange(0, info.size - 1)
        code = status.HTTP_200_OK
    else:
        headers["Content-Range"] = f"bytes {byte_range.start}-{byte_range.end}/{info.size}"
        code = status.HTTP_206_PARTIAL_CONTENT
    headers["Content-Length"] = str(max(0, byte_range.length))
    return StreamingResponse(chunks, status_code=code, media_type=content_type, headers=headers)


@recordings.get("")
async def list_recordings(
    ctx: Viewer,
    session: SessionDep,
    call_id: str | None = Query(default=None, max_length=40),
    conversation_id: str | None = Query(default=None, max_length=40),
    status_: AssetStatus | None = Query(default=None, alias="status"),
    limit: int = LimitQuery,
    cursor: str | None = CursorQuery,
) -> Page[RecordingOut]:
    stmt = select(Asset).where(Asset.space_id == ctx.space_id, Asset.type == AssetType.RECORDING)
    if call_id is not None:
        stmt = stmt.where(Asset.call_id == call_id)
    if conversation_id is not None:
        stmt = stmt.where(Asset.conversation_id == conversation_id)
    if status_ is not None:
        stmt = stmt.where(Asset.status == status_)
    rows, next_cursor = await paginate(session, stmt, Asset, limit, cursor)
    return Page(data=[RecordingOut.model_validate(r) for r in rows], next_cursor=next_cursor)


@recordings.get("/{asset_id}")
async def get_recording(asset_id: str, ctx: Viewer, session: SessionDep) -> RecordingOut:
    return RecordingOut.model_validate(await _recording(session, ctx, asset_id))


@recordings.get(
    "/{asset_id}/content",
    response_class=StreamingResponse,
    responses={206: {"description": "the requested byte range"}, 416: {"description": "range not satisfiable"}},
)
async def get_recording_content(
    asset_id: str,
    ctx: Viewer,
    session: SessionDep,
    store: StoreDep,
    range_: Annotated[str | None, Header(alias="range", max_length=100)] = None,
) -> Response:
    asset = await _recording(session, ctx, asset_id)
    _require_stored(asset)
    response = await _serve(store, asset.storage_key, asset.content_type, range_)
    _audit(session, asset, AssetAction.DOWNLOADED, _actor(ctx), f"content {range_ or 'whole'}")
    await session.commit()
    return response


@recordings.post("/{asset_id}/download-url")
async def create_download_url(
    asset_id: str, ctx: Viewer, session: SessionDep, store: StoreDep, settings: SettingsDep
) -> DownloadUrlOut:
    asset = await _recording(session, ctx, asset_id)
    _require_stored(asset)
    ttl = settings.download_url_ttl_seconds
    extension = "wav" if asset.content_type == "audio/wav" else "ogg"
    url = await asyncio.to_thread(
        store.download_url, asset.storage_key, expires_in=ttl, filename=f"{asset.id}.{extension}"
    )
    _audit(session, asset, AssetAction.DOWNLOADED, _actor(ctx), "download URL issued")
    await session.commit()
    return DownloadUrlOut(url=url, expires_at=datetime.now(UTC) + timedelta(seconds=ttl))


@recordings.put("/{asset_id}/legal-hold")
async def set_legal_hold(asset_id: str, body: LegalHoldIn, ctx: Admin, session: SessionDep) -> RecordingOut:
    asset = await _recording(session, ctx, asset_id)
    if asset.legal_hold != body.legal_hold:
        asset.legal_hold = body.legal_hold
        action = AssetAction.LEGAL_HOLD_ON if body.legal_hold else AssetAction.LEGAL_HOLD_OFF
        _audit(session, asset, action, _actor(ctx))
        await session.commit()
    return RecordingOut.model_validate(asset)


@blobs.get("/{key:path}", response_class=StreamingResponse, include_in_schema=False)
async def get_signed_blob(
    key: str,
    session: SessionDep,
    store: StoreDep,
    expires: Annotated[int, Query()],
    signature: Annotated[str, Query(max_length=128)],
    filename: Annotated[str, Query(max_length=200)] = "",
    range_: Annotated[str | None, Header(alias="range", max_length=100)] = None,
) -> Response:
    """A local store's signed download URL (S3 serves its presigned URLs itself)."""
    if not isinstance(store, LocalStore):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    try:
        store.verify_signature(key, expires, filename, signature)
    except UrlSignatureError as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"download URL refused: {exc}") from exc
    asset = await session.scalar(select(Asset).where(Asset.storage_key == key))
    if asset is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    if asset.status == AssetStatus.DELETED:
        raise HTTPException(status.HTTP_410_GONE, "recording was deleted")
    response = await _serve(store, key, asset.content_type, range_)
    if filename:
        response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@retention.get("")
async def get_retention_policy(ctx: Viewer, session: SessionDep) -> RetentionPolicyOut:
    policy = await session.get(RetentionPolicy, ctx.space_id)
    if policy is None:
        return RetentionPolicyOut(space_id=ctx.space_id)
    return RetentionPolicyOut(
        space_id=ctx.space_id, recording_days=policy.recording_days, transcript_days=policy.transcript_days
    )


@retention.put("")
async def put_retention_policy(body: RetentionPolicyIn, ctx: Admin, session: SessionDep) -> RetentionPolicyOut:
    """Sets the policy and recomputes the deadline of every recording of the space not yet deleted (uploaded audio,
    a flow's prompts, is configuration: no policy expires it)."""
    policy = await session.get(RetentionPolicy, ctx.space_id)
    if policy is None:
        policy = RetentionPolicy(space_id=ctx.space_id)
        session.add(policy)
    policy.recording_days = body.recording_days
    policy.transcript_days = body.transcript_days
    assets = (
        await session.scalars(
            select(Asset).where(
                Asset.space_id == ctx.space_id, Asset.type != AssetType.AUDIO, Asset.status != AssetStatus.DELETED
            )
        )
    ).all()
    for asset in assets:
        asset.retention_until = retention_deadline(asset.created_at, body.recording_days)
    await session.commit()
    return RetentionPolicyOut(
        space_id=ctx.space_id,
        recording_days=body.recording_days,
        transcript_days=body.transcript_days,
        assets_updated=len(assets),
    )


router = APIRouter()
router.include_router(recordings)
router.include_router(retention)
router.include_router(blobs)
