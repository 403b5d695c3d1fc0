"""Calls of a space: place outbound calls, list them, read one live from its workflow, control it."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.exceptions import RequestValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.auth import not_found
from api.deps import Operator, ResourceId, SessionDep, SettingsDep, SpaceContext, TemporalDep, Viewer
from api.errors import error_responses
from api.pagination import CursorQuery, LimitQuery, paginate
from api.webhooks.calls import start_call
from models import calls as c
from models.enums import CallDirection, CallState
from models.schemas.calls import CallDetail, CallOut, DtmfCreate, OutboundCallCreate, TransferCreate, TransferOut
from models.schemas.common import Page
from models.tables import Agent, Call, PhoneNumber, new_id

router = APIRouter(prefix="/v1/spaces/{space_id}/calls", tags=["calls"])


def _detail(view: c.CallStateView) -> CallDetail:
    data = asdict(view)
    data["id"] = data.pop("call_id")
    return CallDetail.model_validate(data)


def _invalid(field: str, reason: str) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": ("body", field), "msg": reason}])


async def _workflow_id(session: AsyncSession, client: Client, space_id: str, call_id: str) -> str:
    """The call's workflow, if the call belongs to this space; 404 otherwise."""
    row = await session.get(Call, call_id)
    if row is not None:
        if row.space_id != space_id:
            raise not_found("call")
        return row.workflow_id
    # A call just placed may not have its row yet: its workflow knows its space.
    workflow_id = c.call_workflow_id(call_id)
    try:
        view = await client.get_workflow_handle(workflow_id).query(c.QUERY_GET_STATE, result_type=c.CallStateView)
    except RPCError as exc:
        raise not_found("call") from exc
    if view.space_id != space_id:
        raise not_found("call")
    return workflow_id


async def _state(client: Client, workflow_id: str) -> c.CallStateView:
    try:
        return await client.get_workflow_handle(workflow_id).query(c.QUERY_GET_STATE, result_type=c.CallStateView)
    except RPCError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "call state unavailable") from exc


async def _update(client: Client, workflow_id: str, name: str, arg: object, result_type: type[Any]) -> Any:
    """Run an update; an illegal transition is a 409 with the validator's reason."""
    try:
        return await client.get_workflow_handle(workflow_id).execute_update(name, arg, result_type=result_type)
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.type == c.CALL_ACTION_FAILED:
            raise HTTPException(status.HTTP_502_BAD_GATEWAY, cause.message) from exc
        reason = cause.message if isinstance(cause, ApplicationError) else str(cause)
        raise HTTPException(status.HTTP_409_CONFLICT, reason) from exc
    except RPCError as exc:
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            raise HTTPException(status.HTTP_409_CONFLICT, "the call has ended") from exc
        raise


def _by(ctx: SpaceContext) -> str:
    return f"api-key:{ctx.principal.key_id}"


@router.post("", status_code=status.HTTP_201_CREATED, responses=error_responses(503))
async def place_call(
    body: OutboundCallCreate, ctx: Operator, session: SessionDep, settings: SettingsDep, temporal: TemporalDep
) -> CallDetail:
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
    call_id = new_id("calls")
    start = c.StartCall(
        call_id=call_id,
        workflow_id=c.call_workflow_id(call_id),
        direction=CallDirection.OUTBOUND,
        from_number=body.from_number,
        to_number=body.to_number,
        carrier_call_id=call_id,
        space_id=ctx.space_id,
        phone_number_id=number.id,
        media_mode=number.media_mode,
        agent_id=agent_id,
    )
    client = await temporal.client()
    await start_call(client, settings.task_queue, start)
    return _detail(await _state(client, start.workflow_id))


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
    client = await temporal.client()
    return _detail(await _state(client, await _workflow_id(session, client, ctx.space_id, call_id)))


async def _control(
    ctx: SpaceContext, session: AsyncSession, temporal: Any, call_id: str, name: str, arg: object
) -> CallDetail:
    client = await temporal.client()
    workflow_id = await _workflow_id(session, client, ctx.space_id, call_id)
    view: c.CallStateView = await _update(client, workflow_id, name, arg, c.CallStateView)
    return _detail(view)


@router.post("/{call_id}/hold", responses=error_responses(409, 502, 503))
async def hold_call(call_id: ResourceId, ctx: Operator, session: SessionDep, temporal: TemporalDep) -> CallDetail:
    return await _control(ctx, session, temporal, call_id, c.UPDATE_HOLD, c.HoldRequest(by=_by(ctx)))


@router.post("/{call_id}/resume", responses=error_responses(409, 502, 503))
async def resume_call(call_id: ResourceId, ctx: Operator, session: SessionDep, temporal: TemporalDep) -> CallDetail:
    return await _control(ctx, session, temporal, call_id, c.UPDATE_RESUME, c.ResumeRequest(by=_by(ctx)))


@router.post("/{call_id}/dtmf", responses=error_responses(409, 502, 503))
async def send_dtmf(
    call_id: ResourceId, body: DtmfCreate, ctx: Operator, session: SessionDep, temporal: TemporalDep
) -> CallDetail:
    request = c.DtmfRequest(digits=body.digits, by=_by(ctx))
    return await _control(ctx, session, temporal, call_id, c.UPDATE_SEND_DTMF, request)


@router.post("/{call_id}/hangup", responses=error_responses(409, 502, 503))
async def hang_up(call_id: ResourceId, ctx: Operator, session: SessionDep, temporal: TemporalDep) -> CallDetail:
    return await _control(ctx, session, temporal, call_id, c.UPDATE_HANGUP, c.HangupRequest(by=_by(ctx)))


@router.post("/{call_id}/transfer", responses=error_responses(409, 502, 503))
async def transfer_call(
    call_id: ResourceId, body: TransferCreate, ctx: Operator, session: SessionDep, temporal: TemporalDep
) -> TransferOut:
    """Cold: the carrier takes the caller to the target (SIP REFER). Warm: dial the target in, then leave.
    A failed transfer returns the call to ACTIVE and says why."""
    client = await temporal.client()
    workflow_id = await _workflow_id(session, client, ctx.space_id, call_id)
    request = c.TransferRequest(target=body.target, mode=c.TransferMode(body.mode), by=_by(ctx))
    result: c.TransferResult = await _update(client, workflow_id, c.UPDATE_TRANSFER, request, c.TransferResult)
    return TransferOut.model_validate(asdict(result))
