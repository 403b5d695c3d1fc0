"""SMS of a space: send a message from one of its numbers, list its threads, read one live from its workflow."""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Query, status
from fastapi.exceptions import RequestValidationError
from sqlalchemy import select
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from api.crud import get_in_space
from api.deps import Operator, SessionDep, SettingsDep, TemporalDep, Viewer
from api.pagination import CursorQuery, LimitQuery, paginate
from models import sms as m
from models.enums import MessageRole
from models.schemas.common import Page
from models.schemas.sms import (
    MessageQueued,
    MessageSend,
    SmsMessageOut,
    SmsThreadDetail,
    SmsThreadOut,
    ThreadMessageOut,
)
from models.tables import Message, PhoneNumber, SmsOptOut, SmsThread, new_id
from workflows.sms_client import SmsClient, SmsRefusedError, Thread

router = APIRouter(prefix="/v1/spaces/{space_id}", tags=["sms"])


async def _sms_client(temporal: TemporalDep, settings: SettingsDep) -> SmsClient:
    return SmsClient(await temporal.client(), settings.task_queue)


SmsClientDep = Annotated[SmsClient, Depends(_sms_client)]


def _invalid(field: str, reason: str) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": ("body", field), "msg": reason}])


def _message_id(space_id: str, idempotency_key: str | None) -> str:
    """A fresh id, or one fixed by the client's Idempotency-Key (a retried request is the same message)."""
    if idempotency_key is None:
        return new_id("messages")
    return "msg_" + hashlib.sha256(f"{space_id}|{idempotency_key}".encode()).hexdigest()[:32]


@router.post("/messages", status_code=status.HTTP_202_ACCEPTED)
async def send_message(
    body: MessageSend,
    ctx: Operator,
    session: SessionDep,
    sms: SmsClientDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> MessageQueued:
    """Queue a message on the thread between the from-number and the recipient; it leaves at the thread's pace.
    409 when the recipient opted out (sent STOP)."""
    number = await session.scalar(
        select(PhoneNumber).where(PhoneNumber.e164 == body.from_number, PhoneNumber.space_id == ctx.space_id)
    )
    if number is None or not number.enabled:
        raise _invalid("from_number", "not an enabled number of this space")
    if not number.sms_enabled:
        raise _invalid("from_number", "the number is not SMS-enabled")
    if not body.body and not body.media_urls:
        raise _invalid("body", "a message needs a body or media_urls")
    thread = Thread(ctx.space_id, number.id, number.e164, body.to_number)
    request = m.SendSms(
        _message_id(ctx.space_id, idempotency_key), body.body, [str(u) for u in body.media_urls], MessageRole.STAFF
    )
    try:
        queued = await sms.send(thread, request)
    except SmsRefusedError as exc:
        if exc.kind == m.INVALID_MESSAGE:
            field, _, reason = exc.reason.partition(": ")
            raise _invalid(field, reason or exc.reason) from exc
        raise HTTPException(status.HTTP_409_CONFLICT, exc.reason) from exc
    except (WorkflowUpdateFailedError, RPCError) as exc:  # e.g. the thread's run was completing: retry
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "the thread is busy: retry (with the same Idempotency-Key)"
        ) from exc
    return MessageQueued(
        id=queued.message_id,
        thread_id=thread.workflow_id,
        conversation_id=queued.conversation_id,
        status=queued.status,
        segments=queued.segments,
        encoding=queued.encoding,
        position=queued.position,
    )


@router.get("/sms-threads")
async def list_threads(
    ctx: Viewer,
    session: SessionDep,
    phone_number_id: str | None = Query(default=None, max_length=40),
    limit: int = LimitQuery,
    cursor: str | None = CursorQuery,
) -> Page[SmsThreadOut]:
    stmt = select(SmsThread).where(SmsThread.space_id == ctx.space_id)
    if phone_number_id is not None:
        stmt = stmt.where(SmsThread.phone_number_id == phone_number_id)
    rows, next_cursor = await paginate(session, stmt, SmsThread, limit, cursor)
    return Page(data=[SmsThreadOut.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get("/sms-threads/{thread_id}")
async def get_thread(thread_id: str, ctx: Viewer, session: SessionDep, sms: SmsClientDep) -> SmsThreadDetail:
    """The thread with its state live from its workflow (or its last run's final state)."""
    row = await get_in_space(session, SmsThread, ctx.space_id, thread_id, "sms thread")
    try:
        snapshot = await sms.snapshot(row.id)
    except RPCError as exc:  # e.g. no worker to answer the query of a completed run
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "thread state unavailable, retry shortly") from exc
    base = SmsThreadOut.model_validate(row).model_dump()
    if snapshot is None:  # its workflow history is gone (retention): what the database knows
        opted_out = await session.scalar(
            select(SmsOptOut.id).where(
                SmsOptOut.space_id == ctx.space_id,
                SmsOptOut.phone_number_id == row.phone_number_id,
                SmsOptOut.party == row.party,
            )
        )
        return SmsThreadDetail(
            **base, state=m.SmsThreadState.PAUSED, opted_out=opted_out is not None, running=False, pending=0,
            total_messages=0, runs=0, recent=[], failures=[],
        )  # fmt: skip
    view = snapshot.view
    return SmsThreadDetail(
        **base,
        state=view.state,
        opted_out=view.opted_out,
        running=snapshot.running,
        pending=view.pending,
        total_messages=view.total_messages,
        runs=view.runs,
        recent=[ThreadMessageOut.model_validate(asdict(x)) for x in view.messages],
        failures=[ThreadMessageOut.model_validate(asdict(x)) for x in view.failures],
    )


@router.get("/sms-threads/{thread_id}/messages")
async def list_thread_messages(
    thread_id: str,
    ctx: Viewer,
    session: SessionDep,
    limit: int = LimitQuery,
    cursor: str | None = CursorQuery,
) -> Page[SmsMessageOut]:
    row = await get_in_space(session, SmsThread, ctx.space_id, thread_id, "sms thread")
    if row.conversation_id is None:
        return Page(data=[])
    stmt = select(Message).where(
        Message.space_id == ctx.space_id,
        Message.conversation_id == row.conversation_id,
        Message.source == m.SMS_SOURCE,
    )
    rows, next_cursor = await paginate(session, stmt, Message, limit, cursor)
    return Page(data=[SmsMessageOut.model_validate(r) for r in rows], next_cursor=next_cursor)
