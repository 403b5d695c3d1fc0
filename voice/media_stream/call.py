"""One Twilio media stream, from ``start`` to ``stop``: the caller's audio into an ``AgentSession`` running the
space's agent, its speech back out, DTMF and hang-up to the call's workflow.

The workflow stays the source of truth: the stream only reports what happened (media up, digits, hang-up) and
the agent's tools act through the workflow's updates.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from livekit.agents import AgentSession

from models import calls as c
from models.call_contract import (
    STREAM_TOKEN_PARAMETER,
    STREAM_WORKFLOW_PARAMETER,
    DispatchMetadata,
    space_of_workflow,
    stream_token_valid,
)
from models.flow_calls import StartFlowAgent
from models.twilio_signature import signing_account
from voice.agent import PreparedCall, default_greeting
from voice.amd.listener import AmdListener
from voice.amd.message_audio import message_audio_of
from voice.call_setup import AnsweredCall, answer_call
from voice.flow_call import FlowCall
from voice.media_stream import protocol
from voice.media_stream.audio_io import Send, StreamAudioInput, StreamAudioOutput
from voice.recording.live import LiveRecording
from voice.recording_consent import ConsentGate
from voice.runtime import VoiceRuntime
from voice.speech.audio import ulaw8k_to_pcm16
from voice.turns import TurnTimer
from workflows.call_client import CallActionError, CallRef

log = logging.getLogger(__name__)


class StreamRejected(Exception):
    """The stream may not go on (bad signature, unknown call): closed with a policy violation."""


class MediaStreamCall:
    """One stream; also the ``LiveStream`` its call's ``carry_media`` activity watches on this process."""

    def __init__(
        self,
        runtime: VoiceRuntime,
        send: Send,
        *,
        url: str,
        signature: str | None,
        hang_up: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._runtime = runtime
        self._send = send
        self._hang_up = hang_up
        self.ended = asyncio.Event()
        self.ended_by = "closed"
        self._recording: LiveRecording | None = None
        self._consent: ConsentGate | None = None
        self._on_hold = False
        self._url = url
        self._signature = signature or ""
        self._stream_sid: str | None = None
        self._call: CallRef | None = None
        self._input = StreamAudioInput()
        self._output: StreamAudioOutput | None = None
        self._answered: AnsweredCall | None = None
        self._attached: c.MediaAttached | None = None
        self._flow: FlowCall | None = None  # the call's flow (FlowStream), while it runs the call
        self._utterances = 0
        self._turns: TurnTimer | None = None
        self._ended = False
        self._amd: AmdListener | None = None  # outbound calls with AMD: the callee's first seconds go here
        self._amd_task: asyncio.Task[None] | None = None

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
        if self._stream_sid is None or self._call is None:
            raise protocol.ProtocolError(f"{message.event} before start")
        if message.stream_sid != self._stream_sid:
            raise protocol.ProtocolError("message for an unknown streamSid")
        if isinstance(message, protocol.Media):
            if message.media.track in ("inbound", "inbound_track"):
                audio = message.media.audio()
                pcm = ulaw8k_to_pcm16(audio)
                amd_heard = self._amd is not None and self._amd.hears(pcm)
                flow_menu = self._flow is not None and not self._flow.handed_off  # not the agent's to hear
                if not (amd_heard or flow_menu):
                    self._input.push(b"\xff" * len(audio) if self._on_hold else audio)  # on hold: line silence
                if self._flow is not None and not self._flow.handed_off:
                    self._flow.audio(pcm)
                if self._recording is not None:
                    self._recording.caller(pcm.tobytes())
        elif isinstance(message, protocol.Dtmf):
            if self._consent is not None:
                self._consent.digit(message.dtmf.digit)
            if self._flow is not None:
                self._flow.key(message.dtmf.digit)  # before the signal: the prompt stops at once
            event_id = f"{self._stream_sid}:{message.sequence_number}" if message.sequence_number else None
            await self._call.dtmf_received(c.DtmfEvent(digits=message.dtmf.digit, event_id=event_id))
        elif isinstance(message, protocol.Mark):
            if self._output is not None:
                self._output.marked(message.mark.name)
        elif isinstance(message, protocol.Stop):
            if self.ended_by == c.STREAM_HANDED_OVER:
                return False  # the carrier moved the call to a new stream: it goes on there
            self._ended, self.ended_by = True, "caller"
            await self._call.hangup_received(c.HangupEvent(by="caller"))
            return False
        return True

    async def _start(self, start: protocol.Start) -> None:
        params = start.start.custom_parameters
        workflow_id = params.get(STREAM_WORKFLOW_PARAMETER, "")
        # Opened by an account of the call's space (signature first: nothing else is looked at before it), and
        # bound to the call its TwiML was issued for.
        await self._verify(start.start.account_sid, space_of_workflow(workflow_id))
        token = params.get(STREAM_TOKEN_PARAMETER, "")
        if not stream_token_valid(self._runtime.secret_box, workflow_id, token, time.time()):
            raise StreamRejected("no such call")
        self._stream_sid = start.stream_sid
        self._call = call = self._runtime.calls.trusted(workflow_id)
        # Listed before attaching: the call's carry_media activity may reach this process before the update answers.
        self._runtime.streams.add(start.stream_sid, self)
        recording_path = self._runtime.recordings_dir / f"{start.stream_sid}.wav"
        request = c.AttachMedia(start.stream_sid, self._runtime.media_queue, recording_path=str(recording_path))
        try:
            attached = await call.attach_media(request)
        except CallActionError as exc:
            raise StreamRejected(exc.reason) from exc
        if attached.record and attached.consent is not None:  # the recorder starts once the consent allows it

            def record() -> None:
                self._recording = LiveRecording(recording_path)

            self._consent = ConsentGate(attached.consent, call.report_recording_consent, on_record=record)
        elif attached.record:
            self._recording = LiveRecording(recording_path)
        self._output = StreamAudioOutput(
            start.stream_sid, self._send, tap=self._record_agent, on_clear=self._agent_cut_off
        )
        self._attached = attached
        if attached.flow:  # the call's flow speaks first (play_prompt), and may hand over to an agent later
            self._flow = FlowCall(
                self._output,
                rate=8000,
                report_speech=self._heard,
                answer=self._answer_flow,
                voicemail_path=self._runtime.recordings_dir / f"voicemail-{start.stream_sid}.wav",
                audio=self._runtime.prompt_audio,
            )
            self._runtime.flows[start.stream_sid] = self._flow
            log.info("media stream attached to a flow", extra={"call_id": attached.call_id})
            return
        await self._answer(attached.agent_id, resumed=attached.resumed)
        log.info("media stream answered", extra={"call_id": attached.call_id, "resumed": attached.resumed})

    async def _answer(self, agent_id: str, *, resumed: bool, variables: dict[str, str] | None = None) -> None:
        attached, output = self._attached, self._output
        assert attached is not None and output is not None
        dispatch = DispatchMetadata(
            attached.workflow_id, attached.call_id, attached.space_id, agent_id, attached.conversation_id
        )

        if attached.amd is not None and not resumed:
            assert self._call is not None
            audio = message_audio_of(self._runtime.sessions, self._runtime.store, attached.space_id)
            self._amd = AmdListener(self._call, attached.amd, message_audio=audio)

        def time_turns(session: AgentSession, prepared: PreparedCall) -> None:
            self._turns = TurnTimer(session, output, prepared.control)
            if self._amd is not None:
                prepared.agent.greet = False  # the agent greets once AMD has heard a person

        self._answered = await answer_call(
            self._runtime,
            dispatch,
            agent_identity="agent",
            audio_in=self._input,
            audio_out=output,
            resumable_interruptions=False,  # Twilio cannot pause playback, only clear it: an interruption is final
            before_start=time_turns,
            resumed=resumed,
            consent=self._consent,
            variables=variables,
        )
        if self._amd is not None:
            session, greeting = self._answered.session, default_greeting(self._answered.prepared.config)
            self._amd_task = asyncio.create_task(self._amd.run(session, lambda: session.say(greeting)))

    # --------------------------------------------------------------------- the call's flow (FlowStream)
    async def _heard(self, text: str) -> None:
        assert self._call is not None
        self._utterances += 1
        await self._call.speech_received(c.SpeechEvent(text, event_id=f"{self._stream_sid}:said:{self._utterances}"))

    async def _answer_flow(self, request: StartFlowAgent) -> None:
        await self._answer(request.agent_id, resumed=False, variables=request.variables)

    async def _verify(self, account_sid: str, space_id: str | None) -> None:
        """Twilio signs the WebSocket URL with the account's auth token, like its webhooks; the account must be
        one of the call's space."""
        runtime = self._runtime
        async with runtime.sessions() as session:
            account = await signing_account(
                session,
                runtime.secret_box,
                account_sid=account_sid,
                url=self._url,
                params=[],
                signature=self._signature,
                limit=runtime.settings.twilio_accounts_per_sid,
                space_id=space_id or "",
            )
        if account is None:
            raise StreamRejected("invalid X-Twilio-Signature")

    def _record_agent(self, ulaw: bytes) -> None:
        if self._recording is not None:
            self._recording.agent(ulaw8k_to_pcm16(ulaw).tobytes())

    def _agent_cut_off(self) -> None:
        if self._recording is not None:
            self._recording.agent_cut_off()

    def set_on_hold(self, on_hold: bool) -> None:
        """On hold the agent hears line silence instead of the caller, and stops what it was saying."""
        self._on_hold = on_hold
        if on_hold and self._answered is not None:
            self._answered.session.interrupt()

    def set_recording_paused(self, paused: bool) -> tuple[float, float] | None:
        if self._recording is None:
            return None
        if paused:
            self._recording.pause()
            return None
        return self._recording.resume()

    def hand_over(self) -> bool:
        """This process drains: the call's workflow redirects the carrier's leg to a stream on another process.
        The agent here keeps talking until the carrier closes this stream; its stop is no hang-up."""
        if self.ended.is_set() or self._call is None:
            return False
        self._ended, self.ended_by = True, c.STREAM_HANDED_OVER
        self.ended.set()
        return True

    async def hang_up(self) -> None:
        """Our side ends the stream (the call ended elsewhere, or moved to another process)."""
        if not self._ended:
            self._ended, self.ended_by = True, c.STREAM_HUNG_UP
        self.ended.set()
        if self._hang_up is not None:
            await self._hang_up()

    async def close(self) -> None:
        """The socket is gone: stop the agent. A stream that never said ``stop`` was lost, not hung up: the call
        goes on (``carry_media`` reports the loss; the carrier's ``<Connect action>`` moves it to a new stream)."""
        if not self._ended and self._call is not None:
            self._ended, self.ended_by = True, c.STREAM_LOST
            log.info("media stream lost: closed without stop", extra={"stream_sid": self._stream_sid})
        self.ended.set()
        if self._flow is not None:
            self._flow.close()  # a message being recorded ends with the call, and is kept
            self._runtime.flows.pop(self._stream_sid or "", None)
        self._input.close()
        if self._amd_task is not None:
            self._amd_task.cancel()
        if self._answered is not None:
            await self._answered.aclose()
        if self._turns is not None:
            await self._turns.aclose()
        if self._output is not None:
            await self._output.aclose()
        if self._stream_sid is not None:
            # The recording is closed before the stream leaves the registry: its file is then complete to store.
            spans = self._recording.close().paused_spans if self._recording is not None else []
            self._runtime.streams.finished(self._stream_sid, spans)
