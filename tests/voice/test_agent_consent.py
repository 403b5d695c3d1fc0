"""The LiveKit agent's side of recording consent, on real calls (the real CallWorkflow and its activities on a
Temporal dev server, the LiveKit stand-in, SQLite): the worker's consent gate is built from the call's state, the
agent plays the announcement before its greeting, and the workflow starts the room's egress only once the agent
reported the outcome through the typed call client; no consent, no egress."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from livekit.agents import AgentSession
from temporalio.client import WorkflowHandle

from models.call_contract import DispatchMetadata
from models.calls import CallStateView, ConnectedEvent, HangupRequest
from models.consent import ConsentOutcome, RecordingConsent
from models.enums import CallState, MessageRole, RecordingPolicy
from models.tables import Agent, Message, PhoneNumber, Space
from tests.support.stack import eventually
from tests.voice.test_agent_tools import TEXT_MODE
from tests.workflows.conftest import CallHarness, call_db, call_livekit, state_of, wait_for  # noqa: F401
from tests.workflows.conftest import calls as session_calls  # noqa: F401
from voice.agent import mark_active_on_first_speech, prepare_call
from voice.agent_transcripts import record_transcripts
from voice.livekit_worker import consent_gate
from voice.recording_consent import ConsentGate
from workflows.calls import CallWorkflow

S = CallState


@pytest.fixture
def harness(session_calls: CallHarness) -> CallHarness:  # noqa: F811
    return session_calls


GREETING = "Thanks for calling Acme, how can I help?"


@dataclass
class ConsentCall:
    handle: WorkflowHandle[Any, CallStateView]
    room: str
    gate: ConsentGate
    conversation_id: str


@asynccontextmanager
async def consent_call(
    harness: CallHarness, mode: RecordingConsent, announcement: str | None = None
) -> AsyncIterator[ConsentCall]:
    """A recorded LiveKit call in a space that wants ``mode``, its agent started with the worker's consent gate."""
    line = await harness.new_line()
    async with harness.sessions() as db:
        space, number, agent = (
            await db.get(Space, line.space_id),
            await db.get(PhoneNumber, line.number_id),
            await db.get(Agent, line.agent_id),
        )
        assert space is not None and number is not None and agent is not None
        space.recording_consent, space.recording_announcement = mode, announcement
        number.recording_policy = RecordingPolicy.ALWAYS
        agent.greeting = GREETING
        await db.commit()
    start = harness.inbound(line)
    assert start.room_name is not None
    caller = await harness.livekit.add_sip_caller(start.room_name, start.from_number, line.e164)
    handle = await harness.start(start)
    await handle.signal(CallWorkflow.connected, ConnectedEvent(participant_identity=caller.identity))
    view = await wait_for(handle, lambda v: v.state is S.CONNECTED and v.recording_consent is not None)
    assert view.recording_consent is not None and view.recording_consent.outcome is ConsentOutcome.PENDING
    assert view.recording_status == "requested" and _egresses(harness, start.room_name) == []

    runtime = harness.voice_runtime(secret_box=None)
    gate = await consent_gate(runtime.calls.trusted(handle.id))
    assert gate is not None and gate.request.mode is mode
    assert view.space_id is not None and view.agent_id is not None and view.conversation_id is not None
    dispatch = DispatchMetadata(handle.id, view.call_id, view.space_id, view.agent_id, view.conversation_id)
    prepared = await prepare_call(dispatch, runtime, agent_identity="agent-1")
    prepared.agent.consent = gate  # as answer_call(consent=…) does
    async with AgentSession(llm=prepared.llm, vad=None, turn_handling=TEXT_MODE) as session:
        recorder = record_transcripts(session, prepared.transcripts)
        mark_active_on_first_speech(session, prepared.control)
        await session.start(prepared.agent)
        try:
            yield ConsentCall(handle, start.room_name, gate, view.conversation_id)
            await wait_for(handle, lambda v: v.state is S.ACTIVE and len(_said(session)) >= 2, within=20)
            await recorder.flush()
        finally:
            await recorder.aclose()
            if (await state_of(handle)).state is not S.ENDED:
                await handle.execute_update(CallWorkflow.hangup, HangupRequest())


def _listening(gate: ConsentGate) -> Callable[[], Awaitable[bool | None]]:
    async def probe() -> bool | None:
        return gate.listening or None

    return probe


def _said(session: AgentSession) -> list[str]:
    return [m.text_content or "" for m in session.history.messages() if m.role == "assistant"]


def _egresses(harness: CallHarness, room: str) -> list[Any]:
    return [r for r in harness.livekit.calls("StartRoomCompositeEgress") if r.room_name == room]


async def _agent_lines(harness: CallHarness, conversation_id: str) -> list[str]:
    async with harness.sessions() as db:
        rows = await db.scalars(
            sa.select(Message)
            .where(Message.conversation_id == conversation_id, Message.role == MessageRole.AGENT)
            .order_by(Message.created_at)
        )
        return [m.text for m in rows]


async def test_announcement_first_then_egress(harness: CallHarness) -> None:
    async with consent_call(harness, RecordingConsent.ANNOUNCE, "This call is recorded.") as call:
        view = await wait_for(call.handle, lambda v: v.recording_status == "recording", within=20)
    assert call.gate.outcome is ConsentOutcome.ANNOUNCED and len(_egresses(harness, call.room)) == 1
    assert view.recording_consent is not None and view.recording_consent.by == "announcement"
    events = [e.event for e in view.timeline]
    assert events.index("recording_consent") < events.index("recording_started")
    assert (await _agent_lines(harness, call.conversation_id))[:2] == ["This call is recorded.", GREETING]


async def test_consent_by_key_1_starts_egress_and_any_other_key_refuses(harness: CallHarness) -> None:
    for key, outcome in (("1", ConsentOutcome.GIVEN), ("2", ConsentOutcome.REFUSED)):
        async with consent_call(harness, RecordingConsent.REQUIRE) as call:
            await eventually(_listening(call.gate))  # the question was asked
            assert _egresses(harness, call.room) == []
            call.gate.digit(key)  # what the worker's sip_dtmf_received handler does
            view = await wait_for(call.handle, lambda v: v.recording_status in ("recording", "declined"), within=20)
        assert call.gate.outcome is outcome
        assert view.recording_consent is not None and view.recording_consent.by == "dtmf"
        assert len(_egresses(harness, call.room)) == (1 if outcome is ConsentOutcome.GIVEN else 0)
        assert view.recording_status == ("recording" if outcome is ConsentOutcome.GIVEN else "declined")
        lines = await _agent_lines(harness, call.conversation_id)
        assert "press 1" in lines[0] and lines[1] == GREETING  # asked first, then greeted either way
