"""A synthesised answering-machine test set: people picking up ("Hello?", "Hi, this is Sam") and voicemail greetings
followed by a beep, spoken by hibari (the bundled TTS), through the phone band (μ-law 8 kHz) as a carrier media
stream carries them, with a moment of line noise before the callee speaks and silence after, as a real answer has.

Each case is what the callee's side of the line sends from the moment the call is answered."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

from models.enums import AnsweredBy
from voice.speech.audio import pcm16_to_ulaw8k, resample_int16, ulaw8k_to_pcm16
from voice.speech.hibari_tts import HibariTTS

RATE = 8000

HUMAN_GREETINGS = [
    "Hello?",
    "Hi, this is Sam.",
    "Yeah, hello?",
    "Hello, who is this?",
    "Good morning, Sam speaking.",
    "Hi there.",
]
VOICEMAIL_GREETINGS = [
    "Hi, you've reached Sam. I can't take your call right now. Please leave a message after the tone.",
    "The person you are calling is not available. Please record your message after the beep. "
    "When you are finished, hang up.",
    "Hello, this is the Miller family. We're not home at the moment, so leave your name and number and "
    "we will call you back.",
    "Thank you for calling the garden center. Our office is closed. Please leave a message and we will "
    "return your call as soon as possible.",
    "Hey, it's Alex. Sorry I missed you. Leave me a message and I'll get back to you.",
    "You have reached the voicemail of Jordan Lee. Please leave a detailed message after the tone.",
]
BEEPS_HZ = [1000.0, 1400.0, 850.0, 1000.0, 1800.0, 440.0]  # one per voicemail greeting


@dataclass(frozen=True)
class AmdCase:
    name: str
    expected: AnsweredBy
    pcm: npt.NDArray[np.int16]  # 8 kHz, from the answer
    speech_start_ms: int
    greeting_end_ms: int  # end of the greeting's speech
    beep_end_ms: int | None  # end of the beep (voicemail only)


@cache
def _voice(speed: float) -> HibariTTS:
    return HibariTTS(voice="heart", seed=0, speed=speed)


def phone_band(pcm24k: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    return ulaw8k_to_pcm16(pcm16_to_ulaw8k(pcm24k, 24000))


def line_noise(ms: int, seed: int, level: float = 30.0) -> npt.NDArray[np.int16]:
    """Quiet hiss (about -60 dBFS): a phone line is never digital silence."""
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(0.0, level, RATE * ms // 1000), -32768, 32767).astype(np.int16)


def beep(frequency_hz: float, ms: int = 500, amplitude: float = 0.3) -> npt.NDArray[np.int16]:
    """A voicemail beep: a pure tone with 5 ms ramps."""
    n = RATE * ms // 1000
    t = np.arange(n) / RATE
    tone = amplitude * np.sin(2 * np.pi * frequency_hz * t)
    ramp = min(n // 2, RATE // 200)
    envelope = np.ones(n)
    envelope[:ramp] = np.linspace(0, 1, ramp)
    envelope[-ramp:] = np.linspace(1, 0, ramp)
    return (tone * envelope * 32767).astype(np.int16)


def speech(text: str, speed: float = 1.0) -> npt.NDArray[np.int16]:
    """``text`` spoken by hibari through the phone band (blocking: call from a thread in async code)."""
    return phone_band(_voice(speed).synthesize_pcm(text))


def _join(*parts: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    return np.concatenate(parts).astype(np.int16)


def human_case(
    index: int, text: str, *, answer_ms: int = 400, after_ms: int = 4000, speed: float = 1.0, noise: float = 30.0
) -> AmdCase:
    spoken = speech(text, speed)
    lead = line_noise(answer_ms, seed=index, level=noise)
    pcm = _join(lead, _noisy(spoken, noise, 50 + index), line_noise(after_ms, seed=100 + index, level=noise))
    end = answer_ms + len(spoken) * 1000 // RATE
    return AmdCase(f"human-{index}", AnsweredBy.HUMAN, pcm, answer_ms, end, None)


def voicemail_case(
    index: int,
    text: str,
    beep_hz: float,
    *,
    answer_ms: int = 700,
    gap_ms: int = 400,
    after_ms: int = 3000,
    speed: float = 1.05,
    noise: float = 30.0,
) -> AmdCase:
    spoken = _noisy(speech(text, speed), noise, 150 + index)
    tone = _noisy(beep(beep_hz), noise, 250 + index)
    lead = line_noise(answer_ms, seed=200 + index, level=noise)
    gap, after = line_noise(gap_ms, seed=300 + index, level=noise), line_noise(after_ms, seed=400 + index, level=noise)
    pcm = _join(lead, spoken, gap, tone, after)
    end = answer_ms + len(spoken) * 1000 // RATE
    beep_end = end + gap_ms + len(tone) * 1000 // RATE
    return AmdCase(f"voicemail-{index}", AnsweredBy.MACHINE, pcm, answer_ms, end, beep_end)


def _noisy(pcm: npt.NDArray[np.int16], noise: float, seed: int) -> npt.NDArray[np.int16]:
    """``pcm`` with the line's hiss under it (the hiss runs through speech too)."""
    hiss = np.random.default_rng(seed).normal(0.0, noise, len(pcm))
    return np.clip(pcm.astype(np.float64) + hiss, -32768, 32767).astype(np.int16)


def amd_cases(*, speed: float = 1.0, noise: float = 30.0) -> list[AmdCase]:
    """The whole set: six people, six voicemail greetings with beeps (blocking: synthesises ~1 min of speech).
    ``speed`` scales how fast everyone talks; ``noise`` is the line's hiss (standard deviation, int16 units:
    30 ≈ -60 dBFS, 300 ≈ -40 dBFS)."""
    humans = [human_case(i, text, speed=speed, noise=noise) for i, text in enumerate(HUMAN_GREETINGS)]
    pairs = enumerate(zip(VOICEMAIL_GREETINGS, BEEPS_HZ, strict=True))
    machines = [voicemail_case(i, text, hz, speed=1.05 * speed, noise=noise) for i, (text, hz) in pairs]
    return humans + machines


def at_rate(pcm: npt.NDArray[np.int16], rate: int) -> npt.NDArray[np.int16]:
    return pcm if rate == RATE else resample_int16(pcm, RATE, rate)
