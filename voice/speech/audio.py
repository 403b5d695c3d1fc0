"""Audio helpers for telephony: G.711 μ-law, PCM conversions and band-limited resampling (numpy only).

Contracts:
- PCM is signed 16-bit little-endian mono (``np.int16`` arrays or ``bytes``); float audio is ``np.float32`` in [-1, 1].
- μ-law follows ITU-T G.711 (the table Twilio Media Streams use: ``audio/x-mulaw``, 8 kHz, one byte per sample).
  Encoding is bit-exact with the classic Sun ``g711.c`` (and the old ``audioop.lin2ulaw``);
  ``ulaw_decode(ulaw_encode(x))`` is within half a quantisation step, ``|x|/32 + 8``, below the ±32124 clip
  (≤ 644 overall).
- :class:`Resampler` is a streaming polyphase windowed-sinc resampler for any rational ratio (24k/22.05k/16k/8k):
  feed chunks of any size, outputs are continuous across chunk borders; it low-passes below the smaller Nyquist
  frequency, so 24 kHz → 8 kHz is phone band without aliasing. :func:`resample` is the one-shot, delay-compensated
  variant (output length ``ceil(n * dst / src)``). :class:`UlawStreamEncoder` / :class:`UlawStreamDecoder` chain the
  two for media streams (PCM at any rate ↔ μ-law 8 kHz, chunk by chunk).
No ``audioop`` (deprecated since Python 3.11, removed in 3.13) and no scipy.
"""

from __future__ import annotations

from functools import cache
from math import gcd

import numpy as np
import numpy.typing as npt

Int16Array = npt.NDArray[np.int16]
Float32Array = npt.NDArray[np.float32]

_BIAS = 0x84


@cache
def _ulaw_encode_table() -> npt.NDArray[np.uint8]:
    """μ-law byte for every int16 value, indexed by ``value + 32768`` (the classic Sun g711.c algorithm)."""
    v = np.arange(-32768, 32768, dtype=np.int64) >> 2  # 14-bit, arithmetic shift as in g711.c
    mask = np.where(v < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(v), 8159) + 0x21
    seg = np.searchsorted(np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]), mag)
    uval = np.where(seg >= 8, 0x7F, (seg << 4) | ((mag >> (seg + 1)) & 0x0F))
    return ((uval ^ mask) & 0xFF).astype(np.uint8)


@cache
def _ulaw_decode_table() -> Int16Array:
    """int16 sample for every μ-law byte."""
    u = ~np.arange(256, dtype=np.int64) & 0xFF
    sign = u & 0x80
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    mag = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(sign != 0, -mag, mag).astype(np.int16)


def ulaw_encode(pcm: Int16Array | bytes) -> bytes:
    """G.711 μ-law bytes (one per sample) from int16 PCM (array or little-endian bytes)."""
    samples = as_int16(pcm)
    return _ulaw_encode_table()[samples.astype(np.int32) + 32768].tobytes()


def ulaw_decode(data: bytes) -> Int16Array:
    """int16 PCM from G.711 μ-law bytes."""
    return _ulaw_decode_table()[np.frombuffer(data, dtype=np.uint8)]


def as_int16(pcm: Int16Array | bytes) -> Int16Array:
    """View little-endian PCM bytes as int16 (arrays are returned as they are)."""
    if isinstance(pcm, bytes | bytearray | memoryview):
        return np.frombuffer(pcm, dtype="<i2").astype(np.int16, copy=False)
    return np.asarray(pcm, dtype=np.int16)


def int16_to_float(pcm: Int16Array | bytes) -> Float32Array:
    """int16 PCM → float32 in [-1, 1)."""
    return (as_int16(pcm).astype(np.float32) / 32768.0).astype(np.float32)


def float_to_int16(audio: npt.NDArray[np.floating]) -> Int16Array:
    """float audio in [-1, 1] → int16 PCM (clipped, rounded)."""
    return np.clip(np.round(np.asarray(audio, dtype=np.float64) * 32767.0), -32768, 32767).astype(np.int16)


def trim_leading_silence(
    audio: npt.NDArray[np.floating], sample_rate: int, *, threshold: float = 0.01, keep_ms: float = 10.0
) -> npt.NDArray[np.floating]:
    """Drop the leading near-silence of float audio, keeping ``keep_ms`` before the first sample ≥ ``threshold``.

    All-silent input is returned empty.
    """
    loud = np.flatnonzero(np.abs(audio) >= threshold)
    if loud.size == 0:
        return audio[:0]
    start = max(0, int(loud[0]) - int(sample_rate * keep_ms / 1000.0))
    return audio[start:]


