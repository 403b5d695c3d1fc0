"""Audio assets a space uploads (prompts a flow's ``say`` plays, a campaign's recorded voicemail message): upload,
list, get, delete. Recordings of calls are assets too, served under ``/recordings`` with their retention and legal
hold; these routes see only uploads (``AssetType.AUDIO``), which no retention policy expires.

An upload is ``multipart/form-data`` with a ``file`` field (WAV, MP3, Ogg or FLAC) and an optional ``name``. It is
decoded all the way through and stored as mono 16-bit PCM WAV (``api/audio_upload.py``). Deleting is soft, as the
retention workflow deletes a recording: the blob goes, the row stays marked deleted with an audit entry; an asset
that the current version of a flow plays, or a campaign not yet finished leaves as its message, is refused (409)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import posixpath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, Response, UploadFile, status
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.audio_upload import AudioRejected, convert
from api.auth import not_found
from api.crud import get_in_space
from api.deps import Admin, ResourceId, SessionDep, SettingsDep, SpaceContext, Viewer
from api.errors import error_responses
from api.pagination import CursorQuery, LimitQuery, paginate
from api.routes.recordings import StoreDep
from models.assets import WAV, AssetAction, AssetStatus
from models.enums import AssetType, CampaignStatus
from models.schemas.assets import ASSET_NAME_PATTERN, AssetOut
from models.schemas.common import Page
from models.tables import Asset, AssetAudit, Campaign, Flow, FlowVersion, new_id, utcnow
from storage import BlobNotFoundError, BlobStore, space_key

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/spaces/{space_id}/assets", tags=["assets"])

# A browser or curl may label a WAV as octet-stream (curl does); a declared type that is not audio is refused.
UPLOADABLE_TYPES = frozenset({"", "application/octet-stream", "application/ogg", "video/ogg"})
UNFINISHED_CAMPAIGNS = (CampaignStatus.RUNNING, CampaignStatus.PAUSED, CampaignStatus.CANCELLING)


async def _multipart(request: Request) -> None:
    declared = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if declared != "multipart/form-data":
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "upload the audio as multipart/form-data with a `file` field"
        )


MultipartOnly = Annotated[None, Depends(_multipart)]


def _actor(ctx: SpaceContext) -> str:
    return f"key:{ctx.principal.key_id}"


def _name_of(filename: str | None) -> str | None:
    """The default name: the uploaded file's base name, printable characters only."""
    if not filename:
        return None
    base = posixpath.basename(filename.replace("\\", "/"))
    cleaned = "".join(ch for ch in base if ch.isprintable()).strip()
    return cleaned[:200] or None


async def _asset(session: AsyncSession, ctx: SpaceContext, asset_id: str) -> Asset:
    asset = await get_in_space(session, Asset, ctx.space_id, asset_id, "asset")
    if asset.type != AssetType.AUDIO:
        raise not_found("asset")  # a recording: served under /recordings
    if asset.status == AssetStatus.DELETED:
        raise HTTPException(status.HTTP_410_GONE, "asset was deleted")
    return asset


async def _used_by(session: AsyncSession, space_id: str, asset_id: str) -> str | None:
    """What still plays the asset: the current version of a flow of the space, or an unfinished campaign."""
    current = (
        select(Flow.id, FlowVersion.document)
        .join(FlowVersion, (FlowVersion.flow_id == Flow.id) & (FlowVersion.version == Flow.version))
        .where(Flow.space_id == space_id)
    )
    for flow_id, document in (await session.execute(current)).all():
        steps: list[Any] = document.get("steps", []) if isinstance(document, dict) else []
        for step in steps:
            if isinstance(step, dict) and step.get("type") == "say" and step.get("asset_id") == asset_id:
                return f"flow {flow_id} (step {step.get('id')!r}) plays it"
    campaigns = select(Campaign.id, Campaign.amd).where(
        Campaign.space_id == space_id, Campaign.status.in_(UNFINISHED_CAMPAIGNS)
    )
    for campaign_id, amd in (await session.execute(campaigns)).all():
        if isinstance(amd, dict) and amd.get("message_asset_id") == asset_id:
            return f"campaign {campaign_id} leaves it as its voicemail message"
    return None


