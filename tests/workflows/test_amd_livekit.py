"""AMD on LiveKit-carried outbound calls: the workflow puts the call's AMD options in the agent's dispatch (what
``voice.livekit_worker`` reads), and the listener the worker runs over the callee's room audio (16 kHz
``rtc.AudioFrameEvent`` s, as ``rtc.AudioStream`` yields them) decides and acts through the real workflow."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import numpy as np
from livekit import rtc
from livekit.agents import AgentSession
from temporalio.client import WorkflowHandle

from models.call_contract import DispatchMetadata
from models.calls import AmdOptions, CallStateView
from models.enums import AnsweredBy, CallState, MachinePolicy
from tests.conftest import unique_e164
from tests.support.amd_corpus import HUMAN_GREETINGS, VOICEMAIL_GREETINGS, at_rate, human_case, voicemail_case
from tests.workflows.conftest import CallHarness, wait_for
from tests.workflows.test_call_workflow import events
from tests.workflows.test_outbound_calls import outbound
from voice.amd.listener import AmdListener, listen_to

RATE = 16000


async def room_audio(pcm: np.ndarray) -> AsyncIterator[rtc.AudioFrameEvent]:
    """The callee's track as the agent's room subscription delivers it: 10 ms mono frames."""
    step = RATE // 100
    for i in range(0, len(pcm) - step, step):
        chunk = pcm[i : i + step].astype(np.int16)
        yield rtc.AudioFrameEvent(rtc.AudioFrame(chunk.tobytes(), RATE, 1, len(chunk)))
        await asyncio.sleep(0)


async def dialed(calls: CallHarness, amd: AmdOptions) -> tuple[WorkflowHandle[Any, CallStateView], DispatchMetadata]:
    line = await calls.with_trunk(await calls.new_line())
    handle = await calls.start(replace(outbound(line, unique_e164()), amd=amd, agent_id=line.agent_id))
    view = await wait_for(handle, lambda v: "agent_dispatched" in events(v))
    [dispatch] = [d for d in calls.livekit.calls("CreateDispatch") if d.room == view.room_name]
    return handle, DispatchMetadata.decode(dispatch.metadata)


async def test_the_dispatch_carries_the_amd_options(calls: CallHarness) -> None:
    _, metadata = await dialed(calls, AmdOptions(MachinePolicy.LEAVE_MESSAGE, "Please call us back."))
    assert metadata.amd == AmdOptions(MachinePolicy.LEAVE_MESSAGE, "Please call us back.")
    plain = DispatchMetadata("call-sp_a-CA1", "call_1", "sp_a", "ag_1")
    assert DispatchMetadata.decode(plain.encode()).amd is None


async def test_room_audio_of_a_machine_hangs_a_hangup_call_up(calls: CallHarness) -> None:
    handle, metadata = await dialed(calls, AmdOptions(MachinePolicy.HANGUP))
    assert metadata.amd is not None
    runtime = calls.voice_runtime(secret_box=None)
    listener = AmdListener(runtime.calls.trusted(metadata.workflow_id), metadata.amd, sample_rate=RATE)
    case = await asyncio.to_thread(voicemail_case, 0, VOICEMAIL_GREETINGS[0], 1000.0)
    greeted: list[bool] = []
    feeding = asyncio.create_task(listen_to(room_audio(at_rate(case.pcm, RATE)), listener))
    await listener.run(AgentSession(), lambda: greeted.append(True))
    feeding.cancel()
    view = await wait_for(handle, lambda v: v.state is CallState.ENDED)
    assert view.answered_by is AnsweredBy.MACHINE and "machine_hangup" in events(view)
    assert view.amd_decision_ms is not None and view.amd_decision_ms < case.greeting_end_ms
    assert not greeted and listener.outcome == "ended"


async def test_room_audio_of_a_person_lets_the_agent_greet(calls: CallHarness) -> None:
    handle, metadata = await dialed(calls, AmdOptions(MachinePolicy.HANGUP))
    assert metadata.amd is not None
    runtime = calls.voice_runtime(secret_box=None)
    listener = AmdListener(runtime.calls.trusted(metadata.workflow_id), metadata.amd, sample_rate=RATE)
    released: list[bool] = []
    listener.on_release = lambda: released.append(True)
    case = await asyncio.to_thread(human_case, 0, HUMAN_GREETINGS[1])
    greeted: list[bool] = []
    feeding = asyncio.create_task(listen_to(room_audio(at_rate(case.pcm, RATE)), listener))
    await listener.run(AgentSession(), lambda: greeted.append(True))
    await asyncio.wait_for(feeding, timeout=10)  # the feed stops once the agent has the audio back
    view = await wait_for(handle, lambda v: v.answered_by is not None)
    assert view.answered_by is AnsweredBy.HUMAN and view.state is not CallState.ENDED
    assert greeted == [True] and released == [True] and not listener.listening
    detail = next(e.detail for e in view.timeline if e.event == "answered_by")
    assert detail is not None and "audio" in detail


async def test_a_machine_with_no_message_to_leave_is_hung_up(calls: CallHarness) -> None:
    handle, metadata = await dialed(calls, AmdOptions(MachinePolicy.LEAVE_MESSAGE, None))
    assert metadata.amd is not None
    runtime = calls.voice_runtime(secret_box=None)
    listener = AmdListener(runtime.calls.trusted(metadata.workflow_id), metadata.amd, sample_rate=RATE)
    case = await asyncio.to_thread(voicemail_case, 1, VOICEMAIL_GREETINGS[1], 1400.0)
    feeding = asyncio.create_task(listen_to(room_audio(at_rate(case.pcm, RATE)), listener))
    await listener.run(AgentSession(), lambda: None)
    feeding.cancel()
    view = await wait_for(handle, lambda v: v.state is CallState.ENDED)
    assert view.answered_by is AnsweredBy.MACHINE and not view.voicemail_left
    assert [(e.event, e.detail) for e in view.timeline][-1] == ("hangup", "amd")
