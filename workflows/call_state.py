"""The call state machine as pure data and functions: which transitions exist, which actions each state
allows, how carrier statuses map onto states, and the call's ledger. No I/O and no workflow APIs (the
caller passes the time in): deterministic, and testable without a server."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime

from temporalio.common import SearchAttributeUpdate

from models.assets import TranscriptionView
from models.calls import (
    RECORDING_OFF,
    SA_CALL_DIRECTION,
    SA_CALL_STATE,
    SA_CAMPAIGN_ID,
    SA_PHONE_NUMBER,
    SA_SPACE_ID,
    UPDATE_HANGUP,
    UPDATE_HOLD,
    UPDATE_RESUME,
    UPDATE_SEND_DTMF,
    UPDATE_TRANSFER,
    AnsweredByReport,
    CallParticipant,
    CallRoute,
    CallStateView,
    DtmfRequest,
    OpenCallInput,
    ParticipantKind,
    RouteCallInput,
    StartCall,
    TimelineEntry,
    TransferMode,
    TransferRequest,
    TurnMetrics,
)
from models.consent import ConsentView
from models.enums import CallDirection, CallState, EndReason, RecordingPolicy
from models.phone import is_e164

S = CallState

TRANSITIONS: dict[CallState, frozenset[CallState]] = {
    S.RINGING: frozenset({S.CONNECTED, S.ACTIVE, S.ENDED}),
    S.CONNECTED: frozenset({S.ACTIVE, S.ENDED}),
    S.ACTIVE: frozenset({S.HOLD, S.TRANSFERRING, S.ENDED}),
    S.HOLD: frozenset({S.ACTIVE, S.TRANSFERRING, S.ENDED}),
    # A failed (or warm) transfer returns to the state it started from.
    S.TRANSFERRING: frozenset({S.ACTIVE, S.HOLD, S.ENDED}),
    S.ENDED: frozenset(),
}

# The states in which each update (operator/agent action) is legal.
ALLOWED_ACTIONS: dict[str, frozenset[CallState]] = {
    UPDATE_HOLD: frozenset({S.ACTIVE}),
    UPDATE_RESUME: frozenset({S.HOLD}),
    UPDATE_TRANSFER: frozenset({S.ACTIVE, S.HOLD}),
    UPDATE_SEND_DTMF: frozenset({S.ACTIVE}),
    UPDATE_HANGUP: frozenset({S.RINGING, S.CONNECTED, S.ACTIVE, S.HOLD, S.TRANSFERRING}),
}

SIP_URI = re.compile(r"sips?:[^@\s:;]+@[A-Za-z0-9.\-\[\]:]+(;[^\s]*)?")
DTMF = re.compile(r"[0-9*#A-Dw]{1,64}")


def can_transition(current: CallState, target: CallState) -> bool:
    return target in TRANSITIONS[current]


def action_allowed(action: str, state: CallState) -> bool:
    return state in ALLOWED_ACTIONS[action]


def illegal_action_message(action: str, state: CallState) -> str:
    allowed = ", ".join(sorted(s.value for s in ALLOWED_ACTIONS[action])) or "no state"
    return f"cannot {action.replace('_', ' ')} a call in state {state.value} (allowed in: {allowed})"


def answered_state(current: CallState) -> CallState | None:
    """Where a carrier's "in-progress" moves the call, or ``None`` when it comes late (ignored)."""
    return S.CONNECTED if current is S.RINGING else None


def operator_hangup_reason(current: CallState) -> EndReason:
    """Hanging up before anyone answered cancels the call; once connected (answered) it completes it."""
    return EndReason.CANCELED if current is S.RINGING else EndReason.COMPLETED


def dial_failure_reason(sip_status_code: int | None, no_answer: bool) -> EndReason:
    """The end reason of an outbound call whose callee did not answer."""
    if no_answer or sip_status_code in (408, 480, 487):
        return EndReason.NO_ANSWER
    if sip_status_code in (486, 600, 603):
        return EndReason.BUSY
    return EndReason.FAILED