@router.post("", status_code=status.HTTP_201_CREATED, responses=error_responses(413, 415, 422))
async def upload_asset(
    ctx: Admin,
    _multipart_body: MultipartOnly,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="The audio: WAV (16-bit PCM, any rate, mono or stereo), MP3, Ogg")],
    name: Annotated[
        str | None, Form(max_length=200, pattern=ASSET_NAME_PATTERN, description="Default: the file's name")
    ] = None,
) -> AssetOut:
    """Upload audio for a flow's ``say`` step (``asset_id``) or a campaign's voicemail message
    (``amd.message_asset_id``). It is decoded whole and stored as mono 16-bit PCM WAV; 422 says why a file is not
    usable audio (corrupt, empty, longer than allowed), 413 when it is larger than allowed."""
    declared = (file.content_type or "").split(";")[0].strip().lower()
    if declared not in UPLOADABLE_TYPES and not declared.startswith("audio/"):
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, f"the file is {declared}: upload audio (WAV, MP3 or Ogg)"
        )
    limit = settings.asset_upload_limit
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"the file is larger than {limit} bytes")
    try:
        audio = await asyncio.to_thread(convert, data, settings.asset_max_seconds)
    except AudioRejected as exc:
        log.info("audio upload refused", extra={"space_id": ctx.space_id, "bytes": len(data)})
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, exc.reason) from None
    asset_id = new_id("assets")
    key = space_key(ctx.space_id, "assets", f"{asset_id}.wav")
    blob = await asyncio.to_thread(store.put_stream, key, io.BytesIO(audio.wav), WAV)
    asset = Asset(
        id=asset_id,
        space_id=ctx.space_id,
        type=AssetType.AUDIO,
        storage_key=key,
        content_type=WAV,
        size_bytes=blob.size,
        sha256=blob.sha256,
        status=AssetStatus.STORED,
        duration_seconds=round(audio.duration_seconds, 3),
        channel_layout="mono",
        sample_rate=audio.sample_rate,
        name=name or _name_of(file.filename),
        created_at=utcnow(),
    )
    session.add(asset)
    detail = f"uploaded {audio.source_format} {audio.source_rate} Hz x{audio.source_channels}, {len(data)} bytes"
    session.add(
        AssetAudit(
            space_id=ctx.space_id, asset_id=asset_id, action=AssetAction.CREATED, actor=_actor(ctx), detail=detail
        )
    )
    try:
        await session.commit()
    except BaseException:
        await asyncio.to_thread(_forget, store, key)
        raise
    log.info("audio asset uploaded", extra={"space_id": ctx.space_id, "asset_id": asset_id, "bytes": blob.size})
    return AssetOut.model_validate(asset)


def _forget(store: BlobStore, key: str) -> None:
    with contextlib.suppress(BlobNotFoundError):
        store.delete(key)


@router.get("")
async def list_assets(
    ctx: Viewer, session: SessionDep, limit: int = LimitQuery, cursor: str | None = CursorQuery
) -> Page[AssetOut]:
    """The space's uploaded audio, oldest first (deleted ones are left out)."""
    stmt = select(Asset).where(
        Asset.space_id == ctx.space_id, Asset.type == AssetType.AUDIO, Asset.status != AssetStatus.DELETED
    )
    rows, next_cursor = await paginate(session, stmt, Asset, limit, cursor)
    return Page(data=[AssetOut.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get("/{asset_id}", responses=error_responses(410))
async def get_asset(asset_id: ResourceId, ctx: Viewer, session: SessionDep) -> AssetOut:
    return AssetOut.model_validate(await _asset(session, ctx, asset_id))


@router.delete("/{asset_id}", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(409, 410))
async def delete_asset(asset_id: ResourceId, ctx: Admin, session: SessionDep, store: StoreDep) -> Response:
    """Deletes the audio (the row stays, marked deleted, with an audit entry). 409 names the flow or campaign that
    still plays it: change that first."""
    asset = await _asset(session, ctx, asset_id)
    user = await _used_by(session, ctx.space_id, asset.id)
    if user is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"the asset is in use: {user}")
    await asyncio.to_thread(_forget, store, asset.storage_key)
    asset.status = AssetStatus.DELETED
    asset.deleted_at = utcnow()
    session.add(AssetAudit(space_id=ctx.space_id, asset_id=asset.id, action=AssetAction.DELETED, actor=_actor(ctx)))
    await session.commit()
    log.info("audio asset deleted", extra={"space_id": ctx.space_id, "asset_id": asset.id})
    return Response(status_code=status.HTTP_204_NO_CONTENT)
