"""CallWorkflow timers on Temporal's time-skipping test server: ringing timeout, hold timeout (the caller
is taken off hold) and the maximum call duration."""

from __future__ import annotations

from models.calls import CallStateView, HoldRequest
from models.enums import CallState, EndReason
from models.tables import Call
from tests.workflows.conftest import CallHarness
from tests.workflows.test_call_workflow import answered_call, events, transitions
from workflows.calls import CallWorkflow

S = CallState


async def test_ringing_timeout_ends_no_answer(skipping_calls: CallHarness) -> None:
    calls = skipping_calls
    line = await calls.new_line(call_settings={"ringing_timeout_seconds": 30})
    handle = await calls.start(calls.inbound(line))
    view: CallStateView = await handle.result()  # the server skips the 30 s
    assert (view.state, view.end_reason) == (S.ENDED, EndReason.NO_ANSWER)
    assert transitions(view) == [(S.RINGING, S.ENDED)] and events(view)[-1] == "ringing_timeout"
    assert (view.timeline[-1].at - view.timeline[0].at).total_seconds() >= 30
    async with calls.sessions() as session:
        call = await session.get(Call, view.call_id)
        assert call is not None and (call.state, call.end_reason) == (S.ENDED, EndReason.NO_ANSWER)


async def test_hold_timeout_resumes_then_max_duration_ends(skipping_calls: CallHarness) -> None:
    calls = skipping_calls
    line = await calls.new_line(call_settings={"max_call_duration_seconds": 600, "hold_timeout_seconds": 60})
    handle, room = await answered_call(calls, line)
    held = await handle.execute_update(CallWorkflow.hold, HoldRequest())
    assert held.state is S.HOLD
    view: CallStateView = await handle.result()  # skips to the hold timeout, then to the maximum duration
    assert (view.state, view.end_reason) == (S.ENDED, EndReason.MAX_DURATION)
    assert transitions(view)[-3:] == [(S.ACTIVE, S.HOLD), (S.HOLD, S.ACTIVE), (S.ACTIVE, S.ENDED)]
    by_event = {e.event: e.at for e in view.timeline}
    assert 60 <= (by_event["hold_timeout"] - by_event["hold"]).total_seconds() < 62
    assert 600 <= (by_event["max_duration"] - by_event["connected"]).total_seconds() < 602
    resumes = [r for r in calls.livekit.calls("UpdateParticipant") if r.room == room]
    assert [r.permission.can_subscribe for r in resumes] == [False, True]
