"""A two-channel WAV recorder for media-stream calls: the caller on the left, the agent on the right.

Frames arrive from either side with a timestamp (seconds on the call's clock: when the first sample was heard or
played). Each frame is placed at its sample position, so silences stay where nobody spoke and a barge-in sounds
as it happened (both voices at once); a side's audio that was queued but never played (the agent cut off by a
barge-in) is taken back with :meth:`StereoRecorder.clear`.

The caller's side is the recording's clock: a media stream delivers the caller's frames all the time, silence
included, while the agent's frames may be queued ahead of playback. Samples up to ``hold_back`` seconds behind the
caller's newest frame (or an explicit :meth:`StereoRecorder.tick`) are final and appended to the file, and the
RIFF header's sizes are rewritten every ``header_interval`` seconds of audio (and fsynced).
A crash loses at most those seconds, and the file left behind is a valid WAV up to its last header fix-up
(:func:`repair_wav` extends it to every complete frame on disk).

Pause/resume (card numbers and other secrets): everything between the two instants is silence in the file, on
both channels, whatever arrives for that span; the spans are reported in seconds.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 8000
CHANNELS = 2
SAMPLE_WIDTH = 2
HEADER_BYTES = 44
_FRAME_BYTES = CHANNELS * SAMPLE_WIDTH


class Side(IntEnum):
    CALLER = 0  # left
    AGENT = 1  # right


@dataclass
class RecordingSummary:
    path: Path
    duration_seconds: float
    paused_spans: list[tuple[float, float]]
    late_samples_dropped: int


def wav_header(data_bytes: int, sample_rate: int) -> bytes:
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        1,  # PCM
        CHANNELS,
        sample_rate,
        sample_rate * _FRAME_BYTES,
        _FRAME_BYTES,
        SAMPLE_WIDTH * 8,
        b"data",
        data_bytes,
    )


def repair_wav(path: Path) -> int:
    """Fix the header of a recorder's WAV left by a crash to cover every complete frame; returns the frames."""
    size = path.stat().st_size
    frames = max(0, size - HEADER_BYTES) // _FRAME_BYTES
    with path.open("r+b") as f:
        f.seek(0)
        sample_rate = struct.unpack("<I", f.read(28)[24:28])[0]
        f.seek(0)
        f.write(wav_header(frames * _FRAME_BYTES, sample_rate))
        f.truncate(HEADER_BYTES + frames * _FRAME_BYTES)
    return frames


@dataclass
class _Track:
    """One side's samples not yet written, starting at the file's write position."""

    pending: npt.NDArray[np.int16] = field(default_factory=lambda: np.zeros(0, dtype=np.int16))
    end: int = 0  # absolute sample position after the last sample received


