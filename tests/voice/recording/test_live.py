"""The live recorder both transports use: a burst of caller frames (a busy event loop) stays one after the other,
console audio (16 kHz) is recorded at phone rate, and each recording leaves a manifest saying when it began."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from tests.voice.recording.test_stereo import read_stereo
from voice.recording.live import LiveRecording
from voice.recording.parts import PartManifest

RATE = 8000


def test_a_burst_of_console_frames_is_recorded_whole_at_phone_rate(tmp_path: Path) -> None:
    before = time.time()
    recording = LiveRecording(tmp_path / "console-call.wav", input_rate=16000)
    t = np.arange(16000) / 16000
    second = (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2")
    for i in range(0, len(second), 320):  # a whole second arriving at once, 20 ms per frame
        recording.caller(second[i : i + 320].tobytes())
    recording.agent(second[:3200].tobytes())  # 0.2 s of agent audio, played from now
    summary = recording.close()

    left, right = read_stereo(summary.path)
    heard = np.flatnonzero(np.abs(left) > 1000)
    assert heard[-1] - heard[0] > 0.95 * RATE  # not frames written over each other
    rms = np.sqrt(np.mean(left[heard[0] : heard[-1]].astype(np.float64) ** 2))
    assert 4500 < rms < 6500  # the tone, resampled (8000 peak → ~5657 RMS)
    assert 0.15 * RATE < np.count_nonzero(np.abs(right) > 1000) < 0.25 * RATE
    manifest = PartManifest.read(summary.path)
    assert manifest is not None and before <= manifest.started_at <= time.time() and manifest.paused_spans == []
