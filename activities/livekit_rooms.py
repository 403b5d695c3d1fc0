"""LiveKit room control for calls, through the official ``livekit-api`` client: the call's room, agent
dispatch, hold, cold transfer (SIP REFER), dialing (outbound calls, warm transfer), DTMF, clean-up.

A callee or transfer target refusing (busy, no answer, declined) is a result (``SipOutcome``), not an
error: the workflow decides what it means. LiveKit refusing the request itself is non-retryable."""

from __future__ import annotations

import json
import logging

from google.protobuf.duration_pb2 import Duration
from livekit import api as lk
from temporalio import activity
from temporalio.exceptions import ApplicationError

from models.call_contract import DispatchMetadata, RoomMetadata
from models.calls import (
    LIVEKIT_NOT_CONFIGURED,
    AgentDispatched,
    CreateRoomInput,
    DeleteRoomInput,
    DialParticipantInput,
    DispatchAgentInput,
    DtmfSent,
    HoldApplied,
    ParticipantRemoved,
    RemoveParticipantInput,
    RoomCreated,
    RoomDeleted,
    SendDtmfInput,
    SetHoldInput,
    SipOutcome,
    TransferParticipantInput,
)
from models.sip_headers import DTMF_TOPIC

log = logging.getLogger(__name__)

HOLD_ATTRIBUTE = "telephony.hold"  # set on the caller while on hold: the agent pauses while it is "true"
EMPTY_TIMEOUT_SECONDS = 120
LIVEKIT_REFUSED = "LiveKitRefused"


def _not_found(exc: lk.TwirpError) -> bool:
    return exc.status == 404 or exc.code == "not_found"


def _failure(exc: lk.TwirpError) -> Exception:
    """LiveKit refusing the request (bad credentials, unknown participant) is not fixed by retrying."""
    if 400 <= exc.status < 500 and exc.status not in (408, 429):
        return ApplicationError(f"LiveKit refused: {exc.code}: {exc.message}", type=LIVEKIT_REFUSED, non_retryable=True)
    return exc


def _sip_outcome(exc: lk.TwirpError) -> SipOutcome:
    code = exc.sip_status_code if isinstance(exc, lk.SipCallError) else None
    no_answer = code is None and exc.code in ("canceled", "deadline_exceeded")
    return SipOutcome(ok=False, sip_status_code=code, error=str(exc), no_answer=no_answer)


