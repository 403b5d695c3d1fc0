"""One Twilio media stream, from ``start`` to ``stop``: the caller's audio into an ``AgentSession`` running the
space's agent, its speech back out, DTMF and hang-up to the call's workflow.

The workflow stays the source of truth: the stream only reports what happened (media up, digits, hang-up) and
the agent's tools act through the workflow's updates.
"""

from __future__ import annotations

import asyncio
import logging
import time

from livekit.agents import AgentSession
from sqlalchemy import select
from temporalio.service import RPCError

from models import calls as c
from models.enums import CallState, CarrierProvider
from models.tables import CarrierAccount
from models.twilio_signature import signature_valid
from voice.agent import mark_active_on_first_speech, prepare_call
from voice.agent_config import DispatchInfo
from voice.agent_transcripts import TranscriptRecorder, record_transcripts
from voice.media_stream import protocol
from voice.media_stream.audio_io import Send, StreamAudioInput, StreamAudioOutput
from voice.media_stream.turns import TurnTimer
from voice.runtime import END_OF_SPEECH_SILENCE, VoiceRuntime
from voice.speech import build_stt, build_tts, load_vad

log = logging.getLogger(__name__)

ROUTING_WAIT = 5.0  # seconds the stream waits for the workflow to route the call to an agent


class StreamRejected(Exception):
    """The stream may not go on (bad signature, unknown call): closed with a policy violation."""


