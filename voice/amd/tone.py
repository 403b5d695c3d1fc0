"""Beep detection: a voicemail's "record after the tone" beep is a sustained pure tone (most are 400-2,100 Hz,
typically ~1 kHz, 0.2-1.5 s). Pure numpy over 8 or 16 kHz PCM windows.

Each analysis window (the VAD's, 32 ms) is Hann-windowed and zero-padded; it is *tonal* when one spectral peak in
the beep band holds at least ``min_purity`` of the window's energy and the window is loud enough. A beep is a run of
tonal windows at one frequency (within ``max_drift_hz``) lasting at least ``min_beep_ms``; it ends at the first
window that is not that tone. Speech never qualifies: its energy is spread over harmonics and formants, and even a
sung vowel drifts in pitch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class ToneParams:
    low_hz: float = 300.0
    high_hz: float = 2500.0
    min_purity: float = 0.80  # share of the window's energy within the peak's main lobe
    min_level: float = 0.01  # RMS (full scale = 1.0): quieter windows are line noise
    max_drift_hz: float = 40.0
    min_beep_ms: int = 150
    max_beep_ms: int = 4000  # a tone longer than this is not a beep (a fax, a dial tone): it still ends the run


@dataclass(frozen=True)
class Beep:
    start_ms: int
    end_ms: int
    frequency_hz: float


class ToneAnalyzer:
    """Tonality of one window: ``(frequency_hz, purity, rms)`` with a fixed-size FFT per sample rate."""

    def __init__(self, sample_rate: int, window: int, params: ToneParams) -> None:
        self.sample_rate = sample_rate
        self.params = params
        self._hann = np.hanning(window).astype(np.float64)
        self._size = 4 * int(2 ** np.ceil(np.log2(window)))  # zero-padded: finer peak frequency
        freqs = np.fft.rfftfreq(self._size, 1.0 / sample_rate)
        self._band = (freqs >= params.low_hz) & (freqs <= params.high_hz)
        self._freqs = freqs
        # Main lobe of a Hann window: ±2 bins of the unpadded FFT = ±8 bins of the padded one.
        self._lobe = 2 * self._size // window

    def analyze(self, window: npt.NDArray[np.float32]) -> tuple[float, float, float]:
        x = window.astype(np.float64)
        rms = float(np.sqrt(np.mean(x * x)))
        if rms < self.params.min_level:
            return 0.0, 0.0, rms
        power = np.abs(np.fft.rfft(x * self._hann, self._size)) ** 2
        total = float(power.sum())
        if total <= 0.0:
            return 0.0, 0.0, rms
        banded = np.where(self._band, power, 0.0)
        peak = int(np.argmax(banded))
        lo, hi = max(0, peak - self._lobe), min(len(power), peak + self._lobe + 1)
        return float(self._freqs[peak]), float(power[lo:hi].sum()) / total, rms


class BeepTracker:
    """Feeds on consecutive windows; reports a beep once it has ended."""

    def __init__(self, sample_rate: int, window: int, params: ToneParams | None = None) -> None:
        self.params = params or ToneParams()
        self._analyzer = ToneAnalyzer(sample_rate, window, self.params)
        self._window_ms = 1000.0 * window / sample_rate
        self._run_start: float | None = None
        self._run_freq = 0.0
        self._run_windows = 0
        self.tonal = False  # was the last window part of a tone (so not speech)
        self.in_beep = False  # a tone long enough to be a beep is sounding now

    def push(self, window: npt.NDArray[np.float32], start_ms: float) -> Beep | None:
        freq, purity, _ = self._analyzer.analyze(window)
        p = self.params
        tonal = purity >= p.min_purity
        same = self._run_start is not None and abs(freq - self._run_freq) <= p.max_drift_hz
        ended: Beep | None = None
        if tonal and (self._run_start is None or same):
            if self._run_start is None:
                self._run_start, self._run_freq, self._run_windows = start_ms, freq, 0
            self._run_windows += 1
            self._run_freq += (freq - self._run_freq) / self._run_windows
        else:
            ended = self._close(start_ms)
            if tonal:  # a new tone at another frequency starts right away
                self._run_start, self._run_freq, self._run_windows = start_ms, freq, 1
        self.tonal = tonal
        self.in_beep = self._run_start is not None and self._run_windows * self._window_ms >= p.min_beep_ms
        return ended

    def _close(self, at_ms: float) -> Beep | None:
        start, self._run_start = self._run_start, None
        if start is None:
            return None
        length = self._run_windows * self._window_ms
        if self.params.min_beep_ms <= length < self.params.max_beep_ms:
            return Beep(round(start), round(at_ms), round(self._run_freq, 1))
        return None
