"""The stereo recorder with real speech: alignment, barge-in, pause/resume, and a crash mid-call."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

from tests.voice.recording.speech import frames, speak
from voice.recording.stereo import Side, StereoRecorder, repair_wav

RATE = 8000
CALLER = "Hello, I would like to know your opening hours."
AGENT = "We are open from nine in the morning to five in the evening."


def read_stereo(path: Path) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.int16]]:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, RATE)
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
    return data[:, 0], data[:, 1]


def push_speech(recorder: StereoRecorder, side: Side, pcm: npt.NDArray[np.int16], start: float) -> float:
    """Push 20 ms frames as a media stream delivers them, with up to 5 ms of timestamp jitter after the first."""
    rng = np.random.default_rng(int(side))
    at = start
    for i, frame in enumerate(frames(pcm)):
        recorder.push(side, frame.tobytes(), at + (rng.uniform(-0.005, 0.005) if i else 0.0))
        at += len(frame) / RATE
    return at


def test_sides_are_aligned_by_time_with_silence_between(tmp_path: Path) -> None:
    caller, agent = speak(CALLER), speak(AGENT, 1.1)
    recorder = StereoRecorder(tmp_path / "call.wav")
    recorder.start(at=100.0)
    caller_end = push_speech(recorder, Side.CALLER, caller, 100.5)
    agent_start = caller_end + 0.8  # the agent answers 0.8 s after the caller stopped
    push_speech(recorder, Side.AGENT, agent, agent_start)
    summary = recorder.close(at=agent_start + len(agent) / RATE + 0.5)

    left, right = read_stereo(summary.path)
    assert abs(summary.duration_seconds - len(left) / RATE) < 1e-9
    c0, a0 = int(0.5 * RATE), round((agent_start - 100.0) * RATE)
    assert np.array_equal(left[c0 : c0 + len(caller)], caller)  # placed exactly, no clicks from the jitter
    assert np.array_equal(right[a0 : a0 + len(agent)], agent)
    assert not left[:c0].any() and not left[c0 + len(caller) :].any()
    assert not right[:a0].any() and not right[a0 + len(agent) :].any()
    assert summary.paused_spans == [] and summary.late_samples_dropped == 0


def test_barge_in_keeps_both_voices_and_drops_the_unplayed_rest(tmp_path: Path) -> None:
    caller, agent = speak(CALLER), speak(AGENT, 1.1)
    recorder = StereoRecorder(tmp_path / "barge.wav")
    recorder.start(at=0.0)
    # The agent's whole reply is queued ahead of playback (TTS is faster than real time)...
    push_speech(recorder, Side.AGENT, agent, 0.2)
    # ...the caller talks over it from 1.0 s, and the transport clears the agent's queue at 1.5 s.
    half_second = int(0.5 * RATE)
    push_speech(recorder, Side.CALLER, caller[:half_second], 1.0)
    recorder.clear(Side.AGENT, at=1.5)
    push_speech(recorder, Side.CALLER, caller[half_second:], 1.5)
    summary = recorder.close()

    left, right = read_stereo(summary.path)
    overlap = slice(int(1.0 * RATE), int(1.5 * RATE))
    assert np.abs(left[overlap]).max() > 1000 and np.abs(right[overlap]).max() > 1000  # both at once
    assert np.array_equal(right[int(0.2 * RATE) : int(1.5 * RATE)], agent[: int(1.3 * RATE)])
    assert not right[int(1.5 * RATE) :].any()
    assert np.array_equal(left[RATE : RATE + len(caller)], caller)


def test_pause_is_silence_exactly_over_the_paused_span(tmp_path: Path) -> None:
    caller = speak(CALLER)
    recorder = StereoRecorder(tmp_path / "paused.wav", header_interval=0.5)
    recorder.start(at=0.0)
    for i, frame in enumerate(frames(caller)):
        at = i * 0.02
        if abs(at - 1.0) < 1e-9:
            recorder.pause(at=1.0)
        if abs(at - 2.0) < 1e-9:
            assert recorder.resume(at=2.0) == (1.0, 2.0)
        recorder.push(Side.CALLER, frame.tobytes(), at)
        recorder.push(Side.AGENT, (frame // 2).tobytes(), at)  # audio arrives on both sides all along
    summary = recorder.close()

    left, right = read_stereo(summary.path)
    assert summary.paused_spans == [(1.0, 2.0)]
    assert not left[RATE : 2 * RATE].any() and not right[RATE : 2 * RATE].any()
    assert np.array_equal(left[:RATE], caller[:RATE]) and np.array_equal(left[2 * RATE :], caller[2 * RATE :])
    assert np.abs(caller[RATE : 2 * RATE]).max() > 1000  # the span silenced did hold speech


CRASHING_RECORDER = """
import sys, time
import numpy as np
from pathlib import Path
from voice.recording.stereo import Side, StereoRecorder
speech = np.load(sys.argv[2])
recorder = StereoRecorder(Path(sys.argv[1]), header_interval=2.0, hold_back=1.0)
recorder.start(at=0.0)
at = 0.0
while True:  # real time, the speech looped, until killed
    for i in range(0, len(speech), 160):
        recorder.push(Side.CALLER, speech[i : i + 160].tobytes(), at)
        at += 0.02
        print(f"{at:.2f}", flush=True)
        time.sleep(0.005)
"""


def test_a_crash_loses_at_most_a_few_seconds_and_leaves_a_playable_file(tmp_path: Path) -> None:
    speech = speak(CALLER)
    np.save(tmp_path / "speech.npy", speech)
    path = tmp_path / "crash.wav"
    process = subprocess.Popen(
        [sys.executable, "-c", CRASHING_RECORDER, str(path), str(tmp_path / "speech.npy")],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])},
    )
    assert process.stdout is not None
    pushed = 0.0
    deadline = time.monotonic() + 60
    while pushed < 7.0 and time.monotonic() < deadline:
        pushed = float(process.stdout.readline() or 0.0)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert pushed >= 7.0

    left, _ = read_stereo(path)  # valid as left behind: the header covers what was fsynced
    assert pushed - len(left) / RATE <= 1.0 + 2.0 + 0.1  # hold-back + header interval (+ one frame)
    assert np.array_equal(left[: len(speech)], speech)
    frames_on_disk = repair_wav(path)
    left, _ = read_stereo(path)
    assert len(left) == frames_on_disk and pushed - len(left) / RATE <= 1.0 + 2.0 + 0.1
