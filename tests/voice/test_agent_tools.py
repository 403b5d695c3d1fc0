"""``PhoneAgent`` in text mode (``AgentSession.run``) with the local LLM, acting on real calls: the real
CallWorkflow with its real activities on a Temporal dev server, the LiveKit stand-in, SQLite."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from livekit.agents import AgentSession
from livekit.agents.voice.run_result import RunResult
from temporalio.client import WorkflowHandle

from models.call_contract import DispatchMetadata, MetadataError
from models.calls import CallStateView, ConnectedEvent, HangupRequest
from models.enums import CallState, EndReason, MessageRole
from models.secret_box import SecretBox, SecretBoxError
from models.tables import Agent, Message
from tests.conftest import unique_e164

# The call harness's session fixtures (Temporal dev server + worker, LiveKit stand-in, SQLite).
from tests.workflows.conftest import CallHarness, call_db, call_livekit, state_of, wait_for  # noqa: F401
from tests.workflows.conftest import calls as session_calls  # noqa: F401
from voice.agent import PhoneAgent, PreparedCall, mark_active_on_first_speech, prepare_call
from voice.agent_config import AgentNotFoundError, load_agent_config, recent_messages
from voice.agent_transcripts import DbTranscriptSink, TranscriptRecorder, record_transcripts
from voice.local_llm import DONT_KNOW, LocalKnowledgeLLM
from workflows.calls import CallWorkflow

S = CallState
KNOWLEDGE = [
    {"title": "Opening hours", "content": "We are open Monday to Friday from 9 am to 5 pm. Closed on weekends."},
    {"title": "Parking", "content": "Free parking is available in the garage behind the building."},
]
GREETING = "Thanks for calling Acme, how can I help?"
TEXT_MODE: Any = {"turn_detection": "manual", "interruption": {"mode": "vad"}}  # no audio: no turn detector


@pytest.fixture
def harness(session_calls: CallHarness) -> CallHarness:  # noqa: F811
    return session_calls


@dataclass
class LiveCall:
    handle: WorkflowHandle[Any, CallStateView]
    room: str
    prepared: PreparedCall
    session: AgentSession
    recorder: TranscriptRecorder


async def connected_call(harness: CallHarness) -> tuple[WorkflowHandle[Any, Any], str, str]:
    """An inbound call to an agent with a knowledge base, its caller in the room: CONNECTED, not yet ACTIVE."""
    line = await harness.new_line()
    async with harness.sessions() as db:
        agent = await db.get(Agent, line.agent_id)
        assert agent is not None
        agent.knowledge_base, agent.greeting, agent.instructions = KNOWLEDGE, GREETING, "You answer for Acme."
        await db.commit()
    start = harness.inbound(line)
    assert start.room_name is not None
    caller = await harness.livekit.add_sip_caller(start.room_name, start.from_number, line.e164)
    handle = await harness.start(start)
    await handle.signal(CallWorkflow.connected, ConnectedEvent(participant_identity=caller.identity))
    view = await wait_for(handle, lambda v: v.state is S.CONNECTED and v.conversation_id is not None)
    return handle, start.room_name, view.conversation_id or ""


@asynccontextmanager
async def live_call(harness: CallHarness, *, transfer_target: str | None = None) -> AsyncIterator[LiveCall]:
    """The entrypoint's path: dispatch metadata -> prepare_call -> AgentSession; the greeting makes it ACTIVE."""
    handle, room, conversation_id = await connected_call(harness)
    view = await state_of(handle)
    assert view.space_id is not None and view.agent_id is not None
    metadata = DispatchMetadata(handle.id, view.call_id, view.space_id, view.agent_id, conversation_id).encode()
    prepared = await prepare_call(
        DispatchMetadata.decode(metadata),
        harness.voice_runtime(secret_box=None),
        agent_identity="agent-1",
        transfer_target=transfer_target,
    )
    async with AgentSession(llm=prepared.llm, vad=None, turn_handling=TEXT_MODE) as session:
        recorder = record_transcripts(session, prepared.transcripts)
        mark_active_on_first_speech(session, prepared.control)
        await session.start(prepared.agent)  # the greeting is the agent's first speech: the call becomes ACTIVE
        active = await wait_for(handle, lambda v: v.state is S.ACTIVE)
        assert [(p.identity, p.kind.value) for p in active.participants][-1] == ("agent-1", "agent")
        try:
            yield LiveCall(handle, room, prepared, session, recorder)
        finally:
            await recorder.aclose()
            if (await state_of(handle)).state is not S.ENDED:
                await handle.execute_update(CallWorkflow.hangup, HangupRequest())


