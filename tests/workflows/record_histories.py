"""Record the ``CallWorkflow`` histories that ``test_call_replay.py`` replays.

    .venv/bin/python -m tests.workflows.record_histories            # every scenario
    .venv/bin/python -m tests.workflows.record_histories ringing_timeout

Each scenario runs one call against a fresh Temporal dev server (the ``temporal`` binary beside Python),
the production worker wiring (``workers.worker.build_worker``) with the real activities, a migrated
SQLite database and the LiveKit stand-in, then writes ``await handle.fetch_history()`` as
``tests/workflows/histories/<scenario>.json`` (``WorkflowHistory.to_json()``). The workflow id of a
recorded call is ``call-replay-<scenario>`` (see ``workflow_id``): the replay test rebuilds it from the
file name.

The stored histories are the compatibility contract of calls already running in production: when the
replay test fails, the change to ``workflows/calls.py`` is non-deterministic and would break in-flight
calls on deploy. Guard the change with ``workflow.patched(...)`` instead. Only re-record after a change
that is *meant* to be incompatible (and deployed with a new task queue or after draining every open
call), and commit the new files together with that change.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from livekit import api as lk
from livekit.protocol.egress import EgressInfo
from temporalio.client import Client, WorkflowHandle

from models.calls import (
    ActiveEvent,
    AmdOptions,
    AnsweredByReport,
    CallStateView,
    ConnectedEvent,
    DtmfEvent,
    DtmfRequest,
    HangupEvent,
    HangupRequest,
    HoldRequest,
    ResumeRequest,
    StartCall,
    TransferRequest,
    VoicemailLeft,
)
from models.consent import ConsentOutcome, ConsentReport, RecordingConsent
from models.db import create_engine, migrate, session_factory
from models.enums import AnsweredBy, CallDirection, CallState, EndReason, MachinePolicy, MediaMode, RecordingPolicy
from models.recordings import RecordingUpdate
from models.settings import Settings
from models.tables import PhoneNumber, Space, new_id
from tests.conftest import SECRET_KEY, unique_e164
from tests.livekit_standin import LiveKitStandIn
from tests.support.temporal import start_dev_server
from tests.workflows.conftest import CallHarness, Line
from workers.worker import activity_clients, build_worker
from workflows.calls import CallWorkflow

HISTORIES = Path(__file__).parent / "histories"
S = CallState
Handle = WorkflowHandle[Any, CallStateView]


def workflow_id(scenario: str) -> str:
    """The workflow id a scenario is recorded under (and replayed with)."""
    return f"call-replay-{scenario}"  # the ids the stored histories were recorded under


def inbound(line: Line, scenario: str) -> StartCall:
    sid = f"replay-{scenario}"
    return StartCall(
        call_id=new_id("calls"),
        workflow_id=workflow_id(scenario),
        direction=CallDirection.INBOUND,
        from_number=unique_e164(),
        to_number=line.e164,
        carrier_call_id=sid,
        space_id=line.space_id,
        media_mode=MediaMode.LIVEKIT,
        room_name=workflow_id(scenario),
    )


def outbound(line: Line, scenario: str) -> StartCall:
    sid = f"replay-{scenario}"
    return StartCall(
        call_id=new_id("calls"),
        workflow_id=workflow_id(scenario),
        direction=CallDirection.OUTBOUND,
        from_number=line.e164,
        to_number=unique_e164(),
        carrier_call_id=sid,
        space_id=line.space_id,
        media_mode=MediaMode.LIVEKIT,
    )


async def view_of(handle: Handle) -> CallStateView:
    return await handle.query(CallWorkflow.get_state)


async def until(handle: Handle, predicate: Callable[[CallStateView], bool], within: float = 15.0) -> CallStateView:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        view = await view_of(handle)
        if predicate(view):
            return view
        if loop.time() > deadline:
            raise RuntimeError(f"call never reached the expected state: {view}")
        await asyncio.sleep(0.05)


def dispatched(view: CallStateView) -> bool:
    return any(e.event == "agent_dispatched" for e in view.timeline)


async def answer(calls: CallHarness, start: StartCall) -> Handle:
    """The caller joins the room (connected), the agent is dispatched and joins (active)."""
    assert start.room_name is not None
    caller = await calls.livekit.add_sip_caller(start.room_name, start.from_number, start.to_number)
    handle = await calls.start(start)
    await handle.signal(
        CallWorkflow.connected, ConnectedEvent(room_name=start.room_name, participant_identity=caller.identity)
    )
    await until(handle, dispatched)
    await handle.signal(CallWorkflow.active, ActiveEvent(agent_identity="agent-1"))
    await until(handle, lambda v: v.state is S.ACTIVE)
    return handle


# ---------------------------------------------------------------------------------------- scenarios
async def inbound_hold_dtmf_hangup(calls: CallHarness, name: str) -> Handle:
    """Inbound call answered; hold and resume; DTMF received and sent; staff hang up."""
    line = await calls.new_line()
    handle = await answer(calls, inbound(line, name))
    await handle.execute_update(CallWorkflow.hold, HoldRequest(by="staff-1"))
    await handle.execute_update(CallWorkflow.resume, ResumeRequest(by="staff-1"))
    await handle.signal(CallWorkflow.dtmf_received, DtmfEvent("12", event_id="ev-1"))
    await handle.signal(CallWorkflow.dtmf_received, DtmfEvent("#", event_id="ev-2"))
    await until(handle, lambda v: v.dtmf_received == "12#")
    await handle.execute_update(CallWorkflow.send_dtmf, DtmfRequest("9w1"))
    await handle.execute_update(CallWorkflow.hangup, HangupRequest(by="staff-1"))
    view = await handle.result()
    assert (view.state, view.end_reason) == (S.ENDED, EndReason.COMPLETED), view
    return handle


async def failed_cold_transfer(calls: CallHarness, name: str) -> Handle:
    """Cold transfer answered busy (486): back to ACTIVE; then the caller hangs up."""
    line = await calls.new_line()
    handle = await answer(calls, inbound(line, name))
    target = unique_e164()
    calls.livekit.transfer_outcomes[f"tel:{target}"] = "busy"
    result = await handle.execute_update(CallWorkflow.transfer, TransferRequest(target))
    assert not result.ok and result.state is S.ACTIVE, result
    await handle.signal(CallWorkflow.hangup_received, HangupEvent(reason=EndReason.COMPLETED, by="caller"))
    view = await handle.result()
    assert (view.state, view.end_reason) == (S.ENDED, EndReason.COMPLETED), view
    return handle


async def ringing_timeout(calls: CallHarness, name: str) -> Handle:
    """Nobody answers within the space's ringing timeout (5 s): ENDED/no-answer."""
    line = await calls.new_line(call_settings={"ringing_timeout_seconds": 5})
    handle = await calls.start(inbound(line, name))
    view = await handle.result()
    assert (view.state, view.end_reason) == (S.ENDED, EndReason.NO_ANSWER), view
    return handle


