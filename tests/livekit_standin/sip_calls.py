"""SIP calls: ``CreateSIPParticipant`` (outbound dialing), ``TransferSIPParticipant`` (REFER) and
inbound callers, modelled on livekit-server ``pkg/service/sip.go``, livekit/protocol
``rpc/sip.go`` (participant attributes) and livekit/sip ``pkg/sip/outbound.go``."""

from __future__ import annotations

import asyncio

from livekit.protocol.models import DisconnectReason, ParticipantInfo, TrackInfo, TrackSource, TrackType
from livekit.protocol.sip import (
    CreateSIPParticipantRequest,
    SIPParticipantInfo,
    SIPStatus,
    SIPTransferReason,
    SIPTransferStatus,
    TransferSIPParticipantRequest,
    TransferSIPParticipantResponse,
)

from . import ids
from .auth import CallContext
from .errors import TwirpError, dial_error, no_answer_error, transfer_error
from .registry import handles
from .room_service import PARTICIPANT_NOT_FOUND, add_room_agents
from .sip_config import TRUNK_NOT_FOUND, check_headers
from .state import State

SVC = "livekit.SIP"

# Participant attribute names (livekit/protocol livekit/attrs.go)
ATTR_CALL_ID = "sip.callID"
ATTR_TRUNK_ID = "sip.trunkID"
ATTR_RULE_ID = "sip.ruleID"
ATTR_TRUNK_NUMBER = "sip.trunkPhoneNumber"
ATTR_PHONE_NUMBER = "sip.phoneNumber"
ATTR_HOSTNAME = "sip.hostname"
ATTR_CALL_STATUS = "sip.callStatus"

# Outcomes a test can assign to a dialed number (``dial_outcomes``) or a transfer target
# (``transfer_outcomes``): these names, or any SIP final response code (e.g. 603, 404, 480).
Outcome = str | int
ANSWERED = "answered"
NO_ANSWER = "no_answer"
_NAMED_CODES = {"busy": 486, "rejected": 603, "declined": 603, "unavailable": 480, "not_found": 404}


def outcome_code(outcome: Outcome) -> int | None:
    """``None`` when the call is answered, 0 when nobody answers, else the SIP response code."""
    if outcome in (ANSWERED, 200):
        return None
    if outcome in (NO_ANSWER, "no-answer"):
        return 0
    if isinstance(outcome, int) and 300 <= outcome < 700:
        return outcome
    if isinstance(outcome, str) and outcome in _NAMED_CODES:
        return _NAMED_CODES[outcome]
    raise ValueError(f"unknown call outcome {outcome!r}")


def _audio_track() -> TrackInfo:
    return TrackInfo(
        sid=ids.new_id(ids.TRACK), type=TrackType.AUDIO, source=TrackSource.MICROPHONE, mime_type="audio/opus"
    )


def _leave_reason(code: int) -> int:
    if code in (486, 600, 603):
        return DisconnectReason.USER_REJECTED
    if code in (0, 480):
        return DisconnectReason.USER_UNAVAILABLE
    return DisconnectReason.SIP_TRUNK_FAILURE


def finish_dial(state: State, room: str, identity: str, code: int | None) -> TwirpError | None:
    """Settle a dialing participant: mark it active, or drop it and return the error LiveKit reports."""
    participant = state.participant(room, identity)
    if participant is None:  # removed while ringing
        return TwirpError("canceled", "canceled")
    if code is None:
        participant.attributes[ATTR_CALL_STATUS] = "active"
        state.touch(participant)
        return None
    state.leave(room, identity, _leave_reason(code))
    return no_answer_error() if code == 0 else dial_error(code)


@handles(SVC, "CreateSIPParticipant")
async def create_sip_participant(ctx: CallContext, req: CreateSIPParticipantRequest) -> SIPParticipantInfo:
    ctx.require_sip_call()
    lk, state = ctx.lk, ctx.lk.state
    trunk = None
    if req.sip_trunk_id:
        trunk = state.outbound_trunks.get(req.sip_trunk_id)
        if trunk is None:
            raise TwirpError("not_found", TRUNK_NOT_FOUND)
    # CreateSIPParticipantRequest.Validate() returns plain Go errors, which Twirp answers as internal.
    if trunk is None and not req.HasField("trunk"):
        raise TwirpError("internal", "missing sip trunk id")
    if not req.sip_call_to:
        raise TwirpError("internal", "missing sip callee number")
    if "@" in req.sip_call_to:
        raise TwirpError("internal", "SipCallTo should be a phone number or SIP user, not a full SIP URI")
    if not req.room_name:
        raise TwirpError("internal", "missing room name")
    try:
        check_headers(req.headers)
    except TwirpError as exc:
        raise TwirpError("internal", exc.msg) from None
    number = req.sip_number or (trunk.numbers[0] if trunk is not None and trunk.numbers else "")
    if not number:
        raise TwirpError("internal", "no numbers on outbound trunk")

    call_id = ids.new_id(ids.SIP_CALL)
    identity = req.participant_identity or "sip_" + req.sip_call_to
    attrs = dict(req.participant_attributes)
    attrs[ATTR_CALL_ID] = call_id
    attrs[ATTR_TRUNK_ID] = req.sip_trunk_id
    if not req.hide_phone_number:
        attrs[ATTR_PHONE_NUMBER] = req.sip_call_to
        attrs[ATTR_HOSTNAME] = trunk.address if trunk is not None else req.trunk.hostname
        attrs[ATTR_TRUNK_NUMBER] = number
    attrs[ATTR_CALL_STATUS] = "dialing"
    participant = state.join(
        req.room_name,
        ParticipantInfo(
            identity=identity,
            name=req.participant_name,
            metadata=req.participant_metadata,
            kind=ParticipantInfo.Kind.SIP,
            attributes=attrs,
            tracks=[_audio_track()],
        ),
    )
    code = outcome_code(lk.dial_outcomes.get(req.sip_call_to, lk.default_dial_outcome))

    async def ring() -> TwirpError | None:
        if lk.dial_delay:
            await asyncio.sleep(lk.dial_delay)
        return finish_dial(state, req.room_name, identity, code)

    if req.wait_until_answered:
        if (error := await ring()) is not None:
            raise error
    else:  # answered right away; the outcome plays out afterwards, as in LiveKit
        lk.spawn(ring())
    return SIPParticipantInfo(
        participant_id=participant.sid,
        participant_identity=identity,
        room_name=req.room_name,
        sip_call_id=call_id,
    )


