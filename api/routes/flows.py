"""Flows of a space: IVR call scripts a number can route to. Every change is a new immutable version (the
current one is what new calls run; a call keeps the version it started with). Bodies are the flow document
(``models.flows.FlowDocument``) as JSON or YAML (``Content-Type: application/yaml``)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Depends, HTTPException, Path, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.crud import ensure_unused, get_in_space
from api.deps import Admin, ResourceId, SessionDep, Viewer
from api.errors import error_responses
from api.pagination import CursorQuery, LimitQuery, paginate
from models.assets import AssetStatus
from models.flows import FlowDocument
from models.schemas.common import Page
from models.schemas.flows import FLOW_MEDIA_TYPES, FlowOut, FlowVersionOut
from models.tables import Asset, Flow, FlowVersion, PhoneNumber

router = APIRouter(prefix="/v1/spaces/{space_id}/flows", tags=["flows"])

MAX_FLOW_BYTES = 512 * 1024
PLAYABLE = ("audio/wav", "audio/x-wav", "audio/wave")  # what a say step can play (PCM WAV, as recordings are)
_DOCUMENT = {"$ref": "#/components/schemas/FlowDocument"}
_BODY = {"requestBody": {"required": True, "content": {t: {"schema": _DOCUMENT} for t in FLOW_MEDIA_TYPES}}}
_PARTIAL = {
    "requestBody": {
        "required": True,
        "content": {
            t: {"schema": {"type": "object", "description": "Top-level fields of FlowDocument to replace"}}
            for t in FLOW_MEDIA_TYPES
        },
    }
}
Version = Annotated[int, Path(ge=1, le=1_000_000)]


async def _raw_body(request: Request) -> dict[str, Any]:
    """The body as a mapping, from JSON or YAML (safe loader: no tags, no objects)."""
    media = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if media not in FLOW_MEDIA_TYPES:
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, f"send the flow as {' or '.join(FLOW_MEDIA_TYPES)}")
    raw = await request.body()
    if len(raw) > MAX_FLOW_BYTES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"a flow is at most {MAX_FLOW_BYTES} bytes")
    try:
        data = json.loads(raw) if media == "application/json" else yaml.safe_load(raw.decode("utf-8"))
    except (ValueError, yaml.YAMLError) as exc:
        kind = "JSON" if media == "application/json" else "YAML"
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"the body is not valid {kind}: {str(exc)[:200]}") from None
    if not isinstance(data, dict):
        raise RequestValidationError([{"type": "dict_type", "loc": ("body",), "msg": "a flow is a mapping"}])
    return data


RawBody = Annotated[dict[str, Any], Depends(_raw_body)]


def _document(data: dict[str, Any]) -> FlowDocument:
    try:
        return FlowDocument.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None


def _stored(document: FlowDocument) -> dict[str, Any]:
    return document.model_dump(mode="json", exclude_none=True)


def _out(flow: Flow, document: dict[str, Any]) -> FlowOut:
    return FlowOut(
        id=flow.id,
        space_id=flow.space_id,
        name=flow.name,
        version=flow.version,
        document=FlowDocument.model_validate(document),
        created_at=flow.created_at,
        updated_at=flow.updated_at,
    )


def _version_out(row: FlowVersion) -> FlowVersionOut:
    document = FlowDocument.model_validate(row.document)
    return FlowVersionOut(flow_id=row.flow_id, version=row.version, document=document, created_at=row.created_at)


async def _current(session: AsyncSession, flow: Flow) -> FlowVersion:
    row = await session.scalar(
        select(FlowVersion).where(FlowVersion.flow_id == flow.id, FlowVersion.version == flow.version)
    )
    assert row is not None, "a flow always has its current version"
    return row


async def _check_audio(session: AsyncSession, space_id: str, document: FlowDocument) -> None:
    """Every ``say`` that plays an asset names a stored WAV asset of this space (422 naming the step)."""
    errors = []
    playing = document.audio_assets()
    for index, step in enumerate(document.steps):
        asset_id = playing.get(step.id)
        if asset_id is None:
            continue
        asset = await session.get(Asset, asset_id)
        if asset is None or asset.space_id != space_id or asset.deleted_at is not None:
            problem = f"step {step.id!r}: asset {asset_id!r} not found in this space"
        elif asset.status is not AssetStatus.STORED or asset.content_type.split(";")[0].strip() not in PLAYABLE:
            problem = f"step {step.id!r}: asset {asset_id!r} is not stored WAV audio ({asset.content_type})"
        else:
            continue
        errors.append({"type": "value_error", "loc": ("body", "steps", index, "asset_id"), "msg": problem})
    if errors:
        raise RequestValidationError(errors)


async def _new_version(session: AsyncSession, flow: Flow, document: FlowDocument) -> FlowOut:
    await _check_audio(session, flow.space_id, document)
    flow.version += 1
    flow.name = document.name
    stored = _stored(document)
    session.add(FlowVersion(space_id=flow.space_id, flow_id=flow.id, version=flow.version, document=stored))
    await session.commit()  # a concurrent edit of the same version number fails on (flow_id, version): 409
    return _out(flow, stored)


WRITE_ERRORS = error_responses(400, 413, 415)


@router.post("", status_code=status.HTTP_201_CREATED, openapi_extra=_BODY, responses=WRITE_ERRORS)
async def create_flow(body: RawBody, ctx: Admin, session: SessionDep) -> FlowOut:
    document = _document(body)
    await _check_audio(session, ctx.space_id, document)
    flow = Flow(space_id=ctx.space_id, name=document.name, version=1)
    session.add(flow)
    await session.flush()
    stored = _stored(document)
    session.add(FlowVersion(space_id=ctx.space_id, flow_id=flow.id, version=1, document=stored))
    await session.commit()
    return _out(flow, stored)


@router.get("")
async def list_flows(
    ctx: Viewer, session: SessionDep, limit: int = LimitQuery, cursor: str | None = CursorQuery
) -> Page[FlowOut]:
    rows, next_cursor = await paginate(session, select(Flow).where(Flow.space_id == ctx.space_id), Flow, limit, cursor)
    return Page(data=[_out(r, (await _current(session, r)).document) for r in rows], next_cursor=next_cursor)


@router.get("/{flow_id}")
async def get_flow(flow_id: ResourceId, ctx: Viewer, session: SessionDep) -> FlowOut:
    flow = await get_in_space(session, Flow, ctx.space_id, flow_id, "flow")
    return _out(flow, (await _current(session, flow)).document)


@router.put("/{flow_id}", openapi_extra=_BODY, responses=error_responses(400, 409, 413, 415))
async def replace_flow(flow_id: ResourceId, body: RawBody, ctx: Admin, session: SessionDep) -> FlowOut:
    """Replace the document: a new version."""
    flow = await get_in_space(session, Flow, ctx.space_id, flow_id, "flow")
    return await _new_version(session, flow, _document(body))


@router.patch("/{flow_id}", openapi_extra=_PARTIAL, responses=error_responses(400, 409, 413, 415))
async def update_flow(flow_id: ResourceId, body: RawBody, ctx: Admin, session: SessionDep) -> FlowOut:
    """Replace the top-level fields given (``name``, ``steps``, ``business_hours``, ...): a new version."""
    flow = await get_in_space(session, Flow, ctx.space_id, flow_id, "flow")
    current = (await _current(session, flow)).document
    return await _new_version(session, flow, _document({**current, **body}))


@router.delete("/{flow_id}", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(409))
async def delete_flow(flow_id: ResourceId, ctx: Admin, session: SessionDep) -> None:
    """Calls already in the flow keep running their version; numbers must stop routing to it first."""
    flow = await get_in_space(session, Flow, ctx.space_id, flow_id, "flow")
    await ensure_unused(session, PhoneNumber.flow_id, flow.id, "flow")
    await session.delete(flow)
    await session.commit()


@router.get("/{flow_id}/versions")
async def list_flow_versions(
    flow_id: ResourceId, ctx: Viewer, session: SessionDep, limit: int = LimitQuery, cursor: str | None = CursorQuery
) -> Page[FlowVersionOut]:
    flow = await get_in_space(session, Flow, ctx.space_id, flow_id, "flow")
    query = select(FlowVersion).where(FlowVersion.flow_id == flow.id, FlowVersion.space_id == ctx.space_id)
    rows, next_cursor = await paginate(session, query, FlowVersion, limit, cursor)
    return Page(data=[_version_out(r) for r in rows], next_cursor=next_cursor)


@router.get("/{flow_id}/versions/{version}")
async def get_flow_version(flow_id: ResourceId, version: Version, ctx: Viewer, session: SessionDep) -> FlowVersionOut:
    flow = await get_in_space(session, Flow, ctx.space_id, flow_id, "flow")
    row = await session.scalar(
        select(FlowVersion).where(FlowVersion.flow_id == flow.id, FlowVersion.version == version)
    )
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "flow version not found")
    return _version_out(row)
