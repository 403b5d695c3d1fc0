"""Campaigns end to end on a real dev server: the worker dials media-stream calls through the Twilio stand-in,
which plays each call out (ring, answer or busy, hang up) and reports it to the API's status webhook. Pacing is
checked on the stand-in's own request timestamps; pause, resume, cancel; a machine reported on a child call;
continue-as-new never dials anyone twice."""

from __future__ import annotations

import asyncio

import pytest

from models.call_contract import call_workflow_id
from models.calls import AmdOptions, AnsweredByReport, HangupRequest
from models.campaigns import CampaignLimits, CancelRequest, PauseRequest, ResumeRequest, attempt_call_id
from models.enums import AnsweredBy, AttemptResult, CampaignStatus, ContactOutcome, MachinePolicy
from tests.campaigns.conftest import Line, contact, contact_rows, start_campaign
from tests.conftest import unique_e164
from tests.support.stack import eventually
from tests.twilio_standin import TwilioStandIn
from tests.twilio_standin.dialing import CallScript, max_in_one_second, max_simultaneous
from workflows.call_client import CallNotRunning, CallRef
from workflows.campaign_client import CampaignActionRefused, CampaignRef


async def _start(line: Line, numbers: list[str], limits: CampaignLimits, **kwargs: object) -> CampaignRef:
    return await start_campaign(
        line.stack.sessions,
        line.campaigns,
        space_id=line.space_id,
        e164s=[line.e164],
        contacts=[contact(n, name=f"contact {i}", order=str(i)) for i, n in enumerate(numbers)],
        limits=limits,
        **kwargs,  # type: ignore[arg-type]
    )


def _dials(standin: TwilioStandIn, numbers: list[str]) -> list[tuple[float, str]]:
    wanted = set(numbers)
    return [
        (r.received_at.timestamp(), r.form["To"])
        for r in standin.requests_for("create_call")
        if r.form.get("To") in wanted and r.status == 201
    ]


async def test_pacing_never_exceeds_concurrency_or_rate(line: Line, twilio_standin: TwilioStandIn) -> None:
    numbers = [unique_e164() for _ in range(12)]
    for n in numbers:
        twilio_standin.dial_plan[n] = CallScript("answered", ring_seconds=0.2, talk_seconds=1.5)
    ref = await _start(line, numbers, CampaignLimits(max_concurrent=3, calls_per_second=2))
    result = await asyncio.wait_for(ref.result(), 180)
    assert (result.status, result.answered, result.placed, result.remaining) == (CampaignStatus.COMPLETED, 12, 12, 0)
    dials = _dials(twilio_standin, numbers)
    assert sorted(n for _, n in dials) == sorted(numbers)  # each contact dialled exactly once
    times = sorted(t for t, _ in dials)
    # The workflow spaces its dials 1/cps apart; each then reaches the carrier through the child's start, its
    # routing and the carrier activity, which adds up to a few hundred ms of jitter on a loaded machine. At the
    # carrier: the long-run rate stays within the limit, and no 1-second window holds more than one extra dial.
    assert (len(times) - 1) / (times[-1] - times[0]) <= 2.0, times
    assert max_in_one_second(times) <= 2 + 1, times
    records = [c for c in twilio_standin.calls.values() if c.to in set(numbers)]
    assert max_simultaneous(records) <= 3
    rows = await contact_rows(line.stack.sessions, result.campaign_id)
    assert {r.outcome for r in rows.values()} == {ContactOutcome.ANSWERED}


