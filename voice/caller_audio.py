"""The caller's audio as a livekit-agents ``AudioInput``, for transports that receive it over a socket (carrier
media streams, the console): PCM16 frames queued as they arrive, read by the agent session until closed."""

from __future__ import annotations

import asyncio
import time

from livekit import rtc
from livekit.agents.voice import io


class CallerAudioInput(io.AudioInput):
    def __init__(self, label: str, sample_rate: int, *, max_backlog_frames: int | None = None) -> None:
        super().__init__(label=label)
        self.sample_rate = sample_rate
        self._frames: asyncio.Queue[rtc.AudioFrame | None] = asyncio.Queue()
        self._max_backlog = max_backlog_frames
        self.last_frame_at = 0.0

    def push_pcm(self, pcm: bytes) -> None:
        """Mono PCM16 at ``sample_rate``; beyond the backlog bound frames are dropped (a client sending faster than
        real time cannot grow the queue without bound)."""
        if self._max_backlog is not None and self._frames.qsize() >= self._max_backlog:
            return
        self.last_frame_at = time.monotonic()
        samples = len(pcm) // 2
        frame = rtc.AudioFrame(data=pcm, sample_rate=self.sample_rate, num_channels=1, samples_per_channel=samples)
        self._frames.put_nowait(frame)

    def close(self) -> None:
        self._frames.put_nowait(None)

    async def __anext__(self) -> rtc.AudioFrame:
        frame = await self._frames.get()
        if frame is None:
            self._frames.put_nowait(None)  # stay closed for later readers
            raise StopAsyncIteration
        return frame
