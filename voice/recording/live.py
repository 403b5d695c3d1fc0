"""A live call's recording, whatever carries its audio (carrier media streams, the console socket): caller (left)
and agent (right) as one stereo WAV at phone rate, on the process's clock.

The caller's frames are recorded as they arrive (both transports deliver them in real time, silence included);
the agent's as they will be played (TTS runs ahead of real time, so each frame is placed after the one before
it, never before now), and what a barge-in cut off is taken back. Audio at another rate (the console's 16 kHz)
is resampled per side, so every recording has one format for transcription and playback. Written incrementally
by :class:`voice.recording.stereo.StereoRecorder`; its part manifest (``voice.recording.parts``) says when it
started, so the parts of a call that moved between processes can be joined on one timeline.
"""

from __future__ import annotations

import time
from pathlib import Path

from voice.recording.parts import PartManifest
from voice.recording.stereo import SAMPLE_RATE, RecordingSummary, Side, StereoRecorder
from voice.speech.audio import Resampler, as_int16, float_to_int16, int16_to_float

CALLER_GAP = 0.5  # seconds the caller's stream may fall behind the clock before its next frame starts anew
CALLER_AHEAD = 1.0  # seconds it may run ahead (a client sending faster than real time)


class _Rate:
    """One side's audio to the recording's rate (a streaming filter: no clicks at frame edges)."""

    def __init__(self, src: int, dst: int) -> None:
        self._src, self._dst = src, dst
        self._resampler = Resampler(src, dst) if src != dst else None

    def convert(self, pcm: bytes) -> bytes:
        if self._resampler is None:
            return pcm
        return float_to_int16(self._resampler.push(int16_to_float(pcm))).astype("<i2").tobytes()

    def reset(self) -> None:
        if self._resampler is not None:
            self._resampler = Resampler(self._src, self._dst)


class LiveRecording:
    def __init__(self, path: Path, *, input_rate: int = SAMPLE_RATE) -> None:
        self._recorder = StereoRecorder(path, sample_rate=SAMPLE_RATE)
        self._recorder.start(time.monotonic())
        self._manifest = PartManifest.begin(path, time.time())
        self._caller_rate, self._agent_rate = _Rate(input_rate, SAMPLE_RATE), _Rate(input_rate, SAMPLE_RATE)
        self._agent_playhead = 0.0
        self._caller_playhead: float | None = None
        self.summary: RecordingSummary | None = None

    def caller(self, pcm: bytes) -> None:
        """The caller's PCM16 as it arrives: one frame after the other (both transports send silence too, so a
        frame late by a busy event loop still follows the one before it), re-synchronised to the clock only
        when the stream really paused or ran ahead."""
        if self.summary is not None:
            return
        converted = self._caller_rate.convert(pcm)
        now = time.monotonic()
        at = self._caller_playhead
        if at is None or not -CALLER_AHEAD <= now - at <= CALLER_GAP:
            at = now
        self._recorder.push(Side.CALLER, converted, at)
        self._caller_playhead = at + len(as_int16(converted)) / SAMPLE_RATE

    def agent(self, pcm: bytes) -> None:
        """The agent's PCM16 as it is sent to be played (after what was sent before it)."""
        if self.summary is not None:
            return
        converted = self._agent_rate.convert(pcm)
        at = max(time.monotonic(), self._agent_playhead)
        self._recorder.push(Side.AGENT, converted, at)
        self._agent_playhead = at + len(as_int16(converted)) / SAMPLE_RATE

    def agent_cut_off(self) -> None:
        now = time.monotonic()
        self._recorder.clear(Side.AGENT, now)
        self._agent_rate.reset()
        self._agent_playhead = now

    def pause(self) -> None:
        if self.summary is None and not self._recorder.paused:
            self._recorder.pause(time.monotonic())
            self._manifest.paused_from(self._recorder.paused_since or 0.0)

    def resume(self) -> tuple[float, float] | None:
        span = self._recorder.resume(time.monotonic()) if self.summary is None else None
        if span is not None:
            self._manifest.paused(span)
        return span

    def close(self) -> RecordingSummary:
        if self.summary is None:
            self.summary = self._recorder.close(time.monotonic())
            self._manifest.closed(self.summary.paused_spans)
        return self.summary
