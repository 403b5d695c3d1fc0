"""Outbound calls and warm transfer: the workflow dials through LiveKit (``CreateSIPParticipant`` on the
number's outbound trunk) and the stand-in answers, rings out or reports busy."""

from __future__ import annotations

import uuid

import pytest

from models.call_contract import call_workflow_id
from models.calls import (
    ActiveEvent,
    CallStateView,
    HangupRequest,
    StartCall,
    TransferMode,
    TransferRequest,
)
from models.enums import CallDirection, CallState, EndReason, MediaMode
from models.tables import new_id
from tests.conftest import unique_e164
from tests.workflows.conftest import CallHarness, Line, wait_for
from tests.workflows.test_call_workflow import answered_call, events, transitions
from workflows.calls import CallWorkflow

S = CallState


def outbound(line: Line, callee: str) -> StartCall:
    sid = uuid.uuid4().hex
    return StartCall(
        call_id=new_id("calls"),
        workflow_id=call_workflow_id(line.space_id, sid),
        direction=CallDirection.OUTBOUND,
        from_number=line.e164,
        to_number=callee,
        carrier_call_id=sid,
        space_id=line.space_id,
        media_mode=MediaMode.LIVEKIT,
    )


async def test_outbound_call_answered(calls: CallHarness) -> None:
    line = await calls.with_trunk(await calls.new_line())
    callee = unique_e164()
    handle = await calls.start(outbound(line, callee))
    view = await wait_for(handle, lambda v: "agent_dispatched" in events(v))
    assert view.state is S.CONNECTED and view.participants[0].identity == f"sip_{callee}"
    dials = [d for d in calls.livekit.calls("CreateSIPParticipant") if d.sip_call_to == callee]
    assert len(dials) == 1 and dials[0].sip_trunk_id == line.outbound_trunk_id and dials[0].wait_until_answered
    assert dials[0].room_name == view.room_name == handle.id
    await handle.signal(CallWorkflow.active, ActiveEvent(agent_identity="agent-1"))
    await handle.execute_update(CallWorkflow.hangup, HangupRequest())
    view = await handle.result()
    assert transitions(view) == [(S.RINGING, S.CONNECTED), (S.CONNECTED, S.ACTIVE), (S.ACTIVE, S.ENDED)]
    assert view.end_reason is EndReason.COMPLETED


@pytest.mark.parametrize(
    ("outcome", "reason"), [("busy", EndReason.BUSY), ("no_answer", EndReason.NO_ANSWER), (404, EndReason.FAILED)]
)
async def test_outbound_call_not_answered(calls: CallHarness, outcome: str | int, reason: EndReason) -> None:
    line = await calls.with_trunk(await calls.new_line())
    callee = unique_e164()
    calls.livekit.dial_outcomes[callee] = outcome
    view: CallStateView = await (await calls.start(outbound(line, callee))).result()
    assert (view.state, view.end_reason) == (S.ENDED, reason)
    assert transitions(view) == [(S.RINGING, S.ENDED)] and events(view)[-1] == "dial_failed"


async def test_warm_transfer_dials_the_target_into_the_room(calls: CallHarness) -> None:
    line = await calls.with_trunk(await calls.new_line())
    handle, room = await answered_call(calls, line)
    target = unique_e164()
    request = TransferRequest(target, TransferMode.WARM)
    result = await handle.execute_update(CallWorkflow.transfer, request)
    assert result.ok and result.state is S.ACTIVE
    assert calls.livekit.participant(room, f"transfer_{target}") is not None
    view = await wait_for(handle, lambda v: v.state is S.ACTIVE)
    assert [p.kind.value for p in view.participants] == ["caller", "agent", "transfer-target"]
    assert events(view)[-1] == "transfer_connected"

    busy = unique_e164()
    calls.livekit.dial_outcomes[busy] = "busy"
    failed = await handle.execute_update(CallWorkflow.transfer, TransferRequest(busy, TransferMode.WARM))
    assert not failed.ok and failed.state is S.ACTIVE and failed.sip_status_code == 486
    await handle.execute_update(CallWorkflow.hangup, HangupRequest())
    assert (await handle.result()).end_reason is EndReason.COMPLETED
