"""The call activities on a real database (SQLite and PostgreSQL): a route is one joined lookup that still tells
each refusal apart, opening a call twice writes one row and one conversation, and state writes keep the first
connection time and pause the conversation at the end."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from activities.calls import CallRecordActivities
from models.calls import OpenCallInput, RecordCallStateInput, RouteCallInput
from models.enums import (
    CallDirection,
    CallState,
    ConversationStatus,
    EndReason,
    MediaMode,
    RecordingPolicy,
    RouteType,
    SipTransport,
)
from models.tables import Agent, Call, Conversation, PhoneNumber, SipTrunk, Space
from tests.conftest import Platform


def _e164() -> str:
    return "+1415" + str(uuid.uuid4().int)[:7]


async def _space_with_number(platform: Platform, **number: object) -> tuple[Space, PhoneNumber, Agent]:
    async with platform.sessions() as session:
        space = Space(name="routing")
        session.add(space)
        await session.flush()
        agent = Agent(space_id=space.id, name="front desk")
        trunk = SipTrunk(
            space_id=space.id,
            name="trunk",
            sip_address="sip.example.com",
            transport=SipTransport.UDP,
            livekit_outbound_trunk_id="ST_out",
        )
        session.add_all([agent, trunk])
        await session.flush()
        fields: dict[str, object] = {
            "route_type": RouteType.AGENT,
            "agent_id": agent.id,
            "media_mode": MediaMode.LIVEKIT,
            "recording_policy": RecordingPolicy.OFF,
            "sip_trunk_id": trunk.id,
        } | number
        phone = PhoneNumber(space_id=space.id, e164=_e164(), **fields)
        session.add(phone)
        await session.commit()
        return space, phone, agent


def _inbound(to: str, **more: str) -> RouteCallInput:
    return RouteCallInput(uuid.uuid4().hex, CallDirection.INBOUND, "+14155550100", to, **more)  # type: ignore[arg-type]


async def test_a_route_carries_the_number_space_agent_and_trunk(platform: Platform) -> None:
    space, phone, agent = await _space_with_number(platform)
    route = await CallRecordActivities(platform.sessions).route_call(_inbound(phone.e164))
    assert route.accepted and route.space_id == space.id and route.phone_number_id == phone.id
    assert route.agent_id == agent.id and route.route_type is RouteType.AGENT
    assert route.outbound_trunk_id == "ST_out" and route.our_number == phone.e164


async def test_each_refusal_keeps_its_reason(platform: Platform) -> None:
    activities = CallRecordActivities(platform.sessions)
    space, phone, _ = await _space_with_number(platform)
    other, other_phone, other_agent = await _space_with_number(platform)
    disabled = (await _space_with_number(platform, enabled=False))[1]
    flowless = (await _space_with_number(platform, route_type=RouteType.FLOW, agent_id=None))[1]

    async def reason(request: RouteCallInput) -> str | None:
        route = await activities.route_call(request)
        assert not route.accepted
        return route.reason

    assert await reason(_inbound(_e164())) == "unknown number"
    assert await reason(_inbound(phone.e164, space_id=other.id)) == "number belongs to another space"
    assert await reason(_inbound(disabled.e164)) == "number disabled"
    assert await reason(_inbound(flowless.e164)) == "no flow configured for the number"
    # An agent of another space is never joined to this space's number.
    assert await reason(_inbound(phone.e164, agent_id=other_agent.id)) == "no agent configured for the number"
    assert (await activities.route_call(_inbound(other_phone.e164, agent_id=other_agent.id))).accepted
    by_id = _inbound("+10000000000", phone_number_id=phone.id)  # the id wins over the dialled number
    assert (await activities.route_call(by_id)).space_id == space.id


async def test_opening_a_call_twice_writes_it_once_and_the_next_call_resumes_its_conversation(
    platform: Platform,
) -> None:
    activities = CallRecordActivities(platform.sessions)
    space, phone, agent = await _space_with_number(platform)

    def opening(workflow_id: str) -> OpenCallInput:
        return OpenCallInput(
            call_id=f"call_{uuid.uuid4().hex}",
            workflow_id=workflow_id,
            space_id=space.id,
            direction=CallDirection.INBOUND,
            from_number="+14155550100",
            to_number=phone.e164,
            carrier_call_id="CA1",
            phone_number_id=phone.id,
            agent_id=agent.id,
            created_at=datetime.now(UTC),
        )

    first = opening(f"call-{uuid.uuid4().hex}")
    opened = await activities.open_call(first)
    retried = await activities.open_call(first)  # a retried attempt: same row, no second conversation
    assert retried.call_id == opened.call_id and retried.conversation_id == opened.conversation_id
    assert not opened.conversation_resumed and opened.conversation_id
    again = await activities.open_call(opening(f"call-{uuid.uuid4().hex}"))  # the same caller calls again
    assert again.conversation_resumed and again.conversation_id == opened.conversation_id

    connected = datetime.now(UTC).replace(microsecond=0)
    state = RecordCallStateInput(opened.call_id, CallState.CONNECTED, None, connected, None, "room-1")
    assert (await activities.record_call_state(state)).found
    later = RecordCallStateInput(
        opened.call_id, CallState.ENDED, EndReason.COMPLETED, connected + timedelta(9), connected + timedelta(10), None
    )
    assert (await activities.record_call_state(later)).found
    async with platform.sessions() as session:
        call = await session.get(Call, opened.call_id)
        conversation = await session.get(Conversation, opened.conversation_id)
    assert call is not None and conversation is not None
    assert call.state is CallState.ENDED and call.end_reason is EndReason.COMPLETED and call.room_name == "room-1"
    assert call.connected_at == connected and call.ended_at == connected + timedelta(10)  # the first connection
    assert conversation.status is ConversationStatus.PAUSED
    gone = RecordCallStateInput("call_missing", CallState.ENDED, EndReason.COMPLETED, None, None, None)
    assert not (await activities.record_call_state(gone)).found