def events(view: CallStateView) -> list[str]:
    return [e.event for e in view.timeline]


async def test_knowledge_answer_and_unknown_question_with_transcripts(harness: CallHarness) -> None:
    async with live_call(harness) as call:
        assert isinstance(call.prepared.llm, LocalKnowledgeLLM)
        assert call.prepared.config.greeting == GREETING and len(call.prepared.knowledge) == 2
        result: RunResult[None] = await call.session.run(user_input="What are your opening hours?")
        result.expect.next_event().is_message(role="assistant")
        answer = result.expect[0].is_message().event().item.text_content or ""
        assert "Monday to Friday from 9 am to 5 pm" in answer
        result.expect.no_more_events()

        unknown: RunResult[None] = await call.session.run(user_input="What's the weather on Mars?")
        said = unknown.expect.next_event().is_message(role="assistant").event().item.text_content or ""
        assert said == DONT_KNOW and "don't know" in said and "transfer" in said
        await call.recorder.flush()
        conversation_id = call.prepared.dispatch.conversation_id

    async with harness.sessions() as db:
        rows = (
            await db.execute(
                sa.select(Message.role, Message.text, Message.source, Message.call_id, Message.dedupe_key)
                .where(Message.conversation_id == conversation_id)
                .order_by(Message.created_at)
            )
        ).all()
    assert [(r.role, r.text) for r in rows] == [
        (MessageRole.AGENT, GREETING),
        (MessageRole.CALLER, "What are your opening hours?"),
        (MessageRole.AGENT, answer),
        (MessageRole.CALLER, "What's the weather on Mars?"),
        (MessageRole.AGENT, DONT_KNOW),
    ]
    assert {r.source for r in rows} == {"voice"} and {r.call_id for r in rows} == {call.prepared.dispatch.call_id}
    assert len({r.dedupe_key for r in rows}) == 5


async def test_speak_to_a_person_transfers_the_call(harness: CallHarness) -> None:
    target = unique_e164()
    async with live_call(harness, transfer_target=target) as call:
        result: RunResult[None] = await call.session.run(user_input="I'd like to speak to a person")
        result.expect.next_event().is_message(role="assistant")
        result.expect.next_event().is_function_call(name="transfer_call", arguments={"target": "", "mode": "cold"})
        output = result.expect.next_event().is_function_call_output().event().item
        assert output.output.startswith("OK: the caller was transferred") and not output.reply_required
        view: CallStateView = await call.handle.result()
    assert (view.state, view.end_reason) == (S.ENDED, EndReason.TRANSFERRED)
    transfer = next(e for e in view.timeline if e.event == "transfer")
    assert transfer.detail == f"cold to tel:{target} by agent"
    refers = [r for r in harness.livekit.calls("TransferSIPParticipant") if r.room_name == call.room]
    assert [r.transfer_to for r in refers] == [f"tel:{target}"]


async def test_failed_transfer_is_explained_and_the_call_goes_on(harness: CallHarness) -> None:
    target = unique_e164()
    harness.livekit.transfer_outcomes[f"tel:{target}"] = "busy"
    async with live_call(harness, transfer_target=target) as call:
        result: RunResult[None] = await call.session.run(user_input="transfer me to a representative")
        output = result.expect.contains_function_call_output().event().item
        assert output.output.startswith("FAILED: the transfer failed (SIP 486)") and output.reply_required
        apology = result.expect[-1].is_message(role="assistant").event().item.text_content or ""
        assert apology.startswith("I'm sorry, I wasn't able to transfer your call")
        view = await state_of(call.handle)
        assert view.state is S.ACTIVE and events(view)[-2:] == ["transfer", "transfer_failed"]


async def test_goodbye_ends_the_call(harness: CallHarness) -> None:
    async with live_call(harness) as call:
        result: RunResult[None] = await call.session.run(user_input="That's all, goodbye")
        said = result.expect.next_event().is_message(role="assistant").event().item.text_content
        assert said == "Thank you for calling. Goodbye!"
        result.expect.next_event().is_function_call(name="end_call")
        result.expect.next_event().is_function_call_output()
        result.expect.no_more_events()
        view: CallStateView = await call.handle.result()
        assert (view.state, view.end_reason) == (S.ENDED, EndReason.COMPLETED)
        assert view.timeline[-1].detail == "agent"
        # After the end, an action is refused by the workflow and explained, not raised.
        late: RunResult[None] = await call.session.run(user_input="put me on hold")
        failed = late.expect.contains_function_call_output().event().item.output
        assert failed.startswith("FAILED:") and "ended" in failed
        apology = late.expect[-1].is_message(role="assistant").event().item.text_content or ""
        assert apology.startswith("I'm sorry, I wasn't able to put you")


