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
"""

from __future__ import annotations

from livekit.agents import stt, tts
from livekit.agents import vad as agents_vad

from models.providers import PROVIDERS, provider_problem

from .espeak_tts import EspeakTTS
from .hibari_tts import HibariTTS
from .vad import load_vad
from .whisper_stt import WhisperSTT

LOCAL_STT_PROVIDERS = ("local-whisper",)
LOCAL_TTS_PROVIDERS = ("local-hibari", "local-espeak")


class ProviderNotInstalledError(RuntimeError):
    """A cloud speech provider was selected but its livekit-agents plugin (or its API key) is missing."""


def _cloud_stt(provider: str) -> stt.STT:
    problem = provider_problem("stt", provider)
    if problem is not None:
        raise ProviderNotInstalledError(f"STT provider {problem}")
    if provider == "deepgram":
        from livekit.plugins import deepgram  # type: ignore[attr-defined,unused-ignore]  # optional extra

        deepgram_stt: stt.STT = deepgram.STT()
        return deepgram_stt
    from livekit.plugins import openai  # type: ignore[attr-defined,unused-ignore]  # optional extra

    openai_stt: stt.STT = openai.STT()
    return openai_stt


def _cloud_tts(provider: str, voice: str) -> tts.TTS:
    problem = provider_problem("tts", provider)
    if problem is not None:
        raise ProviderNotInstalledError(f"TTS provider {problem}")
    if provider == "cartesia":
        from livekit.plugins import cartesia  # type: ignore[attr-defined,unused-ignore]  # optional extra

        cartesia_tts: tts.TTS = cartesia.TTS(voice=voice) if voice else cartesia.TTS()
        return cartesia_tts
    from livekit.plugins import openai  # type: ignore[attr-defined,unused-ignore]  # optional extra

    openai_tts: tts.TTS = openai.TTS(voice=voice) if voice else openai.TTS()
    return openai_tts


def build_stt(provider: str, vad: agents_vad.VAD | None = None, *, interim_results: bool = True) -> stt.STT:
    """An STT for ``provider`` (see the module docstring). ``vad`` decides where an utterance ends: pass the
    session's, so the transcript is final as soon as the turn is (the default waits silero's 0.55 s).
    ``interim_results``: the local Whisper re-transcribes while the caller speaks only if someone reads along
    (cloud providers stream their interim results anyway)."""
    name = provider.strip().lower()
    if name == "local-whisper":
        return WhisperSTT(vad=vad, interim_results=interim_results)
    if ("stt", name) in PROVIDERS:
        return _cloud_stt(name)
    raise ValueError(f"unknown STT provider {provider!r}; offline: {', '.join(LOCAL_STT_PROVIDERS)}")


def build_tts(provider: str, voice: str = "") -> tts.TTS:
    """A TTS for ``provider`` speaking ``voice`` ("" = the provider's default voice)."""
    name = provider.strip().lower()
    if name == "local-hibari":
        return HibariTTS(voice=voice or "heart")
    if name == "local-espeak":
        return EspeakTTS(voice=voice or "en-us")
    if ("tts", name) in PROVIDERS:
        return _cloud_tts(name, voice)
    raise ValueError(f"unknown TTS provider {provider!r}; offline: {', '.join(LOCAL_TTS_PROVIDERS)}")


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
