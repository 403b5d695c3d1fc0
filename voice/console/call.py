"""One console call, from ``hello`` to the end: authorise the key, start the ``CallWorkflow`` (media mode
``web``), run the space's agent on the caller's microphone, push both sides' words and each turn's latency to
the client, and close the socket once the workflow has ended (whoever ended it).

Every call attaches this socket to the workflow as a stream of this media process (``ConsoleStream``: held,
recorded, paused like a carrier media stream). A call routed to a flow plays it through the same ``FlowCall`` and
media activities as a media stream: prompts out, keypad and words in, and the agent on this socket once the flow
hands the call over.

The workflow stays the source of truth, as for carrier media streams: the socket reports what happened (media
up, digits, hang-up) and the agent's tools act through the workflow's updates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from livekit.agents import AgentSession, ConversationItemAddedEvent, UserInputTranscribedEvent
from starlette.websockets import WebSocket, WebSocketDisconnect

from models import calls as c
from models import console_protocol as p
from models.call_contract import DispatchMetadata, web_call
from models.enums import CallState
from models.tables import new_id
from voice.agent import PreparedCall
from voice.call_setup import AnsweredCall, answer_call
from voice.console.access import ConsoleRefused, ConsoleTarget, resolve
from voice.console.audio_io import ConsoleAudioInput, ConsoleAudioOutput
from voice.console.carried import ConsoleStream
from voice.console.link import ConsoleLink
from voice.flow_call import FlowCall
from voice.runtime import VoiceRuntime
from voice.speech.audio import as_int16
from voice.turns import TurnTimer
from workflows.call_client import CallRef

log = logging.getLogger(__name__)

ROUTING_WAIT = 5.0  # seconds to wait for the workflow to route the call and open its conversation


@dataclass(frozen=True)
class Outcome:
    code: p.Close
    reason: str


class ConsoleCall:
    def __init__(self, runtime: VoiceRuntime, websocket: WebSocket) -> None:
        self._runtime = runtime
        self._ws = websocket
        self._link = ConsoleLink(websocket.send_text, websocket.send_bytes)
        self._input = ConsoleAudioInput()
        self._output: ConsoleAudioOutput | None = None
        self._call: CallRef | None = None
        self._stream: ConsoleStream | None = None  # how this process carries (and records) the call
        self._answered: AnsweredCall | None = None
        self._turns: TurnTimer | None = None
        self._ended = False
        self._digits = 0
        self._flow: FlowCall | None = None  # while the call's flow plays on this socket
        self._utterances = 0

    async def run(self) -> Outcome:
        try:
            try:
                hello = await asyncio.wait_for(self._hello(), timeout=p.HELLO_TIMEOUT)
            except TimeoutError:
                raise ConsoleRefused(p.Close.HELLO_TIMEOUT, f"no hello within {p.HELLO_TIMEOUT:.0f} s") from None
            async with self._runtime.sessions() as session:
                target = await resolve(session, hello)
            await self._start(target)
            return await self._converse()
        except ConsoleRefused as exc:
            log.info("console call refused", extra={"code": int(exc.code), "reason": exc.reason})
            return Outcome(exc.code, exc.reason)
        except p.ProtocolError as exc:
            log.info("console socket closed: malformed message", extra={"reason": str(exc)})
            return Outcome(p.Close.MALFORMED, str(exc)[:120])
        except WebSocketDisconnect:
            return Outcome(p.Close.NORMAL, "")
        except Exception:
            log.exception("console call failed")
            return Outcome(p.Close.INTERNAL, "internal error")
        finally:
            await self.close()

    # ------------------------------------------------------------------------------ receiving
    async def _receive(self) -> bytes | str:
        message = await self._ws.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        data: bytes | None = message.get("bytes")
        if data is not None:
            if len(data) > p.MAX_AUDIO_BYTES:
                raise ConsoleRefused(p.Close.TOO_BIG, f"audio frame over {p.MAX_AUDIO_BYTES} bytes")
            if len(data) % 2:
                raise p.ProtocolError("audio frame is not 16-bit samples")
            return data
        text: str = message.get("text") or ""
        if len(text.encode()) > p.MAX_TEXT_BYTES:
            raise ConsoleRefused(p.Close.TOO_BIG, f"text frame over {p.MAX_TEXT_BYTES} bytes")
        return text

    async def _hello(self) -> p.Hello:
        first = await self._receive()
        message = p.parse_client(first) if isinstance(first, str) else None
        if not isinstance(message, p.Hello):
            raise p.ProtocolError("the first message must be hello")
        return message

    async def _receive_all(self) -> None:
        assert self._call is not None
        while True:
            data = await self._receive()
            if isinstance(data, bytes):
                heard = data if self._stream is None else self._stream.caller(data)  # recorded; silence on hold
                if self._flow is not None and not self._flow.handed_off:
                    self._flow.audio(as_int16(heard))  # the menu's, not the agent's to hear
                else:
                    self._input.push(heard)
                continue
            message = p.parse_client(data)
            if isinstance(message, p.Played):
                if self._output is not None:
                    self._output.played(message.segment)
            elif isinstance(message, p.Dtmf):
                if self._flow is not None:
                    for digit in message.digits:
                        self._flow.key(digit)  # before the signal: the prompt stops at once
                self._digits += 1
                if self._stream is not None:
                    self._stream.digit(message.digits)
                event_id = f"{self._call.workflow_id}:dtmf:{self._digits}"
                await self._call.dtmf_received(c.DtmfEvent(digits=message.digits, event_id=event_id))
            elif isinstance(message, p.Hangup):
                await self._call.hangup_received(c.HangupEvent(by="caller"))
            else:
                raise p.ProtocolError("hello sent twice")

    # ------------------------------------------------------------------------------ the call
    async def _start(self, target: ConsoleTarget) -> None:
        runtime = self._runtime
        start = web_call(
            call_id=new_id("calls"),
            space_id=target.space_id,
            agent_id=target.agent_id,
            phone_number_id=target.phone_number_id,
            caller=target.caller,
            to=target.to,
            flow_id=target.flow_id,
        )
        self._call = await runtime.calls.start(start)
        if self._call is None:
            raise ConsoleRefused(p.Close.REFUSED, "the call could not start")
        view = await self._routed()
        if view.state is CallState.ENDED or view.space_id is None:
            raise ConsoleRefused(p.Close.REFUSED, _why_ended(view))
        if view.agent_id is None and not runtime.media_queue:  # routed to a flow
            raise ConsoleRefused(p.Close.REFUSED, "flows are played by a media process; this server runs none")
        await self._call.connected(c.ConnectedEvent(participant_identity=target.caller))
        self._stream = stream = ConsoleStream(runtime, self._call, view.call_id)
        self._output = ConsoleAudioOutput(self._link, tap=stream.agent, on_clear=stream.agent_cut_off)
        ready = p.Ready(
            call_id=view.call_id,
            workflow_id=start.workflow_id,
            space_id=view.space_id,
            conversation_id=view.conversation_id,
        )
        if view.agent_id is None:
            self._link.message(ready)  # before attaching: the first prompt follows at once
            self._play_flow(view, stream)
            await stream.attach()
            log.info("console call in its flow", extra={"call_id": view.call_id, "key_id": target.key_id})
            return
        await stream.attach()
        await self._answer(view, view.agent_id, ready=ready)
        log.info("console call answered", extra={"call_id": view.call_id, "key_id": target.key_id})

    async def _answer(
        self, view: c.CallStateView, agent_id: str, *, ready: p.Ready | None, variables: dict[str, str] | None = None
    ) -> None:
        """The agent answers the caller on this socket (``ready`` is sent once it is about to speak)."""
        output = self._output
        assert output is not None and view.space_id is not None

        def follow(session: AgentSession, prepared: PreparedCall) -> None:
            session.on("conversation_item_added", self._on_item)
            session.on("user_input_transcribed", self._on_partial)
            self._turns = TurnTimer(session, output, prepared.control, self._on_turn)
            if ready is not None:
                self._link.message(ready)

        dispatch = DispatchMetadata(view.workflow_id, view.call_id, view.space_id, agent_id, view.conversation_id)
        self._answered = await answer_call(
            self._runtime,
            dispatch,
            agent_identity="agent",
            audio_in=self._input,
            audio_out=output,
            resumable_interruptions=False,  # the page drops unplayed audio on clear rather than pausing it
            before_start=follow,
            variables=variables,
            consent=self._stream.consent if self._stream is not None else None,
            interim_transcripts=True,  # the page shows the caller's words as they speak
        )
        if self._stream is not None:
            self._stream.interrupt = self._answered.session.interrupt

    # ------------------------------------------------------------------------------ the call's flow
    def _play_flow(self, view: c.CallStateView, stream: ConsoleStream) -> None:
        """The call's flow plays its prompts here through this process's media activities, which find it by the
        stream's id once the socket is attached (on this process's task queue, like a carrier media stream's)."""
        output = self._output
        assert output is not None
        self._flow = FlowCall(
            output,
            rate=p.SAMPLE_RATE,
            report_speech=self._heard,
            answer=lambda request: self._answer(view, request.agent_id, ready=None, variables=request.variables),
            voicemail_path=self._runtime.recordings_dir / f"voicemail-{stream.stream_id}.wav",
            audio=self._runtime.prompt_audio,
            on_prompt=lambda text: self._link.message(p.Transcript(role="agent", text=text, final=True)),
        )
        self._runtime.flows[stream.stream_id] = self._flow  # before attaching: the first prompt may follow at once

    async def _heard(self, text: str) -> None:
        assert self._call is not None
        self._utterances += 1
        self._link.message(p.Transcript(role="caller", text=text, final=True))
        stream_id = self._stream.stream_id if self._stream is not None else ""
        await self._call.speech_received(c.SpeechEvent(text, event_id=f"{stream_id}:said:{self._utterances}"))

    async def _routed(self) -> c.CallStateView:
        assert self._call is not None
        deadline = time.monotonic() + ROUTING_WAIT
        while True:
            view = await self._call.state()
            opened = view.conversation_id is not None  # routed to its agent or flow first
            if opened or view.state is CallState.ENDED or time.monotonic() > deadline:
                return view
            await asyncio.sleep(0.05)

    async def _converse(self) -> Outcome:
        """Until the client leaves or the workflow ends, whichever comes first."""
        assert self._call is not None
        receiving = asyncio.create_task(self._receive_all())
        finished = asyncio.create_task(self._call.handle.result())
        hung_up = asyncio.create_task(self._stream.ended.wait() if self._stream else asyncio.Event().wait())
        try:
            await asyncio.wait({receiving, finished, hung_up}, return_when=asyncio.FIRST_COMPLETED)
            if finished.done() and finished.exception() is not None:
                self._ended = True  # failed or terminated: nothing left to hang up
                log.warning("console call's workflow failed", extra={"workflow_id": self._call.workflow_id})
                return Outcome(p.Close.INTERNAL, "the call's workflow failed")
            if finished.done() or hung_up.done():
                # The workflow ended the call; it stores the recording before it completes, so a recorded call
                # is hung up from its carry_media activity, and the socket closes on the call's state.
                view: c.CallStateView = finished.result() if finished.done() else await self._call.state()
                self._ended = True
                reason = view.end_reason.value if view.end_reason else None
                self._link.message(p.Ended(state=view.state.value, end_reason=reason))
                return Outcome(p.Close.NORMAL, f"call ended: {reason or view.state.value}")
            await receiving  # raises why the client left (disconnect, malformed or oversized frame)
            return Outcome(p.Close.NORMAL, "")
        finally:
            for task in (receiving, finished, hung_up):
                task.cancel()
            await asyncio.gather(receiving, finished, hung_up, return_exceptions=True)

    # ------------------------------------------------------------------------------ events
    def _on_item(self, event: ConversationItemAddedEvent) -> None:
        item = event.item
        role = getattr(item, "role", None)
        text = getattr(item, "text_content", None)
        if role in ("user", "assistant") and text:
            self._link.message(p.Transcript(role="caller" if role == "user" else "agent", text=text, final=True))

    def _on_partial(self, event: UserInputTranscribedEvent) -> None:
        if not event.is_final and event.transcript:
            self._link.message(p.Transcript(role="caller", text=event.transcript, final=False))

    def _on_turn(self, turn: c.TurnMetrics) -> None:
        self._link.message(
            p.Turn(
                latency_ms=turn.latency_ms,
                stt_ms=turn.stt_ms,
                llm_ttft_ms=turn.llm_ttft_ms,
                tts_ttfb_ms=turn.tts_ttfb_ms,
            )
        )

    async def close(self) -> None:
        """The socket is done: stop the agent; a caller who just left still hangs the call up."""
        self._input.close()
        if self._flow is not None:
            self._flow.close()  # a message being recorded ends with the call, and is kept
            self._runtime.flows.pop(self._stream.stream_id if self._stream is not None else "", None)
        if not self._ended and self._call is not None:
            await self._call.hangup_received(c.HangupEvent(by="caller"))
        if self._answered is not None:
            with contextlib.suppress(Exception):
                await self._answered.aclose()
        if self._turns is not None:
            await self._turns.aclose()
        if self._stream is not None:
            self._stream.finish()
        await self._link.aclose()


def _why_ended(view: c.CallStateView) -> str:
    details = [e.detail for e in view.timeline if e.state is CallState.ENDED and e.detail]
    return f"the call was not accepted: {details[-1] if details else 'no agent answers it'}"[:120]