async def test_put_me_on_hold(harness: CallHarness) -> None:
    async with live_call(harness) as call:
        result: RunResult[None] = await call.session.run(user_input="Could you put me on hold please?")
        result.expect.next_event().is_message(role="assistant")
        result.expect.next_event().is_function_call(name="hold_call")
        assert result.expect.next_event().is_function_call_output().event().item.output.startswith("OK")
        view = await state_of(call.handle)
        assert view.state is S.HOLD and view.on_hold and view.timeline[-1].detail == "agent"


async def test_press_digits_sends_dtmf(harness: CallHarness) -> None:
    async with live_call(harness) as call:
        result: RunResult[None] = await call.session.run(user_input="press 1 2 3")
        result.expect.next_event().is_function_call(name="send_dtmf", arguments={"digits": "123"})
        result.expect.next_event().is_function_call_output()
        said = result.expect.next_event().is_message(role="assistant").event().item.text_content
        assert said == "Done. I've sent 1 2 3."
        view = await state_of(call.handle)
        assert view.timeline[-1].event == "dtmf_sent" and view.timeline[-1].detail == "123"
        packets = [p for p in harness.livekit.calls("SendData") if p.room == call.room]
        assert [json.loads(p.data) for p in packets] == [{"digits": "123"}]


async def test_prepare_call_decrypts_the_llm_key_and_loads_history(harness: CallHarness) -> None:
    handle, _, conversation_id = await connected_call(harness)
    view = await state_of(handle)
    assert view.space_id and view.agent_id
    box = SecretBox([Fernet.generate_key().decode()])
    async with harness.sessions() as db:
        agent = await db.get(Agent, view.agent_id)
        assert agent is not None
        agent.llm_api_key_encrypted = box.encrypt("sk-test")
        for n, role in enumerate([MessageRole.CALLER, MessageRole.AGENT, MessageRole.SYSTEM]):
            db.add(
                Message(space_id=view.space_id, conversation_id=conversation_id, role=role, source="sms", text=f"m{n}")
            )
        await db.commit()
    dispatch = DispatchMetadata(handle.id, view.call_id, view.space_id, view.agent_id, conversation_id)
    prepared = await prepare_call(dispatch, harness.voice_runtime(secret_box=box))
    assert prepared.config.llm_api_key == "sk-test" and "sk-test" not in repr(prepared.config)
    assert prepared.control.workflow_id == handle.id
    history = [(m.role, m.text_content) for m in prepared.agent.chat_ctx.messages()]
    assert history == [("user", "m0"), ("assistant", "m1")]
    assert isinstance(prepared.agent, PhoneAgent) and "You answer for Acme." in str(prepared.agent.instructions)
    with pytest.raises(SecretBoxError):  # keys that cannot open the agent's LLM key: refused, never keyless
        await prepare_call(dispatch, harness.voice_runtime(secret_box=None))
    with pytest.raises(AgentNotFoundError):
        await load_agent_config(harness.sessions, view.space_id, "ag_missing", box)
    with pytest.raises(AgentNotFoundError):  # another space's agent is not found either
        await load_agent_config(harness.sessions, "sp_other", view.agent_id, box)
    assert [m.text for m in await recent_messages(harness.sessions, conversation_id, limit=1)] == ["m1"]
    with pytest.raises(MetadataError, match="workflow_id"):
        DispatchMetadata.decode('{"space_id": "sp"}')
    # A replayed transcript line is stored once.
    sink = DbTranscriptSink(
        harness.sessions, space_id=view.space_id, conversation_id=conversation_id, call_id=view.call_id
    )
    from voice.agent_transcripts import TranscriptLine

    line = TranscriptLine(MessageRole.CALLER, "hello", "item_1", view.timeline[0].at)
    await sink.append(line)
    await sink.append(line)
    async with harness.sessions() as db:
        stored = await db.scalar(sa.select(sa.func.count()).where(Message.dedupe_key == sink.dedupe_key(line)))
    assert stored == 1
    await handle.execute_update(CallWorkflow.hangup, HangupRequest())
    await handle.result()
