"""``telephony voice``: a livekit-agents worker. The CallWorkflow dispatches its agent into the call's room;
the job builds the space's agent for that call and talks to the SIP caller.

SIP DTMF from the caller goes to the workflow; DTMF the workflow asks for (data packets on ``DTMF_TOPIC``) is
played into the call with ``publish_dtmf``. A job dispatched in flow mode plays the call's flow instead
(``voice/livekit_flow.py``), served by a Temporal worker this job process starts on its own queue.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine
from typing import Any

from livekit import rtc
from livekit.agents import AgentServer, AgentSession, JobContext, JobProcess

from models import calls as c
from models.call_contract import DispatchMetadata
from models.settings import Settings
from models.sip_headers import DTMF_TOPIC
from voice.agent import PreparedCall, default_greeting
from voice.amd.listener import AmdListener, listen_to
from voice.amd.message_audio import message_audio_of
from voice.call_setup import answer_call
from voice.livekit_audio import room_output
from voice.livekit_flow import CALLER_RATE, RoomFlowCall, flow_media_worker
from voice.recording_consent import consent_gate
from voice.runtime import END_OF_SPEECH_SILENCE, VoiceRuntime, one_blas_thread
from voice.speech import build_stt, build_tts, load_vad

log = logging.getLogger(__name__)
AMD_RATE = 16000  # room audio for answering-machine detection (silero runs at 8 or 16 kHz)

# RFC 4733 event codes of the DTMF keys, as publish_dtmf wants them.
DTMF_CODES = {**{str(d): d for d in range(10)}, "*": 10, "#": 11, "A": 12, "B": 13, "C": 14, "D": 15}


def dtmf_codes(digits: str) -> list[tuple[int, str]]:
    """(code, key) for each key of ``digits``; 'w' (a half-second pause) is kept as code -1."""
    return [
        (DTMF_CODES[key], key) if key in DTMF_CODES else (-1, key) for key in digits if key in DTMF_CODES or key == "w"
    ]


async def play_dtmf(participant: rtc.LocalParticipant, digits: str) -> None:
    for code, key in dtmf_codes(digits):
        if code < 0:
            await asyncio.sleep(0.5)
            continue
        await participant.publish_dtmf(code=code, digit=key)
        await asyncio.sleep(0.1)  # keys need a gap between them to be heard as separate presses


def _prewarm(proc: JobProcess) -> None:
    # Each job process loads the models once, before it takes calls.
    one_blas_thread()
    load_vad(min_silence_duration=END_OF_SPEECH_SILENCE)
    for engine in (build_stt("local-whisper"), build_tts("local-hibari")):
        engine.prewarm()


async def _runtime(proc: JobProcess, settings: Settings) -> VoiceRuntime:
    """The job process's runtime (database, Temporal, secrets), built by its first job and kept for the next."""
    runtime = proc.userdata.get("runtime")
    if not isinstance(runtime, VoiceRuntime):
        runtime = proc.userdata["runtime"] = await VoiceRuntime.connect(settings)
    return runtime


def _serve_flows(proc: JobProcess, runtime: VoiceRuntime) -> None:
    """Start this process's flow worker once (it outlives the job: the process may take more jobs)."""
    if isinstance(proc.userdata.get("flow_worker"), asyncio.Task):
        return
    worker = flow_media_worker(runtime)
    proc.userdata["flow_worker"] = asyncio.create_task(worker.run())
    log.info("flow media served", extra={"task_queue": runtime.media_queue})


async def play_room_flow(ctx: JobContext, runtime: VoiceRuntime, dispatch: DispatchMetadata) -> None:
    """A flow-mode job: the flow's prompts on a track of ours, the caller's audio and keys into its FlowCall."""
    _serve_flows(ctx.proc, runtime)
    caller = await ctx.wait_for_participant(kind=rtc.ParticipantKind.PARTICIPANT_KIND_SIP)
    output, track = room_output()
    options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    await ctx.room.local_participant.publish_track(track, options)
    job = RoomFlowCall(
        runtime,
        dispatch,
        identity=ctx.room.local_participant.identity,
        output=output,
        job_id=ctx.job.id,
        caller_identity=caller.identity,
    )
    ctx.room.on("sip_dtmf_received", lambda event: job.dtmf(event.digit))
    audio = rtc.AudioStream.from_participant(
        participant=caller, track_source=rtc.TrackSource.SOURCE_MICROPHONE, sample_rate=CALLER_RATE, num_channels=1
    )
    listening = asyncio.ensure_future(job.listen(audio))

    async def cleanup(reason: str) -> None:
        listening.cancel()
        await audio.aclose()
        await job.aclose()

    ctx.add_shutdown_callback(cleanup)
    await job.start()


