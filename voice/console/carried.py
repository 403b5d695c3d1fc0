"""A console call carried by this media process the way a carrier media stream is: attached to its workflow
(``attach_media``, transport ``console``), held by a heartbeating ``carry_media`` activity on this process's
queue, and recorded here when the call's policy says so (the number's recording policy; a call straight to an
agent has no number and is not recorded), after the space's announcement or consent, paused and held through
the same activities as a media stream's.

It cannot be handed over to another process (the page's socket ends with this process); if the process dies the
workflow ends the call (``media_lost``) instead of leaving it open until its time limit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from models import calls as c
from models import console_protocol as p
from voice.console.access import ConsoleRefused
from voice.recording.live import LiveRecording
from voice.recording_consent import ConsentGate
from voice.runtime import VoiceRuntime
from workflows.call_client import CallActionError, CallRef


class ConsoleStream:
    """The console call as the workflow's live stream on this process (``activities.media_streams.LiveStream``)."""

    def __init__(self, runtime: VoiceRuntime, call: CallRef, call_id: str) -> None:
        self.stream_id = f"{c.CONSOLE_STREAM_PREFIX}{call_id}"
        self.ended = asyncio.Event()  # the socket closed, or the workflow hung the call up
        self.ended_by = "closed"
        self.recording: LiveRecording | None = None
        self.consent: ConsentGate | None = None
        self.on_hold = False
        self.interrupt: Callable[[], object] | None = None  # stops the agent mid-sentence (set once it answers)
        self._runtime = runtime
        self._call = call
        self._registered = False

    async def attach(self) -> c.MediaAttached | None:
        """Tell the workflow this process carries the call; None where nothing can (a console served without a
        media worker: no recording, no hold)."""
        runtime = self._runtime
        if not runtime.media_queue:
            return None
        path = runtime.recordings_dir / f"{self.stream_id}.wav"
        runtime.streams.add(self.stream_id, self)  # before attaching: carry_media may reach this process first
        self._registered = True
        request = c.AttachMedia(self.stream_id, runtime.media_queue, c.CONSOLE_TRANSPORT, recording_path=str(path))
        try:
            attached = await self._call.attach_media(request)
        except CallActionError as exc:
            runtime.streams.discard(self.stream_id)
            self._registered = False
            raise ConsoleRefused(p.Close.REFUSED, exc.reason[:120]) from exc
        if attached.record and attached.consent is not None:  # the recorder starts once the consent allows it
            self.consent = ConsentGate(
                attached.consent, self._call.report_recording_consent, on_record=lambda: self._record(path)
            )
        elif attached.record:
            self._record(path)
        return attached

    def _record(self, path: Path) -> None:
        self.recording = LiveRecording(path, input_rate=p.SAMPLE_RATE)

    # ------------------------------------------------------------------------------ audio
    def caller(self, pcm: bytes) -> bytes:
        """The caller's frame, recorded; returns what the agent hears (line silence while on hold)."""
        if self.recording is not None:
            self.recording.caller(pcm)
        return bytes(len(pcm)) if self.on_hold else pcm

    def agent(self, pcm: bytes) -> None:
        if self.recording is not None:
            self.recording.agent(pcm)

    def agent_cut_off(self) -> None:
        if self.recording is not None:
            self.recording.agent_cut_off()

    def digit(self, digits: str) -> None:
        if self.consent is not None:
            self.consent.digit(digits)

    # ------------------------------------------------------------------------------ LiveStream
    async def hang_up(self) -> None:
        """The call ended (or its workflow gave up on it): the socket closes."""
        self.ended.set()

    def set_recording_paused(self, paused: bool) -> tuple[float, float] | None:
        if self.recording is None:
            return None
        if paused:
            self.recording.pause()
            return None
        return self.recording.resume()

    def set_on_hold(self, on_hold: bool) -> None:
        self.on_hold = on_hold
        if on_hold and self.interrupt is not None:
            self.interrupt()

    def hand_over(self) -> bool:
        return False  # a console socket cannot move: a draining process keeps it until it ends

    def finish(self) -> None:
        """The socket is done: the recording is closed (complete, to be stored) before the stream leaves the
        registry, which is what the workflow's ``finish_stream_recording`` waits for."""
        self.ended.set()
        if self._registered:
            self._registered = False
            spans = self.recording.close().paused_spans if self.recording is not None else []
            self._runtime.streams.finished(self.stream_id, spans)