class MediaStreamCall:
    def __init__(self, runtime: VoiceRuntime, send: Send, *, url: str, signature: str | None) -> None:
        self._runtime = runtime
        self._send = send
        self._url = url
        self._signature = signature or ""
        self._stream_sid: str | None = None
        self._workflow_id: str | None = None
        self._input = StreamAudioInput()
        self._output: StreamAudioOutput | None = None
        self._session: AgentSession | None = None
        self._recorder: TranscriptRecorder | None = None
        self._turns: TurnTimer | None = None
        self._ended = False

    async def handle(
        self,
        message: protocol.Connected | protocol.Start | protocol.Media | protocol.Dtmf | protocol.Mark | protocol.Stop,
    ) -> bool:
        """Act on one message; False once the stream is over."""
        if isinstance(message, protocol.Connected):
            return True
        if isinstance(message, protocol.Start):
            if self._stream_sid is not None:
                raise protocol.ProtocolError("a second start on the same stream")
            await self._start(message)
            return True
        if self._stream_sid is None:
            raise protocol.ProtocolError(f"{message.event} before start")
        if message.stream_sid != self._stream_sid:
            raise protocol.ProtocolError("message for an unknown streamSid")
        if isinstance(message, protocol.Media):
            if message.media.track in ("inbound", "inbound_track"):
                self._input.push(message.media.audio())
        elif isinstance(message, protocol.Dtmf):
            event_id = f"{self._stream_sid}:{message.sequence_number}" if message.sequence_number else None
            await self._signal(c.SIGNAL_DTMF_RECEIVED, c.DtmfEvent(digits=message.dtmf.digit, event_id=event_id))
        elif isinstance(message, protocol.Mark):
            if self._output is not None:
                self._output.marked(message.mark.name)
        elif isinstance(message, protocol.Stop):
            self._ended = True
            await self._signal(c.SIGNAL_HANGUP_RECEIVED, c.HangupEvent(by="caller"))
            return False
        return True

    async def _start(self, start: protocol.Start) -> None:
        await self._verify(start.start.account_sid)
        workflow_id = start.start.custom_parameters.get("workflow_id")
        if not workflow_id:
            raise StreamRejected("start carries no workflow_id parameter")
        self._stream_sid, self._workflow_id = start.stream_sid, workflow_id
        view = await self._routed(workflow_id)
        if view.space_id is None or view.agent_id is None or view.state is CallState.ENDED:
            raise StreamRejected("the call has no agent to answer it")
        await self._signal(c.SIGNAL_CONNECTED, c.ConnectedEvent(participant_identity=f"stream:{start.stream_sid}"))
        dispatch = DispatchInfo(view.call_id, view.space_id, view.agent_id, view.conversation_id)
        runtime = self._runtime
        prepared = await prepare_call(
            dispatch,
            sessions=runtime.sessions,
            temporal=runtime.temporal,
            secret_box=runtime.secret_box,
            workflow_id=workflow_id,
            agent_identity="agent",
        )
        config = prepared.config
        self._output = StreamAudioOutput(start.stream_sid, self._send)
        vad = load_vad(min_silence_duration=END_OF_SPEECH_SILENCE)
        session: AgentSession = AgentSession(
            stt=build_stt(config.stt_provider, vad),  # one notion of "the caller stopped" for turns and STT
            tts=build_tts(config.tts_provider, config.voice),
            vad=vad,
            llm=prepared.llm,
            turn_handling={
                # Everything local: VAD decides turns (no cloud turn detector), no extra endpointing wait.
                "turn_detection": "vad",
                "endpointing": {"min_delay": 0.0, "max_delay": 2.0},
                # Twilio cannot pause playback, only clear it: an interruption is final.
                "interruption": {"mode": "vad", "min_duration": 0.3, "resume_false_interruption": False},
            },
        )
        session.input.audio = self._input
        session.output.audio = self._output
        self._session = session
        self._recorder = record_transcripts(session, prepared.transcripts)
        self._turns = TurnTimer(session, self._input, self._output, prepared.control)
        mark_active_on_first_speech(session, prepared.control)
        await session.start(prepared.agent)
        log.info("media stream answered", extra={"call_id": view.call_id, "stream_sid": start.stream_sid})

    async def _verify(self, account_sid: str) -> None:
        """Twilio signs the WebSocket URL with the account's auth token, like its webhooks."""
        runtime = self._runtime
        async with runtime.sessions() as session:
            accounts = await session.scalars(
                select(CarrierAccount).where(
                    CarrierAccount.provider == CarrierProvider.TWILIO, CarrierAccount.account_sid == account_sid
                )
            )
            tokens = [runtime.secret_box.decrypt(a.secret_encrypted) for a in accounts]
        if not any(signature_valid(token, self._url, [], self._signature) for token in tokens):
            raise StreamRejected("invalid X-Twilio-Signature")

    async def _routed(self, workflow_id: str) -> c.CallStateView:
        """The call once its workflow has routed it (the stream may start before routing finished)."""
        handle = self._runtime.temporal.get_workflow_handle(workflow_id)
        deadline = time.monotonic() + ROUTING_WAIT
        while True:
            try:
                view = await handle.query(c.QUERY_GET_STATE, result_type=c.CallStateView)
            except RPCError as exc:
                raise StreamRejected("no such call") from exc
            opened = view.agent_id and view.conversation_id  # routed, and its conversation open
            if opened or view.state is CallState.ENDED or time.monotonic() > deadline:
                return view
            await asyncio.sleep(0.05)

    async def _signal(self, name: str, arg: object) -> None:
        if self._workflow_id is None:
            return
        try:
            await self._runtime.temporal.get_workflow_handle(self._workflow_id).signal(name, arg)
        except RPCError:
            log.warning("call workflow unreachable from its media stream", extra={"workflow_id": self._workflow_id})

    async def close(self) -> None:
        """The socket is gone: stop the agent; a stream that never said ``stop`` still hangs the call up."""
        self._input.close()
        if not self._ended and self._stream_sid is not None:
            await self._signal(c.SIGNAL_HANGUP_RECEIVED, c.HangupEvent(by="caller"))
        if self._session is not None:
            await self._session.aclose()
        if self._recorder is not None:
            await self._recorder.aclose()
        if self._turns is not None:
            await self._turns.aclose()
        if self._output is not None:
            await self._output.aclose()
