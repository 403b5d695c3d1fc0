"""Real speech for recording tests: hibari's bundled voice, at phone rate (8 kHz)."""

from __future__ import annotations

from functools import cache

import numpy as np
import numpy.typing as npt

from voice.speech.audio import resample_int16
from voice.speech.hibari_tts import HibariTTS


@cache
def _tts(speed: float) -> HibariTTS:
    return HibariTTS(voice="heart", seed=0, speed=speed)


@cache
def speak(text: str, speed: float = 1.0) -> npt.NDArray[np.int16]:
    """``text`` spoken at 8 kHz, int16 (the caller speaks at 1.0, the agent a little faster)."""
    return resample_int16(_tts(speed).synthesize_pcm(text), 24000, 8000)


def frames(pcm: npt.NDArray[np.int16], ms: int = 20) -> list[npt.NDArray[np.int16]]:
    step = 8 * ms
    return [pcm[i : i + step] for i in range(0, len(pcm), step)]
