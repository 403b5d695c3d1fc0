"""Offline speech layer: livekit-agents STT/TTS/VAD plugins whose models ship inside Python wheels.

Factory (providers are named as in an agent's config):
- ``build_stt("local-whisper")`` → :class:`WhisperSTT` (faster-whisper, Whisper tiny.en, silero VAD, incremental);
- ``build_tts("local-hibari", voice)`` → :class:`HibariTTS` (``voice`` "heart", or "" for the default);
- ``build_tts("local-espeak", voice)`` → :class:`EspeakTTS` (``voice`` an espeak-ng name, "" → "en-us");
- ``load_vad()`` → the shared silero VAD (8 kHz).
Cloud providers (``models.providers``: "deepgram", "cartesia", "openai") load from their livekit plugin when it is
installed (an optional extra) and its API key is set; otherwise :class:`ProviderNotInstalledError` says what is
missing (the API refuses such agents when they are written). Anything else raises ``ValueError``. Builders are
cheap: models load lazily on first use (or ``prewarm()``) and are shared process-wide.
Audio helpers for carrier media streams (μ-law, resampling) live in :mod:`voice.speech.audio`.

The package imports its parts on first use (``from voice.speech import HibariTTS`` loads the TTS then): a process
that only needs :mod:`voice.speech.audio` or the Whisper engine (the Temporal worker's transcription activity) does
not load livekit-agents, silero and onnxruntime, about 75 MB of the worker's resident memory.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .espeak_tts import EspeakTTS
    from .factory import LOCAL_STT_PROVIDERS, LOCAL_TTS_PROVIDERS, ProviderNotInstalledError, build_stt, build_tts
    from .hibari_tts import HibariTTS
    from .vad import load_vad
    from .whisper_stt import WhisperSTT

_HOMES = {
    "LOCAL_STT_PROVIDERS": "factory",
    "LOCAL_TTS_PROVIDERS": "factory",
    "ProviderNotInstalledError": "factory",
    "build_stt": "factory",
    "build_tts": "factory",
    "EspeakTTS": "espeak_tts",
    "HibariTTS": "hibari_tts",
    "WhisperSTT": "whisper_stt",
    "load_vad": "vad",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)


__all__ = [
    "LOCAL_STT_PROVIDERS",
    "LOCAL_TTS_PROVIDERS",
    "EspeakTTS",
    "HibariTTS",
    "ProviderNotInstalledError",
    "WhisperSTT",
    "build_stt",
    "build_tts",
    "load_vad",
]
