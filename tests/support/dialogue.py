"""A two-speaker phone conversation for recording tests and benches: hibari speaks a script, each turn goes
through the phone band (μ-law 8 kHz) and into the stereo recorder the way a media-stream call feeds it.
(No numbers in the script: Whisper writes them as digits.)"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from voice.recording.stereo import RecordingSummary, Side, StereoRecorder
from voice.speech.audio import pcm16_to_ulaw8k, ulaw8k_to_pcm16
from voice.speech.hibari_tts import HibariTTS

SCRIPT: list[tuple[Side, str]] = [
    (Side.AGENT, "Hello, thank you for calling the garden center. How can I help you today?"),
    (Side.CALLER, "Hi, I would like to know when you are open on the weekend."),
    (Side.AGENT, "We are open on Saturday and Sunday from early in the morning until late in the afternoon."),
    (Side.CALLER, "Great. Do you also sell fruit trees and roses?"),
    (Side.AGENT, "Yes, we have apple trees, cherry trees and many kinds of roses in stock right now."),
    (Side.CALLER, "Can I park my car near the entrance?"),
    (Side.AGENT, "There is a free parking lot right behind the main building."),
    (Side.CALLER, "Thank you very much, that is all I needed."),
]

LONG_SCRIPT: list[tuple[Side, str]] = [
    *SCRIPT[:-1],
    (Side.CALLER, "One more question. Do you deliver large plants to my house?"),
    (Side.AGENT, "We deliver anywhere in the city, and delivery is free for large orders."),
    (Side.CALLER, "How long does a delivery usually take?"),
    (Side.AGENT, "Most deliveries arrive within a few working days after you place the order."),
    (Side.CALLER, "Do you also offer advice on planting and watering?"),
    (Side.AGENT, "Our staff can help you choose the right soil and explain how often to water each plant."),
    (Side.CALLER, "Thank you very much, that is all I needed. Goodbye."),
    (Side.AGENT, "You are welcome. Have a lovely day and enjoy your garden."),
]


@cache
def _voice(speed: float) -> HibariTTS:
    return HibariTTS(voice="heart", seed=0, speed=speed)


@cache
def phone_speech(text: str, speed: float) -> npt.NDArray[np.int16]:
    """``text`` spoken by hibari, through μ-law at 8 kHz (what a carrier media stream carries)."""
    return ulaw8k_to_pcm16(pcm16_to_ulaw8k(_voice(speed).synthesize_pcm(text), 24000))


@dataclass
class Dialogue:
    summary: RecordingSummary
    reference: dict[Side, str]  # each speaker's words, in order


def record_dialogue(path: Path, script: list[tuple[Side, str]] = SCRIPT, *, gap: float = 0.7) -> Dialogue:
    """Record ``script`` as a call: turns ``gap`` seconds apart, 20 ms frames, the caller's stream continuous."""
    recorder = StereoRecorder(path)
    recorder.start(at=0.0)
    at = 0.5
    silence = np.zeros(160, dtype=np.int16)
    for side, text in script:
        speech = phone_speech(text, 1.0 if side == Side.CALLER else 1.1)
        end = at + len(speech) / 8000
        for i in range(0, len(speech), 160):
            t = at + i / 8000
            recorder.push(side, speech[i : i + 160].tobytes(), t)
            if side == Side.AGENT:
                recorder.push(Side.CALLER, silence.tobytes(), t)  # the caller's stream never stops
        at = end + gap
    summary = recorder.close(at=at)
    reference = {side: " ".join(text for s, text in script if s == side) for side in Side}
    return Dialogue(summary, reference)


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()


def wer(reference: str, hypothesis: str) -> float:
    ref, hyp = words(reference), words(hypothesis)
    d = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, d[0] = d[0], i
        for j, h in enumerate(hyp, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
    return d[len(hyp)] / max(1, len(ref))
