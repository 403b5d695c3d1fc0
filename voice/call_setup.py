"""One call set-up for every transport (carrier media streams, LiveKit rooms): the agent prepared from the
dispatch, an ``AgentSession`` on the process's warm speech models, transcripts to the conversation, and the
call marked ACTIVE the first time the agent speaks. Transports differ only in where the audio comes from."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from livekit import rtc
from livekit.agents import AgentSession
from livekit.agents.types import NOT_GIVEN
from livekit.agents.voice import io

from models.call_contract import DispatchMetadata
from voice.agent import PreparedCall, mark_active_on_first_speech, prepare_call
from voice.agent_transcripts import TranscriptRecorder, record_transcripts
from voice.recording_consent import ConsentGate
from voice.runtime import END_OF_SPEECH_SILENCE, VoiceRuntime
from voice.speech import build_stt, build_tts, load_vad
from voice.speech.vad import CallVAD

log = logging.getLogger(__name__)


def agent_session(
    prepared: PreparedCall,
    *,
    resumable_interruptions: bool,
    speculative_reply: bool = True,
    interim_transcripts: bool = False,
) -> AgentSession:
    """The session for one call: local VAD turns (no cloud turn detector), the agent's STT/TTS/LLM.

    ``resumable_interruptions``: False where the transport cannot pause playback, only clear it (carrier media
    streams): an interruption is then final.
    ``speculative_reply``: livekit's preemptive generation, TTS included. The STT sends a preflight transcript
    when the caller pauses (``voice.speech.whisper_stt``); the reply's LLM and first audio are made while the VAD
    waits out the rest of ``END_OF_SPEECH_SILENCE``, and the session plays them only if the turn ends on an
    equivalent transcript (the caller going on discards them).
    ``interim_transcripts``: transcribe while the caller speaks, for a page showing their words as they come (the
    console). A phone call has no reader: its Whisper runs only at the caller's pauses, which is what the reply
    waits for anyway, so turns are answered sooner and a media process carries more calls."""
    config = prepared.config
    vad = CallVAD(load_vad(min_silence_duration=END_OF_SPEECH_SILENCE))  # one silero stream for turns and STT
    return AgentSession(
        # one notion of "the caller stopped" for turns and STT
        stt=build_stt(config.stt_provider, vad, interim_results=interim_transcripts),
        tts=build_tts(config.tts_provider, config.voice),
        vad=vad,
        llm=prepared.llm,
        turn_handling={
            "turn_detection": "vad",
            "endpointing": {"min_delay": 0.0, "max_delay": 2.0},
            "interruption": {"mode": "vad", "min_duration": 0.3, "resume_false_interruption": resumable_interruptions},
            "preemptive_generation": {"enabled": speculative_reply, "preemptive_tts": speculative_reply},
        },
    )


@dataclass
class AnsweredCall:
    prepared: PreparedCall
    session: AgentSession
    transcripts: TranscriptRecorder

    async def aclose(self) -> None:
        """Stop the agent and store the last transcript lines."""
        await self.session.aclose()
        await self.transcripts.aclose()


async def answer_call(
    runtime: VoiceRuntime,
    dispatch: DispatchMetadata,
    *,
    agent_identity: str,
    audio_in: io.AudioInput | None = None,
    audio_out: io.AudioOutput | None = None,
    room: rtc.Room | None = None,
    resumable_interruptions: bool = True,
    before_start: Callable[[AgentSession, PreparedCall], None] | None = None,
    resumed: bool = False,
    consent: ConsentGate | None = None,
    variables: dict[str, str] | None = None,
    interim_transcripts: bool = False,
) -> AnsweredCall:
    """Answer the call ``dispatch`` names with its space's agent, over a room or the given audio I/O.
    ``resumed``: the call's previous agent process died; this one picks up with the conversation so far.
    ``consent``: the recording announcement (and consent question) the agent plays before its greeting.
    ``variables``: what a flow gathered before it handed the call to the agent.
    ``interim_transcripts``: the caller's words while they speak, for a page that shows them (see agent_session)."""
    prepared = await prepare_call(
        dispatch, runtime, agent_identity=agent_identity, resumed=resumed, variables=variables
    )
    prepared.agent.consent = consent
    session = agent_session(
        prepared,
        resumable_interruptions=resumable_interruptions,
        speculative_reply=runtime.settings.voice_speculative_reply,
        interim_transcripts=interim_transcripts,
    )
    if audio_in is not None:
        session.input.audio = audio_in
    if audio_out is not None:
        session.output.audio = audio_out
    transcripts = record_transcripts(session, prepared.transcripts)
    mark_active_on_first_speech(session, prepared.control)
    if before_start is not None:
        before_start(session, prepared)
    await session.start(prepared.agent, room=room if room is not None else NOT_GIVEN)
    log.info("call answered", extra={"call_id": dispatch.call_id, "agent_id": dispatch.agent_id})
    return AnsweredCall(prepared, session, transcripts)