async def test_pause_stops_new_dials_resume_continues_cancel_hangs_up(
    line: Line, twilio_standin: TwilioStandIn
) -> None:
    numbers = [unique_e164() for _ in range(8)]
    for n in numbers:
        twilio_standin.dial_plan[n] = CallScript("answered", ring_seconds=0.1, talk_seconds=60)
    ref = await _start(line, numbers, CampaignLimits(max_concurrent=1, calls_per_second=5))
    await eventually(lambda: _first_call_live(twilio_standin, numbers), within=60)
    paused = await ref.pause(PauseRequest(by="test"))
    assert paused.status is CampaignStatus.PAUSED
    # the call in progress goes on; hang it up from the carrier's side: no new dial while paused
    live = [c for c in twilio_standin.calls.values() if c.to in set(numbers) and c.active]
    assert len(live) == 1
    await line.calls.call(_workflow_of(twilio_standin, live[0].sid), space_id=line.space_id).hangup(
        HangupRequest(by="test")
    )
    await eventually(lambda: _progress_is(ref, in_progress=0), within=60)
    await asyncio.sleep(2.0)
    assert len(_dials(twilio_standin, numbers)) == 1
    resumed = await ref.resume(ResumeRequest(by="test"))
    assert resumed.status is CampaignStatus.RUNNING
    await eventually(lambda: _dialled(twilio_standin, numbers, 2), within=60)
    cancelled = await ref.cancel(CancelRequest(hang_up=True, by="test"))
    assert cancelled.status is CampaignStatus.CANCELLING
    result = await asyncio.wait_for(ref.result(), 120)
    assert result.status is CampaignStatus.CANCELLED and result.in_progress == 0
    assert result.answered == 2 and result.cancelled == 6 and result.remaining == 0
    assert all(not c.active for c in twilio_standin.calls.values() if c.to in set(numbers))
    assert any(r.form.get("Status") == "completed" for r in twilio_standin.requests_for("update_call"))
    rows = await contact_rows(line.stack.sessions, result.campaign_id)
    assert sorted(r.outcome.value for r in rows.values() if r.outcome) == ["answered"] * 2 + ["cancelled"] * 6
    with pytest.raises(CampaignActionRefused, match="over"):
        await ref.resume(ResumeRequest())


async def test_a_machine_is_retried_then_a_person_answers(line: Line, twilio_standin: TwilioStandIn) -> None:
    callee = unique_e164()
    twilio_standin.dial_plan[callee] = CallScript("answered", ring_seconds=0.1, talk_seconds=20)
    limits = CampaignLimits(max_concurrent=1, calls_per_second=1, max_attempts=2, backoff_seconds={"machine": 1})
    ref = await _start(line, [callee], limits, amd=AmdOptions(MachinePolicy.HANGUP))
    campaign_id = ref.workflow_id.rsplit("-", 1)[-1]
    for attempt, answered_by in ((1, AnsweredBy.MACHINE), (2, AnsweredBy.HUMAN)):
        workflow_id = call_workflow_id(line.space_id, attempt_call_id(campaign_id, 1, attempt))
        call = line.calls.call(workflow_id, space_id=line.space_id)

        async def connected(call: CallRef = call) -> bool:
            try:
                view = await call.state()
            except CallNotRunning:
                return False
            return view.state.value in ("connected", "active")

        await eventually(connected, within=60)
        view = await call.report_answered_by(AnsweredByReport(answered_by, 900, "audio"))
        assert view.answered_by is answered_by and view.campaign_id == campaign_id
    result = await asyncio.wait_for(ref.result(), 120)
    assert result.answered == 1 and result.placed == 2
    row = (await contact_rows(line.stack.sessions, result.campaign_id))[callee]
    assert (row.outcome, row.attempts, row.last_result, row.answered_by) == (
        ContactOutcome.ANSWERED,
        2,
        AttemptResult.ANSWERED,
        "human",
    )


async def test_continue_as_new_never_dials_anyone_twice(line: Line, twilio_standin: TwilioStandIn) -> None:
    numbers = [unique_e164() for _ in range(9)]
    busy = numbers[0]
    for n in numbers:
        twilio_standin.dial_plan[n] = CallScript("answered", ring_seconds=0.1, talk_seconds=0.3)
    twilio_standin.dial_plan[busy] = CallScript("busy", ring_seconds=0.1)
    limits = CampaignLimits(max_concurrent=2, calls_per_second=5, max_attempts=2, backoff_seconds={"busy": 1})
    ref = await _start(line, numbers, limits, continue_after_dials=3)
    result = await asyncio.wait_for(ref.result(), 180)
    assert result.runs >= 3 and result.placed == 10 and result.answered == 8 and result.busy == 1
    dialled = sorted(n for _, n in _dials(twilio_standin, numbers))
    assert dialled == sorted([*numbers, busy])  # the busy one twice (its retry), everyone else once


# ------------------------------------------------------------------------------------------ helpers
async def _first_call_live(standin: TwilioStandIn, numbers: list[str]) -> bool:
    return any(c.to in set(numbers) and c.status == "in-progress" for c in standin.calls.values())


async def _dialled(standin: TwilioStandIn, numbers: list[str], count: int) -> bool:
    return len(_dials(standin, numbers)) >= count and await _first_call_live(standin, numbers)


async def _progress_is(ref: CampaignRef, *, in_progress: int) -> bool:
    return (await ref.progress()).in_progress == in_progress


def _workflow_of(standin: TwilioStandIn, sid: str) -> str:
    return (standin.calls[sid].url or "").rsplit("workflow_id=", 1)[-1]
