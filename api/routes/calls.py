"""Calls of a space: place outbound calls, list them, read one live from its workflow, control it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TypeVar

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.exceptions import RequestValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import not_found
from api.deps import Operator, ResourceId, SessionDep, SpaceContext, TemporalDep, Viewer
from api.errors import error_responses
from api.pagination import CursorQuery, LimitQuery, paginate
from api.voicemail_assets import message_asset_problem
from models import calls as c
from models.call_contract import call_workflow_id, outbound_call
from models.enums import CallDirection, CallState
from models.schemas.calls import CallDetail, CallOut, DtmfCreate, OutboundCallCreate, TransferCreate, TransferOut
from models.schemas.common import Page
from models.tables import Agent, Call, PhoneNumber, new_id
from workflows.call_client import (
    CallActionFailed,
    CallActionRefused,
    CallClient,
    CallNotRunning,
    CallRef,
)
from workflows.transcription_client import TranscriptionClient

router = APIRouter(prefix="/v1/spaces/{space_id}/calls", tags=["calls"])
T = TypeVar("T")


def _detail(view: c.CallStateView) -> CallDetail:
    data = asdict(view)
    data["id"] = data.pop("call_id")
    return CallDetail.model_validate(data)


def _invalid(field: str, reason: str) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": ("body", field), "msg": reason}])


async def _call(session: AsyncSession, calls: CallClient, space_id: str, call_id: str) -> CallRef:
    """The call, as this space sees it: another space's call is no call (404 when its state is asked for)."""
    row = await session.get(Call, call_id)
    if row is not None and row.space_id != space_id:
        raise not_found("call")
    # A call just placed may not have its row yet: its workflow id follows from its space and id.
    workflow_id = row.workflow_id if row is not None else call_workflow_id(space_id, call_id)
    return calls.call(workflow_id, space_id=space_id)


async def _state(call: CallRef) -> c.CallStateView:
    try:
        return await call.state()
    except CallNotRunning as exc:
        raise not_found("call") from exc


async def _act(action: Callable[[], Awaitable[T]]) -> T:
    """Run a call action; an illegal transition is a 409 with the validator's reason."""
    try:
        return await action()
    except CallActionFailed as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, exc.reason) from exc
    except (CallActionRefused, CallNotRunning) as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, exc.reason) from exc


def _by(ctx: SpaceContext) -> str:
    return f"api-key:{ctx.principal.key_id}"


@router.post("", status_code=status.HTTP_201_CREATED, responses=error_responses(503))
async def place_call(body: OutboundCallCreate, ctx: Operator, session: SessionDep, temporal: TemporalDep) -> CallDetail:
    """Dial out from one of the space's numbers; the agent talks once the callee answers."""
    number = await session.scalar(
        select(PhoneNumber).where(PhoneNumber.e164 == body.from_number, PhoneNumber.space_id == ctx.space_id)
    )
    if number is None or not number.enabled:
        raise _invalid("from_number", "not an enabled number of this space")
    agent_id = body.agent_id or number.agent_id
    if agent_id is None:
        raise _invalid("agent_id", "the from-number routes to no agent: name one")
    agent = await session.get(Agent, agent_id)
    if agent is None or agent.space_id != ctx.space_id:
        raise _invalid("agent_id", f"no agent {agent_id!r} in this space")
    asset_id = body.amd.message_asset_id if body.amd is not None else None
    if asset_id is not None and (problem := await message_asset_problem(session, ctx.space_id, asset_id)):
        raise _invalid("amd.message_asset_id", problem)
    start = outbound_call(
        call_id=new_id("calls"),
        space_id=ctx.space_id,
        phone_number_id=number.id,
        media_mode=number.media_mode,
        from_number=body.from_number,
        to_number=body.to_number,
        agent_id=agent_id,
        amd=c.AmdOptions(body.amd.on_machine, body.amd.message, asset_id) if body.amd is not None else None,
    )
    calls = await temporal.calls()
    await calls.start(start)
    return _detail(await _state(calls.call(start.workflow_id, space_id=ctx.space_id)))