@handles(SVC, "TransferSIPParticipant")
async def transfer_sip_participant(
    ctx: CallContext, req: TransferSIPParticipantRequest
) -> TransferSIPParticipantResponse:
    if not req.room_name:
        raise TwirpError("invalid_argument", "Missing room name")
    if not req.participant_identity:
        raise TwirpError("invalid_argument", "Missing participant identity")
    if not req.transfer_to:
        raise TwirpError("invalid_argument", "missing transfer to")
    ctx.require_sip_call()
    ctx.require_room_admin(req.room_name)
    lk, state = ctx.lk, ctx.lk.state
    participant = state.participant(req.room_name, req.participant_identity)
    if participant is None:
        raise TwirpError("not_found", PARTICIPANT_NOT_FOUND)
    if ATTR_CALL_ID not in participant.attributes:
        raise TwirpError("invalid_argument", "no SIP session associated with participant")
    transfer_id = ids.new_id(ids.SIP_TRANSFER)
    code = outcome_code(lk.transfer_outcomes.get(req.transfer_to, lk.default_transfer_outcome))
    if lk.dial_delay:
        await asyncio.sleep(lk.dial_delay)
    if code == 0:
        raise transfer_error(transfer_id, SIPTransferReason.STR_RINGING_TIMEOUT, 408)
    if code is not None:
        raise transfer_error(transfer_id, SIPTransferReason.STR_REJECTED, code)
    # The call now belongs to the transfer target: LiveKit hangs up its leg and the participant leaves.
    participant.attributes[ATTR_CALL_STATUS] = "hangup"
    state.leave(req.room_name, req.participant_identity, DisconnectReason.CLIENT_INITIATED)
    return TransferSIPParticipantResponse(
        transfer_id=transfer_id,
        status=SIPTransferStatus.STS_TRANSFER_SUCCESSFUL,
        reason=SIPTransferReason.STR_COMPLETED,
        sip_status=SIPStatus(code=200, status="OK"),  # type: ignore[arg-type]
    )


def admit_inbound_caller(
    state: State,
    room: str,
    from_number: str,
    to_number: str,
    *,
    trunk_id: str | None = None,
    call_id: str | None = None,
    identity: str | None = None,
    name: str | None = None,
    attributes: dict[str, str] | None = None,
    dispatch_rule_id: str | None = None,
) -> ParticipantInfo:
    """An inbound call joining ``room`` as the SIP service would put it there after dispatch."""
    if trunk_id is None:  # the inbound trunk that owns the dialed number, if any
        trunk_id = next((t.sip_trunk_id for t in state.inbound_trunks.values() if to_number in t.numbers), "")
    rule = state.dispatch_rules.get(dispatch_rule_id) if dispatch_rule_id else None
    attrs = dict(rule.attributes) if rule is not None else {}
    attrs.update(attributes or {})
    attrs[ATTR_CALL_ID] = call_id or ids.new_id(ids.SIP_CALL)
    attrs[ATTR_TRUNK_ID] = trunk_id
    attrs[ATTR_CALL_STATUS] = "active"
    if dispatch_rule_id:
        attrs[ATTR_RULE_ID] = dispatch_rule_id
    if rule is None or not rule.hide_phone_number:
        attrs[ATTR_PHONE_NUMBER] = from_number
        attrs[ATTR_TRUNK_NUMBER] = to_number
    _, created = state.ensure_room(room)
    if created and rule is not None and rule.HasField("room_config"):
        add_room_agents(state, room, rule.room_config.agents)
    return state.join(
        room,
        ParticipantInfo(
            identity=identity or "sip_" + from_number,
            name=name if name is not None else "Phone " + from_number,
            metadata=rule.metadata if rule is not None else "",
            kind=ParticipantInfo.Kind.SIP,
            attributes=attrs,
            tracks=[_audio_track()],
        ),
    )
