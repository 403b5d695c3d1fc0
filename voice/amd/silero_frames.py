"""Silero VAD as a synchronous per-window speech probability (the ONNX model inside ``livekit-plugins-silero``, the
same one the voice pipeline's VAD runs), for detectors that work window by window over a call's first seconds.

One inference session per process (loaded from the wheel, never fetched; onnxruntime telemetry off); each
:class:`SileroFrames` keeps its own recurrent state, so every call has its own. Windows are 32 ms: 256 samples at
8 kHz, 512 at 16 kHz.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from livekit.plugins.silero import onnx_model

from voice.speech._runtime import quiet_onnxruntime
from voice.speech.model_cache import ModelCache

_sessions: ModelCache[str, Any] = ModelCache("silero-frames")
WINDOW_SAMPLES = {8000: 256, 16000: 512}


def _session() -> Any:
    def load() -> Any:
        quiet_onnxruntime()
        return onnx_model.new_inference_session(force_cpu=True)

    return _sessions.get("cpu", load)


class SileroFrames:
    """``probability(window)``: silero's speech probability for the next 32 ms window of one audio stream."""

    def __init__(self, sample_rate: int) -> None:
        if sample_rate not in WINDOW_SAMPLES:
            raise ValueError("silero VAD runs at 8000 or 16000 Hz")
        self.sample_rate = sample_rate
        self.window = WINDOW_SAMPLES[sample_rate]
        self._model = onnx_model.OnnxModel(onnx_session=_session(), sample_rate=sample_rate)

    def probability(self, window: npt.NDArray[np.float32]) -> float:
        return float(self._model(window.reshape(1, -1).astype(np.float32, copy=False)))


def prewarm() -> None:
    """Load the model now (the voice runtime's warm-up), not during someone's call."""
    SileroFrames(8000).probability(np.zeros(256, dtype=np.float32))
