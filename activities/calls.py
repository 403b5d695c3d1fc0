"""Call activities on the database: routing a call (number -> space -> agent or flow), opening the Call
row with its conversation (a new one, or the caller's open/paused one on that number), and recording
state changes. Every activity is idempotent: retried attempts and replays write the same rows."""

from __future__ import annotations

import logging
from functools import partial

from sqlalchemy import Select, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session
from temporalio import activity

from activities.web_routes import is_numberless_web_call, route_web_call
from models.calls import (
    CallRoute,
    OpenCallInput,
    OpenedCall,
    RecordCallStateInput,
    RecordedCallState,
    RouteCallInput,
)
from models.db import write
from models.enums import CallDirection, CallState, Channel, ConversationStatus, EndReason, RouteType
from models.schemas.spaces import CallSettings
from models.tables import Agent, Call, Conversation, PhoneNumber, SipTrunk, Space, new_id

log = logging.getLogger(__name__)


def _rejected(reason: str, space_id: str | None = None, number: PhoneNumber | None = None) -> CallRoute:
    return CallRoute(
        accepted=False,
        reason=reason,
        space_id=space_id,
        phone_number_id=number.id if number else None,
        our_number=number.e164 if number else None,
    )


def _route_query(request: RouteCallInput) -> Select[PhoneNumber, Space, Agent, SipTrunk]:
    """The number with its space, its agent (the requested one, or the number's; only of the number's space) and
    its SIP trunk, in one statement: a call set-up makes one round trip to the database for its route."""
    if request.phone_number_id:
        which = PhoneNumber.id == request.phone_number_id
    else:
        which = PhoneNumber.e164 == (
            request.to_number if request.direction is CallDirection.INBOUND else request.from_number
        )
    agent_id = literal(request.agent_id) if request.agent_id else PhoneNumber.agent_id
    return (
        select(PhoneNumber, Space, Agent, SipTrunk)
        .outerjoin(Space, Space.id == PhoneNumber.space_id)
        .outerjoin(Agent, (Agent.id == agent_id) & (Agent.space_id == PhoneNumber.space_id))
        .outerjoin(SipTrunk, SipTrunk.id == PhoneNumber.sip_trunk_id)
        .where(which)
    )


class CallRecordActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @activity.defn
    async def route_call(self, request: RouteCallInput) -> CallRoute:
        """Number -> space -> agent or flow. Unknown, disabled or unconfigured numbers are rejected."""
        async with self._sessions() as session:
            if is_numberless_web_call(request):
                return await route_web_call(session, request)
            row = (await session.execute(_route_query(request))).one_or_none()
            if row is None:
                return _rejected("unknown number")
            space: Space | None  # outer joins: each may be missing
            agent: Agent | None
            trunk: SipTrunk | None
            number, space, agent, trunk = row
            if request.space_id and number.space_id != request.space_id:
                return _rejected("number belongs to another space")
            if not number.enabled:
                return _rejected("number disabled", number.space_id, number)
            if space is None:
                return _rejected("space not found", number.space_id, number)
            agent_id = request.agent_id or number.agent_id
            if request.agent_id or number.route_type is RouteType.AGENT:
                if agent is None:
                    return _rejected("no agent configured for the number", number.space_id, number)
            elif not number.flow_id:
                return _rejected("no flow configured for the number", number.space_id, number)
            outbound_trunk_id = trunk.livekit_outbound_trunk_id if trunk else None
            settings = CallSettings.model_validate(space.call_settings or {})
            return CallRoute(
                accepted=True,
                space_id=number.space_id,
                phone_number_id=number.id,
                our_number=number.e164,
                route_type=RouteType.AGENT if request.agent_id else number.route_type,
                agent_id=agent_id,
                flow_id=None if request.agent_id else number.flow_id,
                media_mode=number.media_mode,
                recording_policy=number.recording_policy,
                outbound_trunk_id=outbound_trunk_id,
                ringing_timeout_seconds=settings.ringing_timeout_seconds,
                max_call_duration_seconds=settings.max_call_duration_seconds,
                hold_timeout_seconds=settings.hold_timeout_seconds,
                recording_consent=space.recording_consent,
                recording_announcement=space.recording_announcement or "",
                record_hold=space.record_hold,
            )

    @activity.defn
    async def open_call(self, request: OpenCallInput) -> OpenedCall:
        """Insert the Call row (once per workflow id) and create or resume its conversation. A retried attempt's
        insert meets the first one's row (its conversation change rolls back) and answers what the first wrote."""
        opened = await write(self._sessions, partial(_open_call, request))
        if opened.call_id == request.call_id:
            log.info("call opened", extra={"call_id": request.call_id, "resumed": opened.conversation_resumed})
        return opened

    @activity.defn
    async def record_call_state(self, request: RecordCallStateInput) -> RecordedCallState:
        """Write the call's current state; on ENDED, pause its conversation (the next call resumes it)."""
        return await write(self._sessions, partial(_record_call_state, request))


