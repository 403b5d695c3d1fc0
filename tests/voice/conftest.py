"""Fixtures the voice tests share: media processes, the caller's voice (speech synthesised as a caller would say
it) and the test's ears (Whisper, to hear what the agent said)."""

import pytest

from tests.support.media_processes import media_processes
from voice.speech import HibariTTS
from voice.speech.whisper_engine import WhisperEngine, get_whisper_engine

__all__ = ["media_processes"]


@pytest.fixture(scope="module")
def caller_voice() -> HibariTTS:
    tts = HibariTTS(voice="heart", seed=0)
    tts.prewarm()
    return tts


@pytest.fixture(scope="module")
def ears() -> WhisperEngine:
    return get_whisper_engine()