class StereoRecorder:
    def __init__(
        self,
        path: Path,
        *,
        sample_rate: int = SAMPLE_RATE,
        hold_back: float = 1.0,
        header_interval: float = 2.0,
        jitter: float = 0.02,
    ) -> None:
        self.path = path
        self.sample_rate = sample_rate
        self._hold_back = int(hold_back * sample_rate)
        self._header_every = int(header_interval * sample_rate)
        self._jitter = int(jitter * sample_rate)
        self._tracks = (_Track(), _Track())
        self._written = 0  # frames in the file
        self._header_at = 0  # frames the header covers
        self._t0: float | None = None
        self._paused_at: int | None = None
        self._paused: list[tuple[int, int]] = []
        self._dropped = 0
        self._file: BinaryIO | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self, at: float) -> None:
        """Open the file; ``at`` is position 0 of the recording on the call's clock."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("wb")
        self._file.write(wav_header(0, self.sample_rate))
        self._t0 = at

    def close(self, at: float | None = None) -> RecordingSummary:
        """Write everything received (up to ``at`` if later), fix the header, close the file."""
        end = max(t.end for t in self._tracks)
        if at is not None:
            end = max(end, self._position(at))
        if self._paused_at is not None:
            self._paused.append((self._paused_at, end))
            self._paused_at = None
        self._commit(end)
        self._fix_header()
        assert self._file is not None
        self._file.close()
        return RecordingSummary(
            self.path,
            self._written / self.sample_rate,
            [(a / self.sample_rate, b / self.sample_rate) for a, b in self._paused],
            self._dropped,
        )

    # -- audio -----------------------------------------------------------------------------------------------

    def push(self, side: Side, pcm: bytes, at: float) -> None:
        """PCM16 little-endian mono at the recorder's rate, whose first sample was heard/played at ``at``."""
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.int16)
        track = self._tracks[side]
        position = self._position(at)
        if abs(position - track.end) <= self._jitter:
            position = track.end  # contiguous audio delivered with timestamp jitter: no clicks, no gaps
        offset = position - self._written
        if offset < 0:  # already written: keep what still fits
            self._dropped += min(-offset, len(samples))
            samples = samples[-offset:]
            offset = 0
        if len(samples):
            needed = offset + len(samples)
            if len(track.pending) < needed:
                track.pending = np.concatenate([track.pending, np.zeros(needed - len(track.pending), np.int16)])
            track.pending[offset:needed] = samples
            track.end = max(track.end, self._written + needed)
        if side == Side.CALLER:
            self._commit(track.end - self._hold_back)

    def tick(self, at: float) -> None:
        """Advance the recording's clock without caller audio (a stream that went quiet): writes up to ``at``."""
        self._commit(self._position(at) - self._hold_back)

    def clear(self, side: Side, at: float) -> None:
        """Take back ``side``'s audio from ``at`` on (queued but never played: the agent cut off by a barge-in)."""
        track = self._tracks[side]
        offset = max(0, self._position(at) - self._written)
        if offset < len(track.pending):
            track.pending = track.pending[:offset]
        track.end = min(track.end, self._written + offset)

    def pause(self, at: float) -> None:
        if self._paused_at is None:
            self._paused_at = self._position(at)

    def resume(self, at: float) -> tuple[float, float] | None:
        """End the pause; returns the paused span in seconds (None if not paused)."""
        if self._paused_at is None:
            return None
        span = (self._paused_at, max(self._paused_at, self._position(at)))
        self._paused.append(span)
        self._paused_at = None
        return span[0] / self.sample_rate, span[1] / self.sample_rate

    @property
    def paused(self) -> bool:
        return self._paused_at is not None

    @property
    def paused_since(self) -> float | None:
        """Where the open pause began, in seconds of the file (None when not paused)."""
        return None if self._paused_at is None else self._paused_at / self.sample_rate

    @property
    def written_seconds(self) -> float:
        return self._written / self.sample_rate

    # -- writing ---------------------------------------------------------------------------------------------

    def _position(self, at: float) -> int:
        if self._t0 is None:
            raise RuntimeError("recorder not started")
        return max(0, round((at - self._t0) * self.sample_rate))

    def _commit(self, until: int) -> None:
        count = until - self._written
        if count <= 0 or self._file is None:
            return
        frames = np.zeros((count, CHANNELS), dtype="<i2")
        for side, track in enumerate(self._tracks):
            n = min(count, len(track.pending))
            frames[:n, side] = track.pending[:n]
            track.pending = track.pending[count:] if len(track.pending) > count else np.zeros(0, np.int16)
        open_pause = [] if self._paused_at is None else [(self._paused_at, until)]
        for start, end in [*self._paused, *open_pause]:
            a, b = max(start - self._written, 0), min(end - self._written, count)
            if a < b:
                frames[a:b] = 0
        self._file.write(frames.tobytes())
        self._written = until
        if self._written - self._header_at >= self._header_every:
            self._fix_header()

    def _fix_header(self) -> None:
        assert self._file is not None
        self._file.flush()
        data_bytes = self._written * _FRAME_BYTES
        self._file.seek(4)
        self._file.write(struct.pack("<I", 36 + data_bytes))
        self._file.seek(40)
        self._file.write(struct.pack("<I", data_bytes))
        self._file.seek(0, os.SEEK_END)
        self._file.flush()
        os.fsync(self._file.fileno())
        self._header_at = self._written