@router.get("")
async def list_calls(
    ctx: Viewer,
    session: SessionDep,
    state: CallState | None = Query(default=None),
    direction: CallDirection | None = Query(default=None),
    limit: int = LimitQuery,
    cursor: str | None = CursorQuery,
) -> Page[CallOut]:
    stmt = select(Call).where(Call.space_id == ctx.space_id)
    if state is not None:
        stmt = stmt.where(Call.state == state)
    if direction is not None:
        stmt = stmt.where(Call.direction == direction)
    rows, next_cursor = await paginate(session, stmt, Call, limit, cursor)
    return Page(data=[CallOut.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get("/{call_id}", responses=error_responses(503))
async def get_call(call_id: ResourceId, ctx: Viewer, session: SessionDep, temporal: TemporalDep) -> CallDetail:
    view = await _state(await _call(session, await temporal.calls(), ctx.space_id, call_id))
    if view.transcription is not None:  # how far the recording's transcription has got, live
        client = TranscriptionClient(await temporal.client())
        view.transcription = await client.progress(view.transcription.asset_id) or view.transcription
    return _detail(view)


@router.post("/{call_id}/hold", responses=error_responses(409, 502, 503))
async def hold_call(call_id: ResourceId, ctx: Operator, session: SessionDep, temporal: TemporalDep) -> CallDetail:
    call = await _call(session, await temporal.calls(), ctx.space_id, call_id)
    return _detail(await _act(lambda: call.hold(c.HoldRequest(by=_by(ctx)))))


@router.post("/{call_id}/resume", responses=error_responses(409, 502, 503))
async def resume_call(call_id: ResourceId, ctx: Operator, session: SessionDep, temporal: TemporalDep) -> CallDetail:
    call = await _call(session, await temporal.calls(), ctx.space_id, call_id)
    return _detail(await _act(lambda: call.resume(c.ResumeRequest(by=_by(ctx)))))


@router.post("/{call_id}/dtmf", responses=error_responses(409, 502, 503))
async def send_dtmf(
    call_id: ResourceId, body: DtmfCreate, ctx: Operator, session: SessionDep, temporal: TemporalDep
) -> CallDetail:
    call = await _call(session, await temporal.calls(), ctx.space_id, call_id)
    return _detail(await _act(lambda: call.send_dtmf(c.DtmfRequest(digits=body.digits, by=_by(ctx)))))


@router.post("/{call_id}/hangup", responses=error_responses(409, 502, 503))
async def hang_up(call_id: ResourceId, ctx: Operator, session: SessionDep, temporal: TemporalDep) -> CallDetail:
    call = await _call(session, await temporal.calls(), ctx.space_id, call_id)
    return _detail(await _act(lambda: call.hangup(c.HangupRequest(by=_by(ctx)))))


@router.post("/{call_id}/transfer", responses=error_responses(409, 502, 503))
async def transfer_call(
    call_id: ResourceId, body: TransferCreate, ctx: Operator, session: SessionDep, temporal: TemporalDep
) -> TransferOut:
    """Cold: the carrier takes the caller to the target (SIP REFER). Warm: dial the target in, then leave.
    A failed transfer returns the call to ACTIVE and says why."""
    call = await _call(session, await temporal.calls(), ctx.space_id, call_id)
    request = c.TransferRequest(target=body.target, mode=c.TransferMode(body.mode), by=_by(ctx))
    result = await _act(lambda: call.transfer(request))
    return TransferOut.model_validate(asdict(result))


@router.post("/{call_id}/recording/pause", responses=error_responses(409, 502, 503))
async def pause_recording(call_id: ResourceId, ctx: Operator, session: SessionDep, temporal: TemporalDep) -> CallDetail:
    """Stop recording while the caller says a secret (a card number): the span is silence in the file and is
    marked on the call's timeline. 409 when the call is not being recorded, or its recording cannot pause."""
    call = await _call(session, await temporal.calls(), ctx.space_id, call_id)
    return _detail(await _act(lambda: call.pause_recording(c.RecordingPauseRequest(by=_by(ctx)))))


@router.post("/{call_id}/recording/resume", responses=error_responses(409, 502, 503))
async def resume_recording(
    call_id: ResourceId, ctx: Operator, session: SessionDep, temporal: TemporalDep
) -> CallDetail:
    call = await _call(session, await temporal.calls(), ctx.space_id, call_id)
    return _detail(await _act(lambda: call.resume_recording(c.RecordingPauseRequest(by=_by(ctx)))))
