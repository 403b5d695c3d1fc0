"""livekit-agents audio output over an ``rtc.AudioSource`` (a local track in a LiveKit room): what a flow-mode job
says to the caller, and, once the flow hands over, what its agent says, on one published track.

The source's queue paces the audio in real time; a segment counts as played once the source has played it out
(``wait_for_playout``); ``clear_buffer`` drops what is still queued and ends the segment as interrupted."""

from __future__ import annotations

import asyncio
import contextlib
import time

from livekit import rtc
from livekit.agents.voice import io

OUTPUT_RATE = 24000  # the local TTS engines' rate: prompts and replies go out without resampling
OUTPUT_QUEUE_MS = 200


class RoomAudioOutput(io.AudioOutput):
    def __init__(self, source: rtc.AudioSource) -> None:
        super().__init__(
            label="livekit-flow-track",
            next_in_chain=None,
            sample_rate=source.sample_rate,
            capabilities=io.AudioOutputCapabilities(pause=False),
        )
        self._source = source
        self._resampler: rtc.AudioResampler | None = None
        self._resampler_rate = 0
        self._pushed = 0.0  # seconds of the current segment given to the source
        self._interrupted = asyncio.Event()
        self._playout: asyncio.Task[None] | None = None

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if self._playout is not None and not self._playout.done():
            await self._playout  # the previous segment's end is reported before this one begins
        if not self._pushed:
            self.on_playback_started(created_at=time.time())
        for out in self._at_source_rate(frame):
            if self._interrupted.is_set():
                return
            self._pushed += out.duration
            await self._source.capture_frame(out)

    def _at_source_rate(self, frame: rtc.AudioFrame) -> list[rtc.AudioFrame]:
        if frame.sample_rate == self._source.sample_rate:
            return [frame]
        if self._resampler is None or self._resampler_rate != frame.sample_rate:
            self._resampler = rtc.AudioResampler(frame.sample_rate, self._source.sample_rate, num_channels=1)
            self._resampler_rate = frame.sample_rate
        return self._resampler.push(frame)

    def flush(self) -> None:
        super().flush()
        if not self._pushed:
            self._interrupted.clear()
            return
        if self._playout is None or self._playout.done():
            self._playout = asyncio.create_task(self._wait_for_playout())

    def clear_buffer(self) -> None:
        if self._pushed:
            self._interrupted.set()
            if self._playout is None or self._playout.done():
                self._playout = asyncio.create_task(self._wait_for_playout())

    async def _wait_for_playout(self) -> None:
        played = asyncio.create_task(self._source.wait_for_playout())
        cut = asyncio.create_task(self._interrupted.wait())
        try:
            await asyncio.wait({played, cut}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (played, cut):
                task.cancel()
        interrupted = self._interrupted.is_set()
        position = self._pushed
        if interrupted:
            position = max(0.0, self._pushed - self._source.queued_duration)
            self._source.clear_queue()
        self._pushed = 0.0
        self._interrupted.clear()
        self.on_playback_finished(playback_position=position, interrupted=interrupted)

    async def aclose(self) -> None:
        if self._playout is not None:
            self._playout.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._playout
        await self._source.aclose()


def room_output() -> tuple[RoomAudioOutput, rtc.LocalAudioTrack]:
    """An output and the local track that carries it (published into the room by the job)."""
    source = rtc.AudioSource(OUTPUT_RATE, 1, queue_size_ms=OUTPUT_QUEUE_MS)
    return RoomAudioOutput(source), rtc.LocalAudioTrack.create_audio_track("flow", source)
