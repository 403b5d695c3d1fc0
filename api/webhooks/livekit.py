"""LiveKit webhooks: verified (JWT signed with the API secret, carrying the body's sha256), each event id
processed once, SIP participants joining and leaving turned into call signals."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Header, Request, status
from livekit import api as lk
from livekit.protocol.models import ParticipantInfo
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import SessionDep, SettingsDep, TemporalDep
from api.webhooks.livekit_verify import verified_livekit_event
from models import calls as c
from models import recordings as rec
from models.call_contract import MetadataError, RoomMetadata, call_workflow_id, livekit_sip_call
from models.enums import EndReason
from models.sip_headers import ROLE_ATTRIBUTE, ROLE_TRANSFER_TARGET, WORKFLOW_ID_ATTRIBUTE
from models.tables import Call, PhoneNumber, WebhookEvent
from workflows.call_client import CallClient, CallRef

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


def _sip_call(participant: ParticipantInfo, space_id: str | None) -> str | None:
    """The workflow a SIP participant's events belong to: the one named by the attribute we (or the carrier's
    webhook, through a SIP header) set, else the one LiveKit's own SIP call id derives."""
    attributes = dict(participant.attributes)
    if attributes.get(WORKFLOW_ID_ATTRIBUTE):
        return attributes[WORKFLOW_ID_ATTRIBUTE]
    sip_call_id = attributes.get("sip.callID")
    return call_workflow_id(space_id, sip_call_id) if sip_call_id else None


async def _number(session: AsyncSession, participant: ParticipantInfo) -> PhoneNumber | None:
    """Our number on a SIP participant's trunk: it decides the space, whatever the SIP headers claim."""
    our_number = participant.attributes.get("sip.trunkPhoneNumber", "")
    return await session.scalar(select(PhoneNumber).where(PhoneNumber.e164 == our_number)) if our_number else None


async def _sip_joined(session: AsyncSession, calls: CallClient, event: lk.WebhookEvent) -> None:
    participant = event.participant
    number = await _number(session, participant)
    space_id = number.space_id if number else None
    connected = c.ConnectedEvent(room_name=event.room.name, participant_identity=participant.identity)
    attributes = dict(participant.attributes)
    if attributes.get(WORKFLOW_ID_ATTRIBUTE):
        # A call we know already (dialed out, or bridged by the carrier's webhook): it only connects, if it is
        # a call of the space whose number the participant reached.
        await calls.call(attributes[WORKFLOW_ID_ATTRIBUTE], space_id=space_id).connected(connected)
        return
    sip_call_id = attributes.get("sip.callID")
    if not sip_call_id:
        log.warning("SIP participant without a call id", extra={"room": event.room.name})
        return
    start = livekit_sip_call(
        space_id=space_id,
        phone_number_id=number.id if number else None,
        sip_call_id=sip_call_id,
        from_number=attributes.get("sip.phoneNumber", ""),
        to_number=attributes.get("sip.trunkPhoneNumber", ""),
        room=event.room.name,
        caller_identity=participant.identity,
    )
    await calls.start(start, connected)


async def _sip_left(session: AsyncSession, calls: CallClient, event: lk.WebhookEvent) -> None:
    participant = event.participant
    if participant.attributes.get(ROLE_ATTRIBUTE) == ROLE_TRANSFER_TARGET:
        return  # only the call's remote party leaving ends the call
    number = await _number(session, participant)
    space_id = number.space_id if number else None
    workflow_id = _sip_call(participant, space_id)
    if workflow_id:
        await calls.call(workflow_id, space_id=space_id).hangup_received(c.HangupEvent(by="caller"))


async def _room_call(session: AsyncSession, calls: CallClient, room: str, metadata: str) -> CallRef | None:
    """The call a room belongs to: named in the metadata of rooms we create, else found by the room's name
    (rooms LiveKit's dispatch rule made for arriving SIP calls)."""
    try:
        ours = RoomMetadata.decode(metadata)
        return calls.call(ours.workflow_id, space_id=ours.space_id)
    except MetadataError:
        pass
    call = await session.scalar(select(Call).where(Call.room_name == room)) if room else None
    return calls.call(call.workflow_id, space_id=call.space_id) if call is not None else None


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
    calls = await temporal.calls()
    is_sip = event.participant.kind == ParticipantInfo.Kind.SIP
    if event.event == "participant_joined" and is_sip:
        await _sip_joined(session, calls, event)
    elif event.event == "participant_left" and is_sip:
        await _sip_left(session, calls, event)
    elif event.event == "participant_left" and event.participant.kind == ParticipantInfo.Kind.AGENT:
        # An agent leaving a call that goes on (its worker died): the workflow brings a new one in.
        call = await _room_call(session, calls, event.room.name, event.room.metadata)
        if call is not None:
            await call.agent_left(c.AgentLeft(identity=event.participant.identity))
    elif event.event.startswith("egress_"):
        await _egress(session, calls, event.egress_info)
    elif event.event == "room_finished":
        call = await _room_call(session, calls, event.room.name, event.room.metadata)
        if call is not None:
            await call.hangup_received(c.HangupEvent(reason=EndReason.COMPLETED, by="livekit"))
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


async def _egress(session: AsyncSession, calls: CallClient, info: lk.EgressInfo) -> None:
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
    await calls.call(call.workflow_id, space_id=call.space_id).recording_update(update)