def transfer_destination(target: str, mode: TransferMode) -> str:
    """Normalize a transfer target to what LiveKit expects ("tel:+E164" or a SIP URI), or raise
    ``ValueError``. A warm transfer dials a number through the trunk, so it needs an E.164 number."""
    target = target.strip()
    number = target.removeprefix("tel:")
    if is_e164(number):
        return f"tel:{number}"
    if SIP_URI.fullmatch(target):
        if mode is TransferMode.WARM:
            raise ValueError("a warm transfer dials a phone number (E.164), not a SIP URI")
        return target
    raise ValueError("transfer target must be an E.164 number (+14155550100) or a SIP URI (sip:user@host)")


def valid_dtmf(digits: str) -> bool:
    return bool(DTMF.fullmatch(digits))


def recording_wanted(policy: RecordingPolicy, direction: CallDirection) -> bool:
    return (
        policy is RecordingPolicy.ALWAYS
        or (policy is RecordingPolicy.INBOUND_ONLY and direction is CallDirection.INBOUND)
        or (policy is RecordingPolicy.OUTBOUND_ONLY and direction is CallDirection.OUTBOUND)
    )


def action_problem(
    action: str,
    state: CallState,
    request: object,
    *,
    busy: bool,
    has_room_and_caller: bool,
    has_outbound_trunk: bool,
    has_carrier_leg: bool = False,
    can_hold: bool = False,
) -> str | None:
    """Why ``action`` is illegal right now, or ``None``: the update validators' single rule book."""
    if not action_allowed(action, state):
        return illegal_action_message(action, state)
    if action == UPDATE_HANGUP:
        return None
    if busy:
        return "another call action (hold, resume or transfer) is in progress"
    carrier_transfer = has_carrier_leg and isinstance(request, TransferRequest) and request.mode is TransferMode.COLD
    stream_hold = can_hold and action in (UPDATE_HOLD, UPDATE_RESUME)
    if not has_room_and_caller and not carrier_transfer and not stream_hold:
        if has_carrier_leg:
            return f"{action} is not available on a carrier media stream (only hang-up, hold and cold transfer)"
        return f"{action} needs the call's LiveKit room and SIP participant (media mode livekit)"
    if isinstance(request, DtmfRequest) and not valid_dtmf(request.digits):
        return "digits must be 1-64 of 0-9, *, #, A-D or w"
    if isinstance(request, TransferRequest):
        try:
            transfer_destination(request.target, request.mode)
        except ValueError as exc:
            return str(exc)
        if request.mode is TransferMode.WARM and not has_outbound_trunk:
            return "a warm transfer needs the number's provisioned SIP trunk"
    return None


