"""livekit-agents audio input/output over a Twilio media stream (μ-law 8 kHz).

Input: each ``media`` message becomes an ``rtc.AudioFrame``. Output: agent audio goes out as ``media``
messages, each reply segment followed by a ``mark``; Twilio echoes the mark once the caller has heard
the segment, which is when the agent's speech counts as played. ``clear_buffer`` (barge-in) sends
``clear`` and ends every unplayed segment as interrupted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from livekit import rtc
from livekit.agents.voice import io

from voice.caller_audio import CallerAudioInput
from voice.media_stream import protocol
from voice.speech.audio import UlawStreamEncoder, ulaw8k_to_pcm16

SAMPLE_RATE = 8000
Send = Callable[[str], Awaitable[None]]


class StreamAudioInput(CallerAudioInput):
    """The caller's audio, frame by frame, until the stream stops."""

    def __init__(self) -> None:
        super().__init__("twilio-media-stream", SAMPLE_RATE)

    def push(self, ulaw: bytes) -> None:
        self.push_pcm(ulaw8k_to_pcm16(ulaw).tobytes())


@dataclass
class _Segment:
    number: int
    started_at: float
    seconds: float = 0.0
    finished: bool = False


class StreamAudioOutput(io.AudioOutput):
    """Agent audio to the caller. ``on_first_audio`` runs once, when the agent first makes a sound."""

    def __init__(
        self,
        stream_sid: str,
        send: Send,
        on_first_audio: Callable[[], None] | None = None,
        *,
        tap: Callable[[bytes], None] | None = None,
        on_clear: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(
            label="twilio-media-stream",
            capabilities=io.AudioOutputCapabilities(pause=False),
            sample_rate=SAMPLE_RATE,
        )
        self._stream_sid = stream_sid
        self._outbox: asyncio.Queue[str | None] = asyncio.Queue()
        self._sender = asyncio.create_task(self._send_all(send))
        self._segments: dict[str, _Segment] = {}
        self._current: _Segment | None = None
        self._count = 0
        self._on_first_audio = on_first_audio
        self._tap, self._on_clear = tap, on_clear  # the call's recorder hears what the caller hears
        self.first_audio_at: float | None = None
        self._encoder: UlawStreamEncoder | None = None
        self._encoder_rate = 0
        self.segment_started_at: float | None = None

    async def _send_all(self, send: Send) -> None:
        # One sender keeps media, marks and clears in the order they were produced.
        while (message := await self._outbox.get()) is not None:
            try:
                await send(message)
            except Exception:  # the caller's side is gone: nothing more can be played
                return

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if self._current is None:
            self._count += 1
            self._current = _Segment(self._count, time.monotonic())
            self.segment_started_at = self._current.started_at
            self.on_playback_started(created_at=time.time())
        if self.first_audio_at is None:
            self.first_audio_at = time.monotonic()
            if self._on_first_audio is not None:
                self._on_first_audio()
        if self._encoder is None or self._encoder_rate != frame.sample_rate:
            # Stateful, so resampling stays continuous across frames (the session normally sends 8 kHz).
            self._encoder, self._encoder_rate = UlawStreamEncoder(frame.sample_rate), frame.sample_rate
        ulaw = self._encoder.encode(bytes(frame.data))
        if self._tap is not None:
            self._tap(ulaw)
        self._current.seconds += frame.duration
        self._outbox.put_nowait(protocol.media(self._stream_sid, ulaw))

    def flush(self) -> None:
        super().flush()
        segment, self._current = self._current, None
        if segment is None or segment.finished:
            return
        name = f"segment-{segment.number}"
        self._segments[name] = segment
        self._outbox.put_nowait(protocol.mark(self._stream_sid, name))

    def clear_buffer(self) -> None:
        self._outbox.put_nowait(protocol.clear(self._stream_sid))
        if self._on_clear is not None:
            self._on_clear()
        unplayed = [s for s in self._segments.values() if not s.finished]
        if self._current is not None and not self._current.finished:
            unplayed.append(self._current)
        self._current = None  # what comes next is a new segment (else it would join a finished one and never be marked)
        for segment in unplayed:
            segment.finished = True
            heard = min(segment.seconds, time.monotonic() - segment.started_at)
            self.on_playback_finished(playback_position=heard, interrupted=True)
        self._segments.clear()

    def marked(self, name: str) -> None:
        """Twilio played everything up to our mark ``name``."""
        segment = self._segments.pop(name, None)
        if segment is not None and not segment.finished:
            segment.finished = True
            self.on_playback_finished(playback_position=segment.seconds, interrupted=False)

    async def aclose(self) -> None:
        self._outbox.put_nowait(None)
        try:
            await asyncio.wait_for(self._sender, timeout=2)
        except (TimeoutError, asyncio.CancelledError):
            self._sender.cancel()
