"""A media-stream call's recording: caller (left) and agent (right) as one stereo WAV, on the call's clock.

The caller's frames are recorded as they arrive; the agent's as they will be played (TTS runs ahead of real
time, so each frame is placed after the one before it, never before now), and what a barge-in cut off is taken
back. Written incrementally by :class:`voice.recording.stereo.StereoRecorder`.
"""

from __future__ import annotations

import time
from pathlib import Path

from voice.recording.stereo import RecordingSummary, Side, StereoRecorder
from voice.speech.audio import ulaw8k_to_pcm16

SAMPLE_RATE = 8000


class StreamRecording:
    def __init__(self, path: Path) -> None:
        self._recorder = StereoRecorder(path, sample_rate=SAMPLE_RATE)
        self._recorder.start(time.monotonic())
        self._agent_playhead = 0.0
        self.summary: RecordingSummary | None = None

    def caller(self, ulaw: bytes) -> None:
        if self.summary is None:
            self._recorder.push(Side.CALLER, ulaw8k_to_pcm16(ulaw).tobytes(), time.monotonic())

    def agent(self, ulaw: bytes) -> None:
        if self.summary is not None:
            return
        at = max(time.monotonic(), self._agent_playhead)
        self._recorder.push(Side.AGENT, ulaw8k_to_pcm16(ulaw).tobytes(), at)
        self._agent_playhead = at + len(ulaw) / SAMPLE_RATE

    def agent_cut_off(self) -> None:
        now = time.monotonic()
        self._recorder.clear(Side.AGENT, now)
        self._agent_playhead = now

    def pause(self) -> None:
        self._recorder.pause(time.monotonic())

    def resume(self) -> tuple[float, float] | None:
        return self._recorder.resume(time.monotonic())

    def close(self) -> RecordingSummary:
        if self.summary is None:
            self.summary = self._recorder.close(time.monotonic())
        return self.summary
