"""CallWorkflow on a real Temporal dev server, with the real activities against a migrated SQLite
database and the LiveKit Twirp stand-in (the official ``livekit-api`` client talks to it)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy import select
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Replayer

from models.call_contract import DispatchMetadata
from models.calls import (
    CALL_ACTION_FAILED,
    ILLEGAL_TRANSITION,
    ActiveEvent,
    CallStateView,
    CarrierStatus,
    ConnectedEvent,
    DtmfEvent,
    DtmfRequest,
    HangupEvent,
    HangupRequest,
    HoldRequest,
    ResumeRequest,
    TransferMode,
    TransferRequest,
)
from models.enums import CallState, ConversationStatus, EndReason
from models.tables import Call, Conversation
from tests.conftest import unique_e164
from tests.workflows.conftest import AGENT_NAME, CallHarness, Line, state_of, wait_for
from workflows.calls import CallWorkflow
from workflows.sandbox import workflow_runner

S = CallState


def transitions(view: CallStateView) -> list[tuple[CallState, CallState]]:
    return [(e.previous, e.state) for e in view.timeline if e.previous is not None]


def events(view: CallStateView) -> list[str]:
    return [e.event for e in view.timeline]


async def answered_call(calls: CallHarness, line: Line, **kwargs: Any) -> tuple[WorkflowHandle[Any, Any], str]:
    """An inbound call whose caller is in the LiveKit room, connected and active; returns its room."""
    start = calls.inbound(line, **kwargs)
    assert start.room_name is not None
    caller = await calls.livekit.add_sip_caller(start.room_name, start.from_number, line.e164)
    handle = await calls.start(start)
    await handle.signal(
        CallWorkflow.connected, ConnectedEvent(room_name=start.room_name, participant_identity=caller.identity)
    )
    await handle.signal(CallWorkflow.active, ActiveEvent(agent_identity="agent-1"))
    await wait_for(handle, lambda v: v.state is S.ACTIVE and "agent_dispatched" in events(v))
    return handle, start.room_name


async def rejected(handle: WorkflowHandle[Any, Any], update: Any, arg: Any) -> ApplicationError:
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await handle.execute_update(update, arg)
    cause = info.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


async def test_inbound_happy_path(calls: CallHarness) -> None:
    line = await calls.new_line()
    handle, room = await answered_call(calls, line)
    await handle.signal(CallWorkflow.hangup_received, HangupEvent(reason=EndReason.COMPLETED, by="caller"))
    view: CallStateView = await handle.result()

    assert view.state is S.ENDED and view.end_reason is EndReason.COMPLETED
    assert transitions(view) == [(S.RINGING, S.CONNECTED), (S.CONNECTED, S.ACTIVE), (S.ACTIVE, S.ENDED)]
    assert events(view)[0] == "ringing" and "agent_dispatched" in events(view)
    stamps = [e.at for e in view.timeline]
    assert stamps == sorted(stamps)
    assert {p.kind.value for p in view.participants} == {"caller", "agent"}
    assert all(p.left_at is not None for p in view.participants)
    assert view.agent_id == line.agent_id and view.space_id == line.space_id

    dispatches = [d for d in calls.livekit.calls("CreateDispatch") if d.room == room]
    assert len(dispatches) == 1 and dispatches[0].agent_name == AGENT_NAME
    # What the workflow writes is what the voice worker reads (voice.livekit_worker decodes the same type).
    assert DispatchMetadata.decode(dispatches[0].metadata) == DispatchMetadata(
        handle.id, view.call_id, line.space_id, line.agent_id, view.conversation_id
    )
    # LiveKit's dispatch rule made the room for the arriving SIP call: the workflow does not create it again.
    assert [r for r in calls.livekit.calls("CreateRoom") if r.name == room] == []
    assert calls.livekit.room(room) is None  # deleted at the end
    # The recorded history replays deterministically.
    await Replayer(workflows=[CallWorkflow], workflow_runner=workflow_runner()).replay_workflow(
        await handle.fetch_history()
    )

    async with calls.sessions() as session:
        call = await session.get(Call, view.call_id)
        assert call is not None
        assert (call.state, call.end_reason) == (S.ENDED, EndReason.COMPLETED)
        assert call.connected_at is not None and call.ended_at is not None
        assert call.connected_at <= call.ended_at
        assert call.conversation_id == view.conversation_id
        conversation = await session.get(Conversation, call.conversation_id)
        assert conversation is not None and conversation.status is ConversationStatus.PAUSED


async def test_next_call_resumes_the_callers_conversation(calls: CallHarness) -> None:
    line = await calls.new_line()
    caller = unique_e164()
    first, _ = await answered_call(calls, line, caller=caller)
    await first.execute_update(CallWorkflow.hangup, HangupRequest())
    first_view: CallStateView = await first.result()
    second, _ = await answered_call(calls, line, caller=caller)
    second_view = await state_of(second)
    assert second_view.conversation_id == first_view.conversation_id
    other, _ = await answered_call(calls, line)
    assert (await state_of(other)).conversation_id != first_view.conversation_id
    for handle in (second, other):
        await handle.execute_update(CallWorkflow.hangup, HangupRequest())
        await handle.result()


async def test_duplicate_and_out_of_order_signals(calls: CallHarness) -> None:
    line = await calls.new_line()
    start = calls.inbound(line)
    # A webhook delivered twice: signal-with-start reaches the same workflow both times.
    handle = await calls.start_with(start, CarrierStatus("ringing"))
    again = await calls.start_with(start, CarrierStatus("ringing"))
    assert handle is not None and again is not None and again.result_run_id == handle.result_run_id
    await handle.signal(CallWorkflow.active, ActiveEvent())  # before "connected"
    await handle.signal(CallWorkflow.connected, ConnectedEvent())  # late: ignored
    await handle.signal(CallWorkflow.carrier_status, CarrierStatus("in-progress"))  # late: ignored
    await handle.signal(CallWorkflow.carrier_status, CarrierStatus("ringing"))  # late: ignored
    for _ in range(2):
        await handle.signal(CallWorkflow.dtmf_received, DtmfEvent("5", event_id="ev-1"))
    await handle.signal(CallWorkflow.carrier_status, CarrierStatus("completed"))
    await handle.signal(CallWorkflow.carrier_status, CarrierStatus("completed"))
    await handle.signal(CallWorkflow.hangup_received, HangupEvent(reason=EndReason.FAILED))  # after the end: ignored
    view: CallStateView = await handle.result()
    assert transitions(view) == [(S.RINGING, S.ACTIVE), (S.ACTIVE, S.ENDED)]
    assert view.end_reason is EndReason.COMPLETED
    assert view.dtmf_received == "5"
    # A status callback retried after the end starts no second call.
    assert await calls.start_with(start, CarrierStatus("completed")) is None


async def test_livekit_refusing_the_dispatch_ends_the_call_failed(calls: CallHarness) -> None:
    line = await calls.new_line()
    calls.livekit.fail("CreateDispatch", code="permission_denied", msg="permissions denied")
    start = calls.inbound(line)
    connected = ConnectedEvent(room_name=start.room_name, participant_identity="sip_caller")
    handle = await calls.start_with(start, connected)
    assert handle is not None
    view = await handle.result()
    assert (view.state, view.end_reason) == (S.ENDED, EndReason.FAILED)
    assert view.timeline[-1].event == "livekit_failed" and "permissions denied" in (view.timeline[-1].detail or "")


async def test_completed_before_in_progress_still_ends_completed(calls: CallHarness) -> None:
    line = await calls.new_line()
    handle = await calls.start(calls.inbound(line))
    await handle.signal(CallWorkflow.carrier_status, CarrierStatus("completed"))
    await handle.signal(CallWorkflow.carrier_status, CarrierStatus("in-progress"))
    view: CallStateView = await handle.result()
    assert (view.state, view.end_reason) == (S.ENDED, EndReason.COMPLETED)
    assert transitions(view) == [(S.RINGING, S.ENDED)]
    async with calls.sessions() as session:
        call = await session.get(Call, view.call_id)
        assert call is not None and call.state is S.ENDED and call.connected_at is None


async def test_unknown_and_disabled_numbers_are_rejected(calls: CallHarness) -> None:
    line = await calls.new_line(enabled=False)
    start = calls.inbound(line)
    view: CallStateView = await (await calls.start(start)).result()
    assert (view.state, view.end_reason) == (S.ENDED, EndReason.REJECTED)
    assert view.timeline[-1].detail == "number disabled"
    async with calls.sessions() as session:
        call = await session.get(Call, start.call_id)
        assert call is not None and call.end_reason is EndReason.REJECTED and call.conversation_id is None

    unknown = calls.inbound(line)
    unknown.to_number, unknown.space_id = unique_e164(), None
    view = await (await calls.start(unknown)).result()
    assert view.end_reason is EndReason.REJECTED and view.timeline[-1].detail == "unknown number"
    async with calls.sessions() as session:
        assert await session.scalar(select(Call).where(Call.workflow_id == unknown.workflow_id)) is None


async def test_hold_and_resume(calls: CallHarness) -> None:
    line = await calls.new_line()
    handle, room = await answered_call(calls, line)
    caller = (await state_of(handle)).participants[0].identity

    held: CallStateView = await handle.execute_update(CallWorkflow.hold, HoldRequest(by="staff-1"))
    assert held.state is S.HOLD and held.on_hold
    participant = calls.livekit.participant(room, caller)
    assert participant is not None
    assert not participant.permission.can_subscribe and participant.attributes["telephony.hold"] == "true"

    resumed = await handle.execute_update(CallWorkflow.resume, ResumeRequest())
    assert resumed.state is S.ACTIVE
    participant = calls.livekit.participant(room, caller)
    assert participant is not None
    assert participant.permission.can_subscribe and "telephony.hold" not in participant.attributes
    assert transitions(resumed)[-2:] == [(S.ACTIVE, S.HOLD), (S.HOLD, S.ACTIVE)]
    await handle.execute_update(CallWorkflow.hangup, HangupRequest())
    await handle.result()


async def test_failed_hold_fails_the_update_and_keeps_the_call_active(calls: CallHarness) -> None:
    line = await calls.new_line()
    handle, _ = await answered_call(calls, line)
    calls.livekit.fail("UpdateParticipant", code="not_found", msg="participant does not exist")
    error = await rejected(handle, CallWorkflow.hold, HoldRequest())
    assert error.type == CALL_ACTION_FAILED and "participant does not exist" in error.message
    view = await state_of(handle)
    assert view.state is S.ACTIVE and view.timeline[-1].event == "action_failed"
    await handle.execute_update(CallWorkflow.hangup, HangupRequest())
    await handle.result()


async def test_hangup_while_ringing_cancels(calls: CallHarness) -> None:
    line = await calls.new_line()
    handle = await calls.start(calls.inbound(line))
    await wait_for(handle, lambda v: v.conversation_id is not None)
    await handle.execute_update(CallWorkflow.hangup, HangupRequest(by="staff-1"))
    view: CallStateView = await handle.result()
    assert (view.state, view.end_reason) == (S.ENDED, EndReason.CANCELED)
    assert view.timeline[-1].detail == "staff-1"
    async with calls.sessions() as session:
        call = await session.get(Call, view.call_id)
        assert call is not None and call.end_reason is EndReason.CANCELED


async def test_illegal_transitions_are_rejected_by_the_validators(calls: CallHarness) -> None:
    line = await calls.new_line()
    start = calls.inbound(line)
    handle = await calls.start(start)
    await wait_for(handle, lambda v: v.conversation_id is not None)
    before = await state_of(handle)

    error = await rejected(handle, CallWorkflow.hold, HoldRequest())
    assert error.type == ILLEGAL_TRANSITION and "ringing" in error.message
    assert (await rejected(handle, CallWorkflow.transfer, TransferRequest("+14155550100"))).type == ILLEGAL_TRANSITION
    assert (await rejected(handle, CallWorkflow.send_dtmf, DtmfRequest("1"))).type == ILLEGAL_TRANSITION

    after = await state_of(handle)
    assert after.state is S.RINGING and after.timeline == before.timeline
    assert not [r for r in calls.livekit.calls("UpdateParticipant") if r.room == start.room_name]

    caller = await calls.livekit.add_sip_caller(start.room_name or "", start.from_number, line.e164)
    await handle.signal(CallWorkflow.connected, ConnectedEvent(participant_identity=caller.identity))
    await handle.signal(CallWorkflow.active, ActiveEvent())
    await wait_for(handle, lambda v: v.state is S.ACTIVE)
    assert "ACTIVE" not in (await rejected(handle, CallWorkflow.resume, ResumeRequest())).message
    assert "E.164" in (await rejected(handle, CallWorkflow.transfer, TransferRequest("not-a-number"))).message
    warm = await rejected(handle, CallWorkflow.transfer, TransferRequest("+14155550100", TransferMode.WARM))
    assert "SIP trunk" in warm.message
    assert "digits" in (await rejected(handle, CallWorkflow.send_dtmf, DtmfRequest("12x"))).message

    await handle.execute_update(CallWorkflow.hangup, HangupRequest(by="staff"))
    view: CallStateView = await handle.result()
    assert view.end_reason is EndReason.COMPLETED


async def test_cold_transfer(calls: CallHarness) -> None:
    line = await calls.new_line()
    handle, room = await answered_call(calls, line)
    target = unique_e164()
    result = await handle.execute_update(CallWorkflow.transfer, TransferRequest(target))
    assert result.ok and result.state is S.ENDED
    view: CallStateView = await handle.result()
    assert (view.state, view.end_reason) == (S.ENDED, EndReason.TRANSFERRED)
    assert transitions(view)[-2:] == [(S.ACTIVE, S.TRANSFERRING), (S.TRANSFERRING, S.ENDED)]
    refers = [r for r in calls.livekit.calls("TransferSIPParticipant") if r.room_name == room]
    assert [r.transfer_to for r in refers] == [f"tel:{target}"]


async def test_failed_cold_transfer_returns_to_active(calls: CallHarness) -> None:
    line = await calls.new_line()
    handle, _ = await answered_call(calls, line)
    target = unique_e164()
    calls.livekit.transfer_outcomes[f"tel:{target}"] = "busy"
    result = await handle.execute_update(CallWorkflow.transfer, TransferRequest(target))
    assert not result.ok and result.state is S.ACTIVE and result.sip_status_code == 486
    view = await state_of(handle)
    assert transitions(view)[-2:] == [(S.ACTIVE, S.TRANSFERRING), (S.TRANSFERRING, S.ACTIVE)]
    failed = view.timeline[-1]
    assert failed.event == "transfer_failed" and failed.detail is not None and "486" in failed.detail
    await handle.execute_update(CallWorkflow.hangup, HangupRequest())
    view = await handle.result()
    assert view.end_reason is EndReason.COMPLETED


async def test_dtmf_received_and_sent(calls: CallHarness) -> None:
    line = await calls.new_line()
    handle, room = await answered_call(calls, line)
    await handle.signal(CallWorkflow.dtmf_received, DtmfEvent("12"))
    await handle.signal(CallWorkflow.dtmf_received, DtmfEvent("#"))
    view = await wait_for(handle, lambda v: v.dtmf_received == "12#")
    assert [e.detail for e in view.timeline if e.event == "dtmf_received"] == ["12", "#"]
    sent = await handle.execute_update(CallWorkflow.send_dtmf, DtmfRequest("9w1"))
    assert sent.timeline[-1].event == "dtmf_sent"
    packets = [p for p in calls.livekit.calls("SendData") if p.room == room]
    assert len(packets) == 1 and packets[0].topic == "telephony.dtmf"
    assert json.loads(packets[0].data) == {"digits": "9w1"} and list(packets[0].destination_identities) == ["agent-1"]
    await handle.execute_update(CallWorkflow.hangup, HangupRequest())
    await handle.result()


async def test_search_attributes_are_queryable(calls: CallHarness) -> None:
    line = await calls.new_line()
    handle, _ = await answered_call(calls, line)

    async def ids(query: str) -> list[str]:
        for _ in range(100):  # visibility lags a little behind
            found = [w.id async for w in calls.client.list_workflows(query)]
            if found:
                return found
            await asyncio.sleep(0.1)
        return []

    assert await ids(f'CallState="active" AND SpaceId="{line.space_id}"') == [handle.id]
    assert await ids(f'CallDirection="inbound" AND PhoneNumber="{line.e164}"') == [handle.id]
    await handle.execute_update(CallWorkflow.hangup, HangupRequest())
    await handle.result()
    assert await ids(f'CallState="ended" AND SpaceId="{line.space_id}"') == [handle.id]
