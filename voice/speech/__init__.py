"""Offline speech layer: livekit-agents STT/TTS/VAD plugins whose models ship inside Python wheels.

Factory (providers are named as in an agent's config):
- ``build_stt("local-whisper")`` → :class:`WhisperSTT` (faster-whisper, Whisper tiny.en, silero VAD, incremental);
- ``build_tts("local-hibari", voice)`` → :class:`HibariTTS` (``voice`` "heart", or "" for the default);
- ``build_tts("local-espeak", voice)`` → :class:`EspeakTTS` (``voice`` an espeak-ng name, "" → "en-us");
- ``load_vad()`` → the shared silero VAD (8 kHz).
Cloud providers ("deepgram", "cartesia", "openai", "elevenlabs", …) raise :class:`ProviderNotInstalledError`
naming the livekit plugin to install (optional extras, not part of the default install); anything else raises
``ValueError``. Builders are cheap: models load lazily on first use (or ``prewarm()``) and are shared process-wide.
Audio helpers for carrier media streams (μ-law, resampling) live in :mod:`voice.speech.audio`.
"""

from __future__ import annotations

from livekit.agents import stt, tts
from livekit.agents import vad as agents_vad

from .espeak_tts import EspeakTTS
from .hibari_tts import HibariTTS
from .vad import load_vad
from .whisper_stt import WhisperSTT

LOCAL_STT_PROVIDERS = ("local-whisper",)
LOCAL_TTS_PROVIDERS = ("local-hibari", "local-espeak")
CLOUD_PLUGINS = {
    "deepgram": "livekit-plugins-deepgram",
    "cartesia": "livekit-plugins-cartesia",
    "openai": "livekit-plugins-openai",
    "elevenlabs": "livekit-plugins-elevenlabs",
    "assemblyai": "livekit-plugins-assemblyai",
    "azure": "livekit-plugins-azure",
    "google": "livekit-plugins-google",
}


class ProviderNotInstalledError(RuntimeError):
    """A cloud speech provider was selected but its livekit-agents plugin is not installed."""


def _cloud(provider: str, kind: str) -> ProviderNotInstalledError:
    plugin = CLOUD_PLUGINS[provider]
    return ProviderNotInstalledError(
        f"{kind} provider {provider!r} needs the {plugin} plugin, which is not installed "
        f"(an optional extra); offline providers: "
        f"{', '.join(LOCAL_STT_PROVIDERS if kind == 'STT' else LOCAL_TTS_PROVIDERS)}"
    )


def build_stt(provider: str, vad: agents_vad.VAD | None = None) -> stt.STT:
    """An STT for ``provider`` (see the module docstring). ``vad`` decides where an utterance ends: pass the
    session's, so the transcript is final as soon as the turn is (the default waits silero's 0.55 s)."""
    name = provider.strip().lower()
    if name == "local-whisper":
        return WhisperSTT(vad=vad)
    if name in CLOUD_PLUGINS:
        raise _cloud(name, "STT")
    raise ValueError(f"unknown STT provider {provider!r}; offline: {', '.join(LOCAL_STT_PROVIDERS)}")


def build_tts(provider: str, voice: str = "") -> tts.TTS:
    """A TTS for ``provider`` speaking ``voice`` ("" = the provider's default voice)."""
    name = provider.strip().lower()
    if name == "local-hibari":
        return HibariTTS(voice=voice or "heart")
    if name == "local-espeak":
        return EspeakTTS(voice=voice or "en-us")
    if name in CLOUD_PLUGINS:
        raise _cloud(name, "TTS")
    raise ValueError(f"unknown TTS provider {provider!r}; offline: {', '.join(LOCAL_TTS_PROVIDERS)}")


__all__ = [
    "CLOUD_PLUGINS",
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