@cache
def _polyphase_filter(up: int, down: int, half_taps: int) -> tuple[npt.NDArray[np.float64], int]:
    """Kaiser-windowed sinc low-pass at rate ``src * up`` as a (up, taps) bank (row p = phase p) and its delay.

    The filter is centred on a multiple of ``down`` so that its delay is a whole number of output samples.
    """
    delay_out = -(-half_taps * up // down)
    centre = delay_out * down
    n = 2 * centre + 1
    taps = -(-n // up)
    cutoff = 0.5 / max(up, down) * 0.94  # cycles per sample at the upsampled rate, a little below Nyquist
    k = np.arange(n, dtype=np.float64) - centre
    h = 2.0 * cutoff * np.sinc(2.0 * cutoff * k) * np.kaiser(n, 8.0) * up
    h = np.concatenate([h, np.zeros(taps * up - n)])
    # h[p + j*up] is tap j of phase p
    return np.ascontiguousarray(h.reshape(taps, up).T), delay_out


class Resampler:
    """Streaming resampler ``src_rate`` → ``dst_rate`` (float32 in, float32 out); keeps its own history.

    ``push(chunk)`` returns every output sample that can be computed from the input so far; ``flush()`` returns
    the remainder (the filter's delay, about ``half_taps`` input samples). Output is delayed by that much.
    """

    def __init__(self, src_rate: int, dst_rate: int, *, half_taps: int = 16) -> None:
        if src_rate <= 0 or dst_rate <= 0:
            raise ValueError("sample rates must be positive")
        g = gcd(src_rate, dst_rate)
        self.src_rate, self.dst_rate = src_rate, dst_rate
        self._up, self._down = dst_rate // g, src_rate // g
        self._bank, self._delay = _polyphase_filter(self._up, self._down, half_taps)
        self._taps = self._bank.shape[1]
        self._buf = np.zeros(self._taps - 1, dtype=np.float64)  # history; buffer index 0 ↔ input index _base
        self._base = -(self._taps - 1)
        self._next_out = 0  # index of the next output sample

    @property
    def delay_out_samples(self) -> int:
        """Group delay of the filter in output samples."""
        return self._delay

    def push(self, chunk: npt.NDArray[np.floating]) -> Float32Array:
        """Add input samples; return the output samples now available."""
        if self._up == self._down:
            return np.asarray(chunk, dtype=np.float32)
        self._buf = np.concatenate([self._buf, np.asarray(chunk, dtype=np.float64)])
        last_in = self._base + len(self._buf) - 1  # highest input index held
        # output m uses input n0 = floor(m*down/up) and the (taps-1) before it
        m_end = (last_in * self._up) // self._down + 1
        if m_end <= self._next_out:
            return np.zeros(0, dtype=np.float32)
        m = np.arange(self._next_out, m_end, dtype=np.int64)
        pos = m * self._down
        n0 = pos // self._up - self._base
        phase = pos % self._up
        idx = n0[:, None] - np.arange(self._taps)[None, :]
        out = np.einsum("ij,ij->i", self._buf[idx], self._bank[phase])
        self._next_out = int(m_end)
        # keep only the history the next output needs
        next_n0 = (self._next_out * self._down) // self._up
        keep_from = next_n0 - (self._taps - 1) - self._base
        if keep_from > 0:
            self._buf = self._buf[keep_from:]
            self._base += keep_from
        return out.astype(np.float32)

    def flush(self) -> Float32Array:
        """Push the filter's delay worth of zeros; return the tail."""
        if self._up == self._down:
            return np.zeros(0, dtype=np.float32)
        return self.push(np.zeros(self._taps, dtype=np.float64))


def resample(audio: npt.NDArray[np.floating], src_rate: int, dst_rate: int) -> Float32Array:
    """One-shot resampling of float audio, delay-compensated; output length is ``ceil(len * dst / src)``."""
    audio = np.asarray(audio, dtype=np.float32)
    if src_rate == dst_rate:
        return audio
    rs = Resampler(src_rate, dst_rate)
    out = np.concatenate([rs.push(audio), rs.flush()])
    n_out = -(-len(audio) * dst_rate // src_rate)
    d = rs.delay_out_samples
    return out[d : d + n_out]


def resample_int16(pcm: Int16Array | bytes, src_rate: int, dst_rate: int) -> Int16Array:
    """One-shot resampling of int16 PCM."""
    return float_to_int16(resample(int16_to_float(pcm), src_rate, dst_rate))


def pcm16_to_ulaw8k(pcm: Int16Array | bytes, sample_rate: int) -> bytes:
    """PCM at any rate → μ-law 8 kHz (one-shot; for streams use a :class:`Resampler` then :func:`ulaw_encode`)."""
    return ulaw_encode(resample_int16(pcm, sample_rate, 8000))


def ulaw8k_to_pcm16(data: bytes, sample_rate: int = 8000) -> Int16Array:
    """μ-law 8 kHz → int16 PCM at ``sample_rate`` (8000 returns the decoded samples unchanged)."""
    pcm = ulaw_decode(data)
    return pcm if sample_rate == 8000 else resample_int16(pcm, 8000, sample_rate)


class UlawStreamEncoder:
    """Streaming PCM16 at ``src_rate`` → μ-law 8 kHz bytes (for carrier media streams, e.g. TTS 24 kHz → Twilio)."""

    def __init__(self, src_rate: int) -> None:
        self._resampler = Resampler(src_rate, 8000) if src_rate != 8000 else None

    def encode(self, pcm: Int16Array | bytes) -> bytes:
        """μ-law bytes for the audio available so far (the resampler holds back ~2 ms)."""
        if self._resampler is None:
            return ulaw_encode(pcm)
        return ulaw_encode(float_to_int16(self._resampler.push(int16_to_float(pcm))))

    def flush(self) -> bytes:
        """The held-back tail (call at the end of an utterance)."""
        if self._resampler is None:
            return b""
        return ulaw_encode(float_to_int16(self._resampler.flush()))


class UlawStreamDecoder:
    """Streaming μ-law 8 kHz bytes → PCM16 at ``dst_rate`` (8000: no resampling)."""

    def __init__(self, dst_rate: int = 8000) -> None:
        self._resampler = Resampler(8000, dst_rate) if dst_rate != 8000 else None

    def decode(self, data: bytes) -> Int16Array:
        """int16 samples for the bytes so far."""
        pcm = ulaw_decode(data)
        if self._resampler is None:
            return pcm
        return float_to_int16(self._resampler.push(int16_to_float(pcm)))