async def outbound_answered(calls: CallHarness, name: str) -> Handle:
    """Outbound call dialed through the number's trunk and answered; the callee hangs up."""
    line = await calls.with_trunk(await calls.new_line())
    handle = await calls.start(outbound(line, name))
    await until(handle, dispatched)
    await handle.signal(CallWorkflow.active, ActiveEvent(agent_identity="agent-1"))
    await until(handle, lambda v: v.state is S.ACTIVE)
    await handle.signal(CallWorkflow.hangup_received, HangupEvent(reason=EndReason.COMPLETED, by="callee"))
    view = await handle.result()
    assert (view.state, view.end_reason) == (S.ENDED, EndReason.COMPLETED), view
    return handle


async def outbound_voicemail_left(calls: CallHarness, name: str) -> Handle:
    """Outbound call with AMD (leave a message): answered, the audio detector reports a machine, the message is
    left and the call ends (``report_answered_by``, then ``voicemail_left``)."""
    line = await calls.with_trunk(await calls.new_line())
    start = replace(outbound(line, name), amd=AmdOptions(MachinePolicy.LEAVE_MESSAGE, "Please call us back."))
    handle = await calls.start(start)
    await until(handle, dispatched)
    await handle.execute_update(CallWorkflow.report_answered_by, AnsweredByReport(AnsweredBy.MACHINE, 2900, "audio"))
    await handle.signal(CallWorkflow.active, ActiveEvent(agent_identity="agent-1"))
    await until(handle, lambda v: v.state is S.ACTIVE)
    await handle.execute_update(CallWorkflow.voicemail_left, VoicemailLeft(message_ms=2400, after_beep=True))
    view = await handle.result()
    assert view.voicemail_left and view.answered_by is AnsweredBy.MACHINE, view
    return handle


async def rejected_disabled_number(calls: CallHarness, name: str) -> Handle:
    """A call to a disabled number: routed, rejected, recorded as ENDED/rejected."""
    line = await calls.new_line(enabled=False)
    handle = await calls.start(inbound(line, name))
    view = await handle.result()
    assert (view.state, view.end_reason) == (S.ENDED, EndReason.REJECTED), view
    return handle


async def consent_recording_hold(calls: CallHarness, name: str) -> Handle:
    """A space that requires consent, a recorded number: the agent's consent report starts the egress; a hold
    pauses the recording (the caller muted in the room) and resume resumes it; staff hang up; the egress result
    arrives as its webhook would and is registered."""
    line = await calls.new_line()
    async with calls.sessions() as db:
        space, number = await db.get(Space, line.space_id), await db.get(PhoneNumber, line.number_id)
        assert space is not None and number is not None
        space.recording_consent, number.recording_policy = RecordingConsent.REQUIRE, RecordingPolicy.ALWAYS
        await db.commit()
    handle = await answer(calls, inbound(line, name))
    recorded = await handle.execute_update(
        CallWorkflow.report_recording_consent, ConsentReport(ConsentOutcome.GIVEN, "dtmf")
    )
    assert recorded.record, recorded
    await handle.execute_update(CallWorkflow.hold, HoldRequest(by="staff-1"))
    await handle.execute_update(CallWorkflow.resume, ResumeRequest(by="staff-1"))
    await handle.execute_update(CallWorkflow.hangup, HangupRequest(by="staff-1"))
    stopped = await until(handle, lambda v: any(e.event == "recording_stopped" for e in v.timeline))
    [egress_id] = [e.detail for e in stopped.timeline if e.event == "recording_started"]
    assert egress_id is not None
    location = f"s3://bucket/spaces/{line.space_id}/recordings/{stopped.call_id}.ogg"
    await handle.signal(CallWorkflow.recording_update, RecordingUpdate(egress_id, "complete", location))
    view = await handle.result()
    assert (view.state, view.end_reason) == (S.ENDED, EndReason.COMPLETED), view
    events = [e.event for e in view.timeline]
    assert "recording_consent" in events and "recording_paused" in events and "recording_registered" in events
    return handle


