"""Both ends of a room call's audio for tests, over real ``rtc`` objects (no LiveKit server: a local track read back
through ``rtc.AudioStream`` is what a subscriber in the room would receive).

``CallerPhone``: the SIP caller's microphone track (speech is pushed into its ``rtc.AudioSource`` in real time);
``TrackEars``: what a listener on a track hears, cut into segments at pauses."""

from __future__ import annotations

import asyncio
import contextlib

import numpy as np
from livekit import rtc

from voice.speech.audio import resample_int16

RATE = 16000
FRAME = RATE // 100  # 10 ms
SPEECH_RMS = 300.0
PAUSE = 0.7  # seconds of quiet that end a segment


class CallerPhone:
    def __init__(self) -> None:
        self.source = rtc.AudioSource(RATE, 1, queue_size_ms=100)
        self.track = rtc.LocalAudioTrack.create_audio_track("caller", self.source)
        self._lock = asyncio.Lock()

    def stream(self) -> rtc.AudioStream:
        """The caller's audio as the job subscribes to it."""
        return rtc.AudioStream.from_track(track=self.track, sample_rate=RATE, num_channels=1)

    async def say(self, pcm: np.ndarray, rate: int) -> None:
        """Speak ``pcm`` (int16 at ``rate``) in real time, then a second of line silence (the turn ends)."""
        audio = resample_int16(pcm, rate, RATE) if rate != RATE else pcm
        await self._push(np.concatenate([audio.astype(np.int16), np.zeros(RATE, dtype=np.int16)]))

    async def silence(self, seconds: float) -> None:
        await self._push(np.zeros(int(RATE * seconds), dtype=np.int16))

    async def _push(self, pcm: np.ndarray) -> None:
        async with self._lock:
            for i in range(0, len(pcm) - FRAME + 1, FRAME):
                chunk = pcm[i : i + FRAME]
                await self.source.capture_frame(rtc.AudioFrame(chunk.tobytes(), RATE, 1, FRAME))

    async def aclose(self) -> None:
        await self.source.aclose()


class TrackEars:
    """Listens to ``track`` from now on; ``segments`` are the stretches of sound heard, each ended by a pause."""

    def __init__(self, track: rtc.LocalAudioTrack) -> None:
        self._stream = rtc.AudioStream.from_track(track=track, sample_rate=RATE, num_channels=1)
        self.segments: list[np.ndarray] = []
        self._current: list[np.ndarray] = []
        self._quiet = 0.0
        self._last_at = 0.0
        self._task = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        async for event in self._stream:
            self._last_at = asyncio.get_running_loop().time()
            pcm = np.frombuffer(bytes(event.frame.data), dtype=np.int16)
            loud = len(pcm) > 0 and float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) > SPEECH_RMS
            if loud:
                self._current.append(pcm)
                self._quiet = 0.0
            elif self._current:
                self._current.append(pcm)
                self._quiet += len(pcm) / RATE
                if self._quiet >= PAUSE:
                    self.segments.append(np.concatenate(self._current))
                    self._current, self._quiet = [], 0.0

    async def segment(self, index: int, within: float = 45.0) -> np.ndarray:
        """The ``index``-th segment heard (0-based), once it has ended."""
        deadline = asyncio.get_running_loop().time() + within
        while len(self.segments) <= index:
            now = asyncio.get_running_loop().time()
            if self._current and now - self._last_at >= PAUSE:  # the track went quiet by sending nothing
                self.segments.append(np.concatenate(self._current))
                self._current, self._quiet = [], 0.0
                continue
            if now > deadline:
                raise AssertionError(f"heard {len(self.segments)} segments, waited for #{index + 1}")
            await asyncio.sleep(0.05)
        return self.segments[index]

    async def aclose(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._stream.aclose()