def _open_call(request: OpenCallInput, session: Session) -> OpenedCall:
    conversation_id: str | None = None
    resumed = False
    if not request.rejected:
        found = session.scalar(_callers_conversation(request))
        if found is not None:
            found.status = ConversationStatus.OPEN
            found.agent_id = request.agent_id or found.agent_id
            conversation_id, resumed = found.id, True
        else:
            conversation_id = new_id(Conversation.__tablename__)
            session.add(_new_conversation(conversation_id, request))
            session.flush()  # no ORM relationship orders it before the call's row
    session.add(_new_call(request, conversation_id))
    try:
        session.commit()
    except IntegrityError:  # an earlier or concurrent attempt inserted it first
        session.rollback()
        raced = session.scalar(select(Call).where(Call.workflow_id == request.workflow_id))
        if raced is None:
            raise
        return OpenedCall(raced.id, raced.conversation_id, conversation_resumed=False)
    return OpenedCall(request.call_id, conversation_id, conversation_resumed=resumed)


def _record_call_state(request: RecordCallStateInput, session: Session) -> RecordedCallState:
    call = session.get(Call, request.call_id)
    if call is None:
        return RecordedCallState(request.call_id, found=False)
    call.state = request.state
    call.end_reason = request.end_reason
    if request.connected_at is not None and call.connected_at is None:
        call.connected_at = request.connected_at
    if request.ended_at is not None:
        call.ended_at = request.ended_at
    if request.room_name is not None:
        call.room_name = request.room_name
    if request.state is CallState.ENDED and call.conversation_id:
        conversation = session.get(Conversation, call.conversation_id)
        if conversation is not None and conversation.status is ConversationStatus.OPEN:
            conversation.status = ConversationStatus.PAUSED
    session.commit()
    return RecordedCallState(request.call_id, found=True)


def _callers_conversation(request: OpenCallInput) -> Select[Conversation]:
    """The caller's open or paused voice conversation on this number, the latest first."""
    return (
        select(Conversation)
        .where(
            Conversation.space_id == request.space_id,
            Conversation.channel == Channel.VOICE,
            Conversation.phone_number_id == request.phone_number_id,
            Conversation.external_party == _caller(request),
            Conversation.status.in_([ConversationStatus.OPEN, ConversationStatus.PAUSED]),
        )
        .order_by(Conversation.updated_at.desc())
        .limit(1)
    )


def _caller(request: OpenCallInput) -> str:
    return request.from_number if request.direction is CallDirection.INBOUND else request.to_number


def _new_conversation(conversation_id: str, request: OpenCallInput) -> Conversation:
    return Conversation(
        id=conversation_id,
        space_id=request.space_id,
        channel=Channel.VOICE,
        phone_number_id=request.phone_number_id,
        agent_id=request.agent_id,
        external_party=_caller(request),
        status=ConversationStatus.OPEN,
    )


def _new_call(request: OpenCallInput, conversation_id: str | None) -> Call:
    return Call(
        id=request.call_id,
        space_id=request.space_id,
        workflow_id=request.workflow_id,
        carrier_call_id=request.carrier_call_id,
        direction=request.direction,
        from_number=request.from_number,
        to_number=request.to_number,
        state=CallState.ENDED if request.rejected else CallState.RINGING,
        end_reason=EndReason.REJECTED if request.rejected else None,
        phone_number_id=request.phone_number_id,
        agent_id=request.agent_id,
        conversation_id=conversation_id,
        created_at=request.created_at,
        ended_at=request.created_at if request.rejected else None,
    )
