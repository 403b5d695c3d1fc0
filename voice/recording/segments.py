"""Speech segments of one channel of a recording, found offline with silero's ONNX model (from the
livekit-plugins-silero wheel) run directly over the samples: no streaming, no event loop, 32 ms windows at 8 kHz.

Segments are padded, gaps shorter than ``merge_gap`` are bridged (one utterance, one Whisper call), and segments
longer than ``max_seconds`` are split at their quietest window so each fits one right-sized Whisper window.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from voice.speech._runtime import quiet_onnxruntime

_session_lock = threading.Lock()
_session: object | None = None


def _onnx_session() -> object:
    global _session
    with _session_lock:
        if _session is None:
            quiet_onnxruntime()
            from livekit.plugins.silero.onnx_model import new_inference_session

            _session = new_inference_session(force_cpu=True)
        return _session


@dataclass(frozen=True)
class Segment:
    start: int  # samples
    end: int


def speech_probabilities(pcm: npt.NDArray[np.int16], sample_rate: int = 8000) -> npt.NDArray[np.float32]:
    """Silero's speech probability of every window (256 samples at 8 kHz, 512 at 16 kHz)."""
    from livekit.plugins.silero.onnx_model import OnnxModel

    model = OnnxModel(onnx_session=_onnx_session(), sample_rate=sample_rate)
    window = model.window_size_samples
    audio = pcm.astype(np.float32) / 32768.0
    count = len(audio) // window
    probs = np.zeros(count, dtype=np.float32)
    for i in range(count):
        chunk = audio[i * window : (i + 1) * window]
        # Digital silence (pauses, the other side's turns) needs no model call.
        probs[i] = model(chunk) if np.abs(chunk).max() > 1e-4 else 0.0
    return probs


def speech_segments(
    pcm: npt.NDArray[np.int16],
    sample_rate: int = 8000,
    *,
    on: float = 0.5,
    off: float = 0.35,
    min_speech: float = 0.15,
    pad: float = 0.2,
    merge_gap: float = 0.6,
    max_seconds: float = 25.0,
) -> list[Segment]:
    probs = speech_probabilities(pcm, sample_rate)
    window = 256 if sample_rate == 8000 else 512
    raw: list[Segment] = []
    start: int | None = None
    for i, p in enumerate(probs):
        if start is None and p >= on:
            start = i
        elif start is not None and p < off:
            raw.append(Segment(start * window, i * window))
            start = None
    if start is not None:
        raw.append(Segment(start * window, len(probs) * window))
    raw = [s for s in raw if s.end - s.start >= min_speech * sample_rate]
    padding, gap = int(pad * sample_rate), int(merge_gap * sample_rate)
    merged: list[Segment] = []
    for seg in raw:
        seg = Segment(max(0, seg.start - padding), min(len(pcm), seg.end + padding))
        if merged and seg.start - merged[-1].end <= gap:
            merged[-1] = Segment(merged[-1].start, seg.end)
        else:
            merged.append(seg)
    limit = int(max_seconds * sample_rate)
    out: list[Segment] = []
    for seg in merged:
        out.extend(_split(seg, probs, window, limit))
    return out


def _split(seg: Segment, probs: npt.NDArray[np.float32], window: int, limit: int) -> list[Segment]:
    if seg.end - seg.start <= limit:
        return [seg]
    # Cut at the least speech-like window in the second half of the allowed length.
    lo, hi = (seg.start + limit // 2) // window, (seg.start + limit) // window
    cut = (lo + int(np.argmin(probs[lo:hi]))) * window if hi > lo else seg.start + limit
    return [Segment(seg.start, cut), *_split(Segment(cut, seg.end), probs, window, limit)]
