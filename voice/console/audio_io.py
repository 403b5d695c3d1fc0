"""livekit-agents audio input/output over a console socket (16-bit PCM at the protocol's rate).

Input: each binary frame from the client becomes an ``rtc.AudioFrame``. Output: agent audio goes out as binary
frames (audio at another rate, a flow's prompt straight from its TTS, is resampled on the way), each reply
segment followed by ``segment_end``; the client answers ``played`` once it has played the segment, which is when
the agent's speech counts as heard. ``clear_buffer`` (barge-in) sends ``clear`` and ends every unplayed segment as
interrupted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from livekit import rtc
from livekit.agents.voice import io

from models import console_protocol as p
from voice.caller_audio import CallerAudioInput
from voice.console.link import ConsoleLink
from voice.speech.audio import Resampler, float_to_int16, int16_to_float

MAX_BACKLOG_FRAMES = 500  # ~10 s of 20 ms frames not yet taken by the agent


class ConsoleAudioInput(CallerAudioInput):
    """The caller's microphone, frame by frame, until the socket closes."""

    def __init__(self) -> None:
        super().__init__("console", p.SAMPLE_RATE, max_backlog_frames=MAX_BACKLOG_FRAMES)

    def push(self, pcm: bytes) -> None:
        self.push_pcm(pcm)


@dataclass
class _Segment:
    number: int
    started_at: float
    seconds: float = 0.0
    finished: bool = False


class ConsoleAudioOutput(io.AudioOutput):
    """``tap`` sees every frame sent, ``on_clear`` each barge-in (the call's recording follows both)."""

    def __init__(
        self,
        link: ConsoleLink,
        *,
        tap: Callable[[bytes], None] | None = None,
        on_clear: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(
            label="console", capabilities=io.AudioOutputCapabilities(pause=False), sample_rate=p.SAMPLE_RATE
        )
        self._link = link
        self._tap = tap
        self._on_clear = on_clear
        self._segments: dict[int, _Segment] = {}
        self._current: _Segment | None = None
        self._count = 0
        self._resampler: Resampler | None = None  # stateful, so resampling stays continuous across frames

    def _pcm(self, frame: rtc.AudioFrame) -> bytes:
        if frame.sample_rate == p.SAMPLE_RATE:
            return bytes(frame.data)
        if self._resampler is None or self._resampler.src_rate != frame.sample_rate:
            self._resampler = Resampler(frame.sample_rate, p.SAMPLE_RATE)
        return float_to_int16(self._resampler.push(int16_to_float(bytes(frame.data)))).astype("<i2").tobytes()

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if self._current is None:
            self._count += 1
            self._current = _Segment(self._count, time.monotonic())
            self.on_playback_started(created_at=time.time())
        self._current.seconds += frame.duration
        pcm = self._pcm(frame)
        self._link.audio(pcm)
        if self._tap is not None:
            self._tap(pcm)

    def flush(self) -> None:
        super().flush()
        segment, self._current = self._current, None
        if segment is None or segment.finished:
            return
        self._segments[segment.number] = segment
        self._link.message(p.SegmentEnd(segment=segment.number))

    def clear_buffer(self) -> None:
        self._link.message(p.Clear())
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

    def played(self, number: int) -> None:
        """The client played segment ``number`` to its end."""
        segment = self._segments.pop(number, None)
        if segment is not None and not segment.finished:
            segment.finished = True
            self.on_playback_finished(playback_position=segment.seconds, interrupted=False)
