"""A LiveKit call's flow, played by the job its workflow dispatched into the room in flow mode.

The job attaches itself to the call's workflow (``attach_media``, transport ``livekit-room``) naming its process's
own task queue, where a Temporal worker serves the flow's media activities (``activities/flow_media.py``) against
the ``FlowCall`` registered here. The caller's room audio and SIP DTMF go into the ``FlowCall`` (keys also to the
workflow, as on any call); prompts go out on the job's published track (``voice/livekit_audio.py``). When the flow
hands over, the agent answers on the same audio in and out, with the flow's variables.

If the job's participant leaves mid-flow, the workflow dispatches a new flow-mode job; it attaches the same way and
the flow goes on at its step. A job that attaches after the flow handed over answers with the (resumed) agent."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterable, Coroutine
from typing import Any

import numpy as np
from livekit import rtc
from temporalio.worker import Worker

from activities.flow_media import FlowMediaActivities
from activities.recording_assets import RecordingAssetActivities
from models import calls as c
from models.call_contract import DispatchMetadata
from models.flow_calls import StartFlowAgent
from voice.call_setup import AnsweredCall, answer_call
from voice.caller_audio import CallerAudioInput
from voice.flow_audio import PromptAudio
from voice.flow_call import FlowCall
from voice.livekit_audio import RoomAudioOutput
from voice.recording_consent import ConsentGate, consent_gate
from voice.runtime import VoiceRuntime

log = logging.getLogger(__name__)
CALLER_RATE = 16000  # the caller's room audio, as the job subscribes to it


def flow_task_queue(base: str) -> str:
    """A job process's own queue (a flow's prompts must reach the process whose job is in the call's room)."""
    return f"{base}-livekit-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def flow_media_worker(runtime: VoiceRuntime) -> Worker:
    """The Temporal worker serving the flows of this process's jobs on ``runtime.media_queue`` (set here if unset):
    prompts, voicemail (stored from here: the file is on this disk) and the hand-off to the agent."""
    if not runtime.media_queue:
        runtime.media_queue = flow_task_queue(runtime.calls.task_queue)
    runtime.prompt_audio = runtime.prompt_audio or PromptAudio(runtime.sessions, runtime.store)
    flows = FlowMediaActivities(runtime.flows)
    recordings = RecordingAssetActivities(runtime.sessions, runtime.store)
    return Worker(
        runtime.calls.temporal,
        task_queue=runtime.media_queue,
        activities=[flows.play_prompt, flows.start_agent, flows.record_voicemail, recordings.store_recording],
        max_concurrent_activities=100,
    )


class RoomFlowCall:
    """One flow-mode job's call: fed by the room (caller audio frames, SIP DTMF), speaking on ``output``."""

    def __init__(
        self,
        runtime: VoiceRuntime,
        dispatch: DispatchMetadata,
        *,
        identity: str,
        output: RoomAudioOutput,
        job_id: str,
        caller_identity: str | None = None,
    ) -> None:
        """``identity``: the job's participant in the room; ``job_id``: LiveKit's id of this job (a new one per
        dispatch, so each job attaches as a stream of its own)."""
        self._runtime = runtime
        self._caller_identity = caller_identity
        self._dispatch = dispatch
        self._identity = identity
        self._output = output
        self.stream_id = f"livekit:{dispatch.call_id}:{job_id}"
        self._call = runtime.calls.trusted(dispatch.workflow_id)
        self._input = CallerAudioInput("livekit-flow-caller", CALLER_RATE)
        self._flow: FlowCall | None = None
        self._attached: c.MediaAttached | None = None
        self._answered: AnsweredCall | None = None
        self._consent: ConsentGate | None = None  # the recording announcement/consent the agent asks at hand-over
        self._utterances = 0
        self._tasks: set[asyncio.Future[object]] = set()

    async def start(self) -> c.MediaAttached:
        """Attach to the call's workflow; the flow's prompts reach this job from now on (or the agent answers, if the
        flow had already handed over)."""
        runtime = self._runtime
        flow = FlowCall(
            self._output,
            rate=CALLER_RATE,
            report_speech=self._heard,
            answer=self._hand_over,
            voicemail_path=runtime.recordings_dir / f"voicemail-{self.stream_id.replace(':', '-')}.wav",
            audio=runtime.prompt_audio,
        )
        # Listed before attaching: the flow's first prompt may reach this process before the update answers.
        runtime.flows[self.stream_id] = self._flow = flow
        request = c.AttachMedia(
            self.stream_id, runtime.media_queue, c.LIVEKIT_FLOW_TRANSPORT, participant_identity=self._identity
        )
        try:
            self._attached = attached = await self._call.attach_media(request)
        except BaseException:
            runtime.flows.pop(self.stream_id, None)
            raise
        if not attached.flow:  # the flow handed over before this job came: the agent picks the call up
            runtime.flows.pop(self.stream_id, None)
            self._flow = None
            await self._answer(attached.agent_id, resumed=True, variables=None)
        log.info("flow job attached", extra={"call_id": attached.call_id, "resumed": attached.resumed})
        return attached

    # ------------------------------------------------------------------------ from the room
    async def listen(self, frames: AsyncIterable[rtc.AudioFrameEvent]) -> None:
        """The caller's room audio (16 kHz mono, as ``rtc.AudioStream`` yields it), until the track ends."""
        async for event in frames:
            frame = event.frame
            flow = self._flow
            if flow is not None and not flow.handed_off:
                flow.audio(np.frombuffer(bytes(frame.data), dtype=np.int16))
            else:
                self._input.push_pcm(bytes(frame.data))

    def dtmf(self, digit: str) -> None:
        """A SIP key from the caller: a prompt waiting for input stops at once, and the workflow hears of it."""
        if self._flow is not None:
            self._flow.key(digit)
        if self._consent is not None:
            self._consent.digit(digit)
        event = c.DtmfEvent(digits=digit, participant_identity=self._caller_identity)
        self._spawn(self._call.dtmf_received(event))

    # ------------------------------------------------------------------------ the flow
    async def _heard(self, text: str) -> None:
        self._utterances += 1
        event_id = f"{self.stream_id}:said:{self._utterances}"
        await self._call.speech_received(c.SpeechEvent(text, event_id=event_id))

    async def _hand_over(self, request: StartFlowAgent) -> None:
        await self._answer(request.agent_id, resumed=False, variables=request.variables)

    async def _answer(self, agent_id: str, *, resumed: bool, variables: dict[str, str] | None) -> None:
        attached = self._attached
        assert attached is not None
        dispatch = DispatchMetadata(
            attached.workflow_id, attached.call_id, attached.space_id, agent_id, attached.conversation_id
        )
        # The egress waits for the space's consent, which the agent asks before its greeting (as on agent calls).
        self._consent = await consent_gate(self._call)
        self._answered = await answer_call(
            self._runtime,
            dispatch,
            agent_identity=self._identity,
            audio_in=self._input,
            audio_out=self._output,
            resumed=resumed,
            consent=self._consent,
            variables=variables,
        )

    def _spawn(self, work: Coroutine[Any, Any, object]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """The job ends (the caller left, the room was deleted): a message being recorded is kept."""
        if self._flow is not None:
            self._flow.close()
        self._runtime.flows.pop(self.stream_id, None)
        self._input.close()
        if self._answered is not None:
            await self._answered.aclose()
        await self._output.aclose()
