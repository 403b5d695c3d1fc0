"""``telephony voice``: a livekit-agents worker. The CallWorkflow dispatches its agent into the call's room;
the job builds the space's agent for that call and talks to the SIP caller.

SIP DTMF from the caller goes to the workflow; DTMF the workflow asks for (data packets on ``DTMF_TOPIC``) is
played into the call with ``publish_dtmf``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine
from typing import Any

from livekit import rtc
from livekit.agents import AgentServer, AgentSession, JobContext, JobProcess
from temporalio.client import Client

from models import calls as c
from models.db import create_engine, session_factory
from models.secret_box import SecretBox
from models.settings import Settings
from models.sip_headers import DTMF_TOPIC, WORKFLOW_ID_ATTRIBUTE
from voice.agent import mark_active_on_first_speech, prepare_call
from voice.agent_config import DispatchInfo
from voice.agent_transcripts import record_transcripts
from voice.runtime import END_OF_SPEECH_SILENCE
from voice.speech import build_stt, build_tts, load_vad

log = logging.getLogger(__name__)

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
    proc.userdata["vad"] = load_vad(min_silence_duration=END_OF_SPEECH_SILENCE)
    for engine in (build_stt("local-whisper"), build_tts("local-hibari")):
        engine.prewarm()


async def answer_call(ctx: JobContext, settings: Settings) -> None:
    """One dispatched job: the call's agent in the call's room until the caller leaves."""
    dispatch = DispatchInfo.from_metadata(ctx.job.metadata)
    engine = create_engine(settings.resolved_database_url)
    sessions = session_factory(engine)
    box = SecretBox.from_setting(
        settings.secret_keys.get_secret_value() if settings.secret_keys else None, settings.data_dir
    )
    temporal = await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
    await ctx.connect()
    caller = await ctx.wait_for_participant(kind=rtc.ParticipantKind.PARTICIPANT_KIND_SIP)
    prepared = await prepare_call(
        dispatch,
        sessions=sessions,
        temporal=temporal,
        secret_box=box,
        workflow_id=caller.attributes.get(WORKFLOW_ID_ATTRIBUTE) or None,
        agent_identity=ctx.room.local_participant.identity,
    )
    config = prepared.config
    vad = ctx.proc.userdata.get("vad") or load_vad(min_silence_duration=END_OF_SPEECH_SILENCE)
    session: AgentSession = AgentSession(
        stt=build_stt(config.stt_provider, vad),  # one notion of "the caller stopped" for turns and STT
        tts=build_tts(config.tts_provider, config.voice),
        vad=vad,
        llm=prepared.llm,
        turn_handling={
            "turn_detection": "vad",  # local only: no cloud turn detector
            "endpointing": {"min_delay": 0.0, "max_delay": 2.0},
            "interruption": {"mode": "vad", "min_duration": 0.3},
        },
    )
    handle = prepared.control.handle
    background: set[asyncio.Task[None]] = set()

    def run(work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        background.add(task)
        task.add_done_callback(background.discard)

    @ctx.room.on("sip_dtmf_received")
    def on_dtmf(event: rtc.SipDTMF) -> None:
        run(
            handle.signal(c.SIGNAL_DTMF_RECEIVED, c.DtmfEvent(digits=event.digit, participant_identity=caller.identity))
        )

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

    recorder = record_transcripts(session, prepared.transcripts)
    mark_active_on_first_speech(session, prepared.control)

    async def cleanup(reason: str) -> None:
        await recorder.aclose()
        await engine.dispose()

    ctx.add_shutdown_callback(cleanup)
    await session.start(agent=prepared.agent, room=ctx.room)


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
    await answer_call(ctx, Settings())
