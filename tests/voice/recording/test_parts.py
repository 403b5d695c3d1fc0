"""Joining the parts of a moved call's recording: each part where its manifest says it started, the time between
them silence, a part left by a killed process (short header, a pause never ended) kept whole, overlapping parts
end to end, and parts on another machine counted as missing."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import numpy.typing as npt

from tests.voice.recording.test_stereo import read_stereo
from voice.recording.parts import PartManifest, join_parts, joined_before, remove_parts
from voice.recording.stereo import Side, StereoRecorder

RATE = 8000


def tone(seconds: float, level: int) -> npt.NDArray[np.int16]:
    return np.full(round(seconds * RATE), level, dtype=np.int16)


def record_part(path: Path, started_at: float, caller: npt.NDArray[np.int16], *, killed: bool = False) -> None:
    """A part as a media process leaves it: closed normally, or killed (its header short, a pause still open)."""
    manifest = PartManifest.begin(path, started_at)
    recorder = StereoRecorder(path)
    recorder.start(at=0.0)
    recorder.push(Side.AGENT, (caller // 2).tobytes(), 0.0)  # queued ahead, as TTS is
    recorder.push(Side.CALLER, caller.tobytes(), 0.0)
    if killed:
        recorder.pause(at=len(caller) / RATE - 0.25)
        manifest.paused_from(len(caller) / RATE - 0.25)
        recorder.close(at=len(caller) / RATE)
        with path.open("r+b") as f:  # the header as last fixed before the kill: covering nothing
            f.seek(40)
            f.write(struct.pack("<I", 0))
        return
    recorder.pause(at=0.2)
    manifest.paused(recorder.resume(at=0.4) or (0, 0))
    manifest.closed(recorder.close(at=len(caller) / RATE).paused_spans)


def test_parts_are_joined_on_the_call_timeline_with_the_move_as_silence(tmp_path: Path) -> None:
    first, second, elsewhere = tmp_path / "MZ1.wav", tmp_path / "MZ2.wav", tmp_path / "gone" / "MZ0.wav"
    record_part(first, 1000.0, tone(2.0, 1000), killed=True)
    record_part(second, 1003.5, tone(1.0, 2000))
    out = tmp_path / "call-joined.wav"

    joined = join_parts([first, second, elsewhere], out)

    assert (joined.joined, joined.missing) == (2, 1)
    left, right = read_stereo(out)
    assert len(left) == round(4.5 * RATE)
    assert (left[: round(1.75 * RATE)] == 1000).all() and (right[: round(1.75 * RATE)] == 500).all()
    assert not left[round(1.75 * RATE) : round(3.5 * RATE)].any()  # the open pause, then the move: silence
    after = left[round(3.5 * RATE) :]
    assert (after[: round(0.2 * RATE)] == 2000).all() and not after[round(0.2 * RATE) : round(0.4 * RATE)].any()
    assert (after[round(0.4 * RATE) :] == 2000).all()
    assert joined.paused_spans == [(1.75, 2.0), (3.7, 3.9)]

    remove_parts([first, second])
    assert not first.exists() and not second.exists() and not PartManifest.read(second)
    again = joined_before(out, [first, second])  # a retried join finds the first attempt's file
    assert again is not None and again.paused_spans == joined.paused_spans


def test_overlapping_parts_are_put_end_to_end(tmp_path: Path) -> None:
    first, second = tmp_path / "MZ1.wav", tmp_path / "MZ2.wav"
    record_part(first, 1000.0, tone(2.0, 1000))
    record_part(second, 1001.0, tone(1.0, 2000))  # a draining process's stream still open when the next began
    joined = join_parts([first, second], tmp_path / "joined.wav")
    left, _ = read_stereo(joined.path)
    assert len(left) == 3 * RATE and (left[2 * RATE : round(2.2 * RATE)] == 2000).all()
    assert (left[round(1.9 * RATE) : 2 * RATE] == 1000).all()  # the first part whole, the second after it
    assert joined.paused_spans == [(0.2, 0.4), (2.2, 2.4)]