async def answer_room_call(ctx: JobContext, settings: Settings) -> None:
    """One dispatched job: the call's agent (or its flow) in the call's room until the caller leaves."""
    dispatch = DispatchMetadata.decode(ctx.job.metadata)
    runtime = await _runtime(ctx.proc, settings)
    await ctx.connect()
    background: set[asyncio.Task[object]] = set()

    def run(work: Coroutine[Any, Any, object]) -> None:
        task = asyncio.ensure_future(work)
        background.add(task)
        task.add_done_callback(background.discard)

    @ctx.room.on("data_received")
    def on_data(packet: rtc.DataPacket) -> None:
        if packet.topic != DTMF_TOPIC:
            return
        try:
            digits = str(json.loads(packet.data)["digits"])
        except (ValueError, KeyError, TypeError):
            log.warning("malformed DTMF request ignored", extra={"room": ctx.room.name})
            return
        run(play_dtmf(ctx.room.local_participant, digits))

    if dispatch.flow:
        await play_room_flow(ctx, runtime, dispatch)
        return
    caller = await ctx.wait_for_participant(kind=rtc.ParticipantKind.PARTICIPANT_KIND_SIP)
    call = runtime.calls.trusted(dispatch.workflow_id)
    consent = await consent_gate(call)

    @ctx.room.on("sip_dtmf_received")
    def on_dtmf(event: rtc.SipDTMF) -> None:
        if consent is not None:
            consent.digit(event.digit)
        run(call.dtmf_received(c.DtmfEvent(digits=event.digit, participant_identity=caller.identity)))

    amd = dispatch.amd if not dispatch.resumed else None
    listener = None
    if amd is not None:
        recorded = message_audio_of(runtime.sessions, runtime.store, dispatch.space_id)
        listener = AmdListener(call, amd, sample_rate=AMD_RATE, message_audio=recorded)
    if listener is not None:  # the callee's first seconds go to the detector, not the agent
        audio = rtc.AudioStream.from_participant(
            participant=caller, track_source=rtc.TrackSource.SOURCE_MICROPHONE, sample_rate=AMD_RATE, num_channels=1
        )

        async def listen() -> None:
            try:
                await listen_to(audio, listener)
            finally:
                await audio.aclose()

        run(listen())

    def hold_greeting(session: AgentSession, prepared: PreparedCall) -> None:
        prepared.agent.greet = False

    answered = await answer_call(
        runtime,
        dispatch,
        agent_identity=ctx.room.local_participant.identity,
        room=ctx.room,
        resumed=dispatch.resumed,
        consent=consent,
        before_start=hold_greeting if listener is not None else None,
    )
    if listener is not None:
        session, greeting = answered.session, default_greeting(answered.prepared.config)
        session.input.set_audio_enabled(False)
        listener.on_release = lambda: session.input.set_audio_enabled(True)
        run(listener.run(session, lambda: session.say(greeting)))

    async def cleanup(reason: str) -> None:
        await answered.transcripts.aclose()

    ctx.add_shutdown_callback(cleanup)


def build_server(settings: Settings) -> AgentServer:
    if not settings.livekit_configured:
        raise RuntimeError("telephony voice needs TELEPHONY_LIVEKIT_URL, _API_KEY and _API_SECRET")
    assert settings.livekit_api_secret is not None
    server = AgentServer(
        ws_url=settings.livekit_url,
        api_key=settings.livekit_api_key,
        api_secret=settings.livekit_api_secret.get_secret_value(),
        host="127.0.0.1",
        setup_fnc=_prewarm,
    )

    server.rtc_session(agent_name=settings.livekit_agent_name)(entrypoint)
    return server


async def entrypoint(ctx: JobContext) -> None:
    # Module level, settings from the environment: job processes import this function by name.
    await answer_room_call(ctx, Settings())