async def recording_ended_before_stop(calls: CallHarness, name: str) -> Handle:
    """A recorded number; the caller hangs up and LiveKit's ``egress_ended`` (complete) reaches the workflow
    before StopEgress answers: the recording stays complete and is registered (patch egress-ended-before-stop)."""
    line = await calls.new_line()
    async with calls.sessions() as db:
        number = await db.get(PhoneNumber, line.number_id)
        assert number is not None
        number.recording_policy = RecordingPolicy.ALWAYS
        await db.commit()
    handle = await answer(calls, inbound(line, name))
    started = await until(handle, lambda v: v.recording_status == "recording")
    [egress_id] = [e.detail for e in started.timeline if e.event == "recording_started"]
    assert egress_id is not None
    location = f"s3://bucket/spaces/{line.space_id}/recordings/{started.call_id}.ogg"

    async def webhook_first(_: EgressInfo) -> None:
        await handle.signal(CallWorkflow.recording_update, RecordingUpdate(egress_id, "complete", location))

    calls.livekit.before_stop_egress_answers = webhook_first
    try:
        await handle.execute_update(CallWorkflow.hangup, HangupRequest(by="staff-1"))
        view = await handle.result()
    finally:
        calls.livekit.before_stop_egress_answers = None
    assert (view.state, view.recording_status) == (S.ENDED, "complete"), view
    events = [e.event for e in view.timeline]
    assert "recording_registered" in events and "recording_unconfirmed" not in events, events
    return handle


Scenario = Callable[[CallHarness, str], Awaitable[Handle]]
SCENARIOS: dict[str, Scenario] = {
    "inbound_hold_dtmf_hangup": inbound_hold_dtmf_hangup,
    "failed_cold_transfer": failed_cold_transfer,
    "ringing_timeout": ringing_timeout,
    "outbound_answered": outbound_answered,
    "rejected_disabled_number": rejected_disabled_number,
    "consent_recording_hold": consent_recording_hold,
    "outbound_voicemail_left": outbound_voicemail_left,
    "recording_ended_before_stop": recording_ended_before_stop,
}


# ------------------------------------------------------------------------------------------ running
async def record(names: list[str], out_dir: Path = HISTORIES) -> list[Path]:
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    written: list[Path] = []
    env = await start_dev_server()
    try:
        with tempfile.TemporaryDirectory(prefix="record-histories-") as tmp:
            tmp_dir = Path(tmp)
            url = f"sqlite+aiosqlite:///{tmp_dir / 'telephony.db'}"
            await asyncio.to_thread(migrate, url)
            async with LiveKitStandIn() as standin:
                settings = Settings(
                    data_dir=tmp_dir,
                    database_url=url,
                    secret_keys=SECRET_KEY,
                    task_queue=f"record-{uuid.uuid4().hex[:8]}",
                    livekit_url=standin.url,
                    livekit_api_key=standin.api_key,
                    livekit_api_secret=standin.api_secret,
                )
                engine = create_engine(url)
                lk_api = lk.LiveKitAPI(standin.url, standin.api_key, standin.api_secret)
                try:
                    async with activity_clients(settings) as clients, build_worker(env.client, settings, clients):
                        calls = CallHarness(env.client, settings.task_queue, session_factory(engine), standin, lk_api)
                        for name in names:
                            written.append(await _record_one(env.client, calls, name, out_dir))
                finally:
                    await lk_api.aclose()
                    await engine.dispose()
    finally:
        await env.shutdown()
    return written


async def _record_one(client: Client, calls: CallHarness, name: str, out_dir: Path) -> Path:
    handle = await SCENARIOS[name](calls, name)
    history = await client.get_workflow_handle(handle.id).fetch_history()
    path = out_dir / f"{name}.json"
    path.write_text(history.to_json() + "\n")
    print(f"{path}: {len(history.events)} events", flush=True)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.workflows.record_histories", description=__doc__.split("\n")[0]
    )
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO", help=f"default: all of {', '.join(SCENARIOS)}")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    asyncio.run(record(list(args.scenarios) or list(SCENARIOS)))
    # Skip interpreter finalisation: the Temporal SDK sometimes aborts there (exit code 134).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
