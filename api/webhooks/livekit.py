"""LiveKit webhooks: verified (JWT signed with the API secret, carrying the body's sha256), each event id
processed once, SIP participants joining and leaving turned into call signals."""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, status
from livekit import api as lk
from livekit.protocol.models import ParticipantInfo
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import SessionDep, SettingsDep, TemporalDep
from api.webhooks.calls import call_id_for, signal_call, start_call
from api.webhooks.livekit_verify import verified_livekit_event
from models import calls as c
from models import recordings as rec
from models.enums import CallDirection, EndReason, MediaMode
from models.settings import Settings
from models.sip_headers import ROLE_ATTRIBUTE, ROLE_TRANSFER_TARGET, WORKFLOW_ID_ATTRIBUTE
from models.tables import Call, PhoneNumber, WebhookEvent

log = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks", tags=["webhooks"])


async def _first_time(session: AsyncSession, event_id: str) -> bool:
    if not event_id:
        return True
    return await session.scalar(select(WebhookEvent.id).where(WebhookEvent.id == event_id)) is None


async def _remember(session: AsyncSession, event_id: str) -> None:
    if not event_id:
        return
    session.add(WebhookEvent(id=event_id, source="livekit"))
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()  # delivered twice at once: both handed over, the workflow dedupes


def _workflow_id(participant: ParticipantInfo) -> str | None:
    attributes = dict(participant.attributes)
    if attributes.get(WORKFLOW_ID_ATTRIBUTE):
        return attributes[WORKFLOW_ID_ATTRIBUTE]
    sip_call_id = attributes.get("sip.callID")
    return c.call_workflow_id(sip_call_id) if sip_call_id else None


async def _sip_joined(
    session: AsyncSession, settings: Settings, temporal_client: object, event: lk.WebhookEvent
) -> None:
    participant = event.participant
    workflow_id = _workflow_id(participant)
    if workflow_id is None:
        log.warning("SIP participant without a call id", extra={"room": event.room.name})
        return
    attributes = dict(participant.attributes)
    connected = c.ConnectedEvent(room_name=event.room.name, participant_identity=participant.identity)
    our_number = attributes.get("sip.trunkPhoneNumber", "")
    number = await session.scalar(select(PhoneNumber).where(PhoneNumber.e164 == our_number)) if our_number else None
    start = c.StartCall(
        call_id=call_id_for(workflow_id),
        workflow_id=workflow_id,
        direction=CallDirection.INBOUND,
        from_number=attributes.get("sip.phoneNumber", ""),
        to_number=our_number,
        carrier_call_id=attributes.get("sip.callID", workflow_id),
        space_id=number.space_id if number else None,
        phone_number_id=number.id if number else None,
        media_mode=MediaMode.LIVEKIT,
        room_name=event.room.name,
        caller_identity=participant.identity,
    )
    if attributes.get(WORKFLOW_ID_ATTRIBUTE):
        # A call we know already (dialed out, or bridged by the carrier's webhook): it only connects.
        await signal_call(temporal_client, workflow_id, c.SIGNAL_CONNECTED, connected)  # type: ignore[arg-type]
        return
    await start_call(temporal_client, settings.task_queue, start, c.SIGNAL_CONNECTED, connected)  # type: ignore[arg-type]


@router.post("/livekit", status_code=status.HTTP_204_NO_CONTENT)
async def livekit_webhook(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    authorization: Annotated[str | None, Header()] = None,
) -> None:
    body = await request.body()
    event = verified_livekit_event(settings, body, authorization)
    if not await _first_time(session, event.id):
        return
    client = await temporal.client()
    is_sip = event.participant.kind == ParticipantInfo.Kind.SIP
    if event.event == "participant_joined" and is_sip:
        await _sip_joined(session, settings, client, event)
    elif event.event == "participant_left" and is_sip:
        workflow_id = _workflow_id(event.participant)
        if workflow_id and event.participant.attributes.get(ROLE_ATTRIBUTE) != ROLE_TRANSFER_TARGET:
            await signal_call(client, workflow_id, c.SIGNAL_HANGUP_RECEIVED, c.HangupEvent(by="caller"))
    elif event.event.startswith("egress_"):
        await _egress(session, client, event.egress_info)
    elif event.event == "room_finished":
        workflow_id = _room_workflow(event.room.metadata)
        if workflow_id:
            hangup = c.HangupEvent(reason=EndReason.COMPLETED, by="livekit")
            await signal_call(client, workflow_id, c.SIGNAL_HANGUP_RECEIVED, hangup)
    await _remember(session, event.id)


EGRESS_STATUS = {
    lk.EgressStatus.EGRESS_STARTING: rec.RECORDING_ACTIVE,
    lk.EgressStatus.EGRESS_ACTIVE: rec.RECORDING_ACTIVE,
    lk.EgressStatus.EGRESS_ENDING: rec.RECORDING_STOPPING,
    lk.EgressStatus.EGRESS_COMPLETE: rec.RECORDING_COMPLETE,
    lk.EgressStatus.EGRESS_FAILED: rec.RECORDING_FAILED,
    lk.EgressStatus.EGRESS_ABORTED: rec.RECORDING_FAILED,
    lk.EgressStatus.EGRESS_LIMIT_REACHED: rec.RECORDING_FAILED,
}


async def _egress(session: AsyncSession, client: Any, info: lk.EgressInfo) -> None:
    """Recording progress goes to the call whose room is recorded."""
    call = await session.scalar(select(Call).where(Call.room_name == info.room_name)) if info.room_name else None
    if call is None:
        return
    location = info.file_results[0].location if info.file_results else None
    update = rec.RecordingUpdate(
        egress_id=info.egress_id,
        status=EGRESS_STATUS.get(info.status, rec.RECORDING_ACTIVE),
        location=location or None,
        error=info.error or None,
    )
    await signal_call(client, call.workflow_id, rec.SIGNAL_RECORDING_UPDATE, update)


def _room_workflow(metadata: str) -> str | None:
    try:
        parsed = json.loads(metadata) if metadata else {}
    except ValueError:
        return None
    value = parsed.get("workflow_id") if isinstance(parsed, dict) else None
    return value if isinstance(value, str) else None