class LiveKitRoomActivities:
    def __init__(self, livekit: lk.LiveKitAPI | None, agent_name: str) -> None:
        self._livekit = livekit
        self._agent_name = agent_name

    def _api(self) -> lk.LiveKitAPI:
        if self._livekit is None:
            raise ApplicationError("LiveKit is not configured", type=LIVEKIT_NOT_CONFIGURED, non_retryable=True)
        return self._livekit

    @activity.defn
    async def create_room(self, request: CreateRoomInput) -> RoomCreated:
        """Create the call's room (LiveKit answers the existing room when it already exists)."""
        metadata = RoomMetadata(
            request.workflow_id or request.room_name, request.call_id, request.space_id, request.direction
        ).encode()
        try:
            room = await self._api().room.create_room(
                lk.CreateRoomRequest(name=request.room_name, metadata=metadata, empty_timeout=EMPTY_TIMEOUT_SECONDS)
            )
        except lk.TwirpError as exc:
            raise _failure(exc) from exc
        return RoomCreated(room_name=room.name, room_sid=room.sid)

    @activity.defn
    async def dispatch_agent(self, request: DispatchAgentInput) -> AgentDispatched:
        """Dispatch the space's agent into the room, once per call even when retried."""
        api = self._api()
        metadata = DispatchMetadata(
            request.workflow_id or request.room_name,
            request.call_id,
            request.space_id,
            request.agent_id,
            request.conversation_id,
            request.resumed,
            request.attempt,
            request.amd.policy if request.amd is not None else None,
            request.amd.message if request.amd is not None else None,
            request.amd.message_asset_id if request.amd is not None else None,
            request.flow,
        ).encode()
        try:
            for existing in await api.agent_dispatch.list_dispatch(request.room_name):
                if existing.agent_name == self._agent_name and existing.metadata == metadata:
                    return AgentDispatched(dispatch_id=existing.id)
            dispatch = await api.agent_dispatch.create_dispatch(
                lk.CreateAgentDispatchRequest(agent_name=self._agent_name, room=request.room_name, metadata=metadata)
            )
        except lk.TwirpError as exc:
            raise _failure(exc) from exc
        log.info("agent dispatched", extra={"call_id": request.call_id, "dispatch_id": dispatch.id})
        return AgentDispatched(dispatch_id=dispatch.id)

    @activity.defn
    async def set_hold(self, request: SetHoldInput) -> HoldApplied:
        """Hold: the caller stops receiving the room's audio and carries the hold attribute (and, when the recording
        pauses over the hold, stops publishing into the room); resume undoes it."""
        permission = lk.ParticipantPermission(
            can_subscribe=not request.on_hold,
            can_publish=not (request.on_hold and request.mute_caller),  # the recording pauses over the hold
            can_publish_data=True,
        )
        try:
            await self._api().room.update_participant(
                lk.UpdateParticipantRequest(
                    room=request.room_name,
                    identity=request.participant_identity,
                    permission=permission,
                    attributes={HOLD_ATTRIBUTE: "true" if request.on_hold else ""},
                )
            )
        except lk.TwirpError as exc:
            raise _failure(exc) from exc
        return HoldApplied(participant_identity=request.participant_identity, on_hold=request.on_hold)

    @activity.defn
    async def transfer_participant(self, request: TransferParticipantInput) -> SipOutcome:
        """Cold transfer (SIP REFER). Not retried by the workflow: a second REFER could ring twice."""
        try:
            response = await self._api().sip.transfer_sip_participant(
                lk.TransferSIPParticipantRequest(
                    room_name=request.room_name,
                    participant_identity=request.participant_identity,
                    transfer_to=request.transfer_to,
                    play_dialtone=False,
                )
            )
        except lk.TwirpError as exc:
            log.warning("SIP transfer failed", extra={"room": request.room_name, "code": exc.code})
            return _sip_outcome(exc)
        if response.status != lk.SIPTransferStatus.STS_TRANSFER_SUCCESSFUL:
            code = response.sip_status.code if response.HasField("sip_status") else None
            return SipOutcome(ok=False, sip_status_code=code, error="transfer did not complete")
        return SipOutcome(ok=True, participant_identity=request.participant_identity)

    @activity.defn
    async def dial_participant(self, request: DialParticipantInput) -> SipOutcome:
        """Dial a number into the room and wait until it answers (outbound calls, warm transfer)."""
        try:
            info = await self._api().sip.create_sip_participant(
                lk.CreateSIPParticipantRequest(
                    sip_trunk_id=request.sip_trunk_id,
                    sip_call_to=request.number.removeprefix("tel:"),
                    sip_number=request.from_number or "",
                    room_name=request.room_name,
                    participant_identity=request.participant_identity,
                    participant_attributes=request.attributes,
                    wait_until_answered=True,
                    ringing_timeout=Duration(seconds=request.ringing_timeout_seconds),
                )
            )
        except lk.TwirpError as exc:
            log.info("dialed party did not answer", extra={"room": request.room_name, "code": exc.code})
            return _sip_outcome(exc)
        return SipOutcome(ok=True, participant_identity=info.participant_identity, sip_call_id=info.sip_call_id)

    @activity.defn
    async def send_dtmf(self, request: SendDtmfInput) -> DtmfSent:
        """Ask the agent in the room to play DTMF tones (it publishes them with ``publish_dtmf``)."""
        try:
            await self._api().room.send_data(
                lk.SendDataRequest(
                    room=request.room_name,
                    data=json.dumps({"digits": request.digits}).encode(),
                    kind=lk.DataPacket.Kind.RELIABLE,
                    destination_identities=request.destination_identities,
                    topic=DTMF_TOPIC,
                )
            )
        except lk.TwirpError as exc:
            raise _failure(exc) from exc
        return DtmfSent(digits=request.digits)

    @activity.defn
    async def remove_participant(self, request: RemoveParticipantInput) -> ParticipantRemoved:
        try:
            await self._api().room.remove_participant(
                lk.RoomParticipantIdentity(room=request.room_name, identity=request.participant_identity)
            )
        except lk.TwirpError as exc:
            if _not_found(exc):
                return ParticipantRemoved(removed=False)
            raise _failure(exc) from exc
        return ParticipantRemoved(removed=True)

    @activity.defn
    async def delete_room(self, request: DeleteRoomInput) -> RoomDeleted:
        """Delete the room: everyone left in it is disconnected (LiveKit hangs up SIP legs)."""
        try:
            await self._api().room.delete_room(lk.DeleteRoomRequest(room=request.room_name))
        except lk.TwirpError as exc:
            if _not_found(exc):
                return RoomDeleted(deleted=False)
            raise _failure(exc) from exc
        return RoomDeleted(deleted=True)