@dataclass
class CallLedger:
    """Everything the workflow knows about its call, and the bookkeeping of each change (pure: the
    caller passes the time in)."""

    start: StartCall
    state: CallState = S.RINGING
    end_reason: EndReason | None = None
    timeline: list[TimelineEntry] = field(default_factory=list)
    participants: dict[str, CallParticipant] = field(default_factory=dict)
    space_id: str | None = None
    our_number: str | None = None
    agent_id: str | None = None
    agent_identity: str | None = None
    conversation_id: str | None = None
    room: str | None = None
    caller: str | None = None
    recording: str = RECORDING_OFF
    connected_at: datetime | None = None
    ended_at: datetime | None = None
    hold_since: datetime | None = None
    dtmf: str = ""
    seen_events: set[str] = field(default_factory=set)
    turns: list[TurnMetrics] = field(default_factory=list)
    answered_by: AnsweredByReport | None = None
    consent: ConsentView | None = None  # recording consent asked of the caller (workflows/recording_consent.py)
    transcription: TranscriptionView | None = None  # the recording's transcription workflow, once started
    voicemail_left: bool = False
    version: int = 0  # bumped by every transition: the workflow persists the Call row when it moves

    def transition(self, target: CallState, event: str, now: datetime, detail: str | None = None) -> bool:
        if not can_transition(self.state, target):
            return False
        previous, self.state = self.state, target
        if target in (S.CONNECTED, S.ACTIVE) and self.connected_at is None:
            self.connected_at = now
        self.hold_since = now if target is S.HOLD else None
        self.timeline.append(TimelineEntry(now, event, target, previous, detail))
        self.version += 1
        return True

    def end(self, reason: EndReason, event: str, now: datetime, detail: str | None = None) -> bool:
        if self.state is S.ENDED:
            return False
        self.end_reason, self.ended_at = reason, now
        for identity in self.participants:
            self.leave(identity, now)
        return self.transition(S.ENDED, event, now, detail)

    def note(self, event: str, now: datetime, detail: str | None = None) -> None:
        """A timeline entry that does not change the state."""
        self.timeline.append(TimelineEntry(now, event, self.state, None, detail))

    def join(self, identity: str, kind: ParticipantKind, now: datetime) -> None:
        if identity not in self.participants:
            self.participants[identity] = CallParticipant(identity, kind, now)

    def leave(self, identity: str, now: datetime) -> None:
        participant = self.participants.get(identity)
        if participant is not None and participant.left_at is None:
            participant.left_at = now

    def view(self) -> CallStateView:
        s = self.start
        return CallStateView(
            call_id=s.call_id,
            workflow_id=s.workflow_id,
            space_id=self.space_id,
            direction=s.direction,
            media_mode=s.media_mode,
            from_number=s.from_number,
            to_number=s.to_number,
            state=self.state,
            end_reason=self.end_reason,
            timeline=list(self.timeline),
            participants=list(self.participants.values()),
            agent_id=self.agent_id,
            conversation_id=self.conversation_id,
            room_name=self.room,
            recording_status=self.recording,
            dtmf_received=self.dtmf,
            on_hold=self.state is S.HOLD,
            turns=list(self.turns),
            answered_by=self.answered_by.answered_by if self.answered_by else None,
            amd_decision_ms=self.answered_by.decision_ms if self.answered_by else None,
            campaign_id=s.campaign_id,
            recording_consent=replace(self.consent) if self.consent else None,
            transcription=replace(self.transcription) if self.transcription else None,
            voicemail_left=self.voicemail_left,
        )

    def route_input(self) -> RouteCallInput:
        s = self.start
        return RouteCallInput(
            s.call_id,
            s.direction,
            s.from_number,
            s.to_number,
            s.space_id,
            s.phone_number_id,
            s.agent_id,
            s.media_mode,
            s.flow_id,
        )

    def open_call_input(self, route: CallRoute, rejected: bool) -> OpenCallInput:
        s = self.start
        assert self.space_id is not None
        return OpenCallInput(
            call_id=s.call_id,
            workflow_id=s.workflow_id,
            space_id=self.space_id,
            direction=s.direction,
            from_number=s.from_number,
            to_number=s.to_number,
            carrier_call_id=s.carrier_call_id,
            phone_number_id=route.phone_number_id,
            agent_id=None if rejected else self.agent_id,
            created_at=self.timeline[0].at,
            rejected=rejected,
        )

    def search_attributes(self) -> list[SearchAttributeUpdate]:
        """``CallState``, ``CallDirection``, and ``SpaceId``/``PhoneNumber``/``CampaignId`` once known."""
        updates: list[SearchAttributeUpdate] = [
            SA_CALL_STATE.value_set(self.state.value),
            SA_CALL_DIRECTION.value_set(self.start.direction.value),
        ]
        if self.space_id:
            updates.append(SA_SPACE_ID.value_set(self.space_id))
        if self.our_number:
            updates.append(SA_PHONE_NUMBER.value_set(self.our_number))
        if self.start.campaign_id:
            updates.append(SA_CAMPAIGN_ID.value_set(self.start.campaign_id))
        return updates
