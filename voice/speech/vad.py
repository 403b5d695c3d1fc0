"""Silero VAD (the ONNX model inside ``livekit-plugins-silero``), loaded offline, shared and kept warm.

``load_vad()`` returns a livekit-agents ``vad.VAD``; the default runs inference at 8 kHz (phone audio needs no
resampling; 16 kHz input is resampled by the plugin). One instance per distinct option set per process: every
``stream()`` of it has its own state, so calls can share it. onnxruntime telemetry is disabled before loading.
"""

from __future__ import annotations

import time
from typing import Literal

from livekit.agents import vad as agents_vad

# livekit plugins register themselves on import and insist on the main thread: import here, at module load,
# so loading the model later from a worker thread (warm-up) is allowed.
from livekit.plugins import silero

from ._runtime import quiet_onnxruntime
from .model_cache import ModelCache

VadKey = tuple[int, float, float, float, float]
_vads: ModelCache[VadKey, agents_vad.VAD] = ModelCache("silero-vad")
load_seconds: dict[tuple[int, float, float, float, float], float] = {}


def load_vad(
    *,
    sample_rate: Literal[8000, 16000] = 8000,
    min_silence_duration: float = 0.55,
    min_speech_duration: float = 0.05,
    prefix_padding_duration: float = 0.3,
    activation_threshold: float = 0.5,
) -> agents_vad.VAD:
    """The process-wide silero VAD for these options (loaded from the plugin wheel on first use, never fetched)."""
    key = (sample_rate, min_silence_duration, min_speech_duration, prefix_padding_duration, activation_threshold)

    def load() -> agents_vad.VAD:
        quiet_onnxruntime()
        started = time.perf_counter()
        vad = silero.VAD.load(
            sample_rate=sample_rate,
            min_silence_duration=min_silence_duration,
            min_speech_duration=min_speech_duration,
            prefix_padding_duration=prefix_padding_duration,
            activation_threshold=activation_threshold,
        )
        load_seconds[key] = time.perf_counter() - started
        return vad

    return _vads.get(key, load)
