"""Answering-machine detection over synthesised calls: hibari speaks people's greetings and voicemail greetings
(with beeps) through the phone band; the real silero VAD and the beep tracker decide. The whole set must be right,
at 8 and 16 kHz, with decisions in the time a caller would tolerate."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from models.enums import AnsweredBy
from tests.support.amd_corpus import (
    VOICEMAIL_GREETINGS,
    AmdCase,
    amd_cases,
    at_rate,
    beep,
    line_noise,
    speech,
)
from voice.amd.detector import AmdParams, AnsweringMachineDetector
from voice.amd.silero_frames import SileroFrames
from voice.amd.tone import BeepTracker


@pytest.fixture(scope="module")
def cases() -> list[AmdCase]:
    return amd_cases()


def detect(pcm: np.ndarray, rate: int = 8000, params: AmdParams | None = None) -> AnsweringMachineDetector:
    """Feed ``pcm`` in 20 ms chunks, as a media stream delivers it, until the detector has nothing left to decide."""
    vad = SileroFrames(rate)
    detector = AnsweringMachineDetector(rate, vad.window, vad.probability, params)
    step = rate // 50
    for i in range(0, len(pcm), step):
        detector.push(pcm[i : i + step])
        if detector.cue is not None or (detector.decision and detector.decision.answered_by is not AnsweredBy.MACHINE):
            break
    return detector


@pytest.mark.parametrize("rate", [8000, 16000])
def test_the_whole_synthesised_set_is_classified_right(cases: list[AmdCase], rate: int) -> None:
    results = []
    for case in cases:
        detector = detect(at_rate(case.pcm, rate), rate)
        decision = detector.decision
        assert decision is not None, case.name
        results.append((case, decision))
    accuracy = sum(d.answered_by is c.expected for c, d in results) / len(results)
    human_ms = [d.decision_ms for c, d in results if c.expected is AnsweredBy.HUMAN]
    machine_ms = [d.decision_ms for c, d in results if c.expected is AnsweredBy.MACHINE]
    print(
        f"\nAMD at {rate} Hz: accuracy {accuracy:.0%} on {len(results)} calls; decision ms "
        f"humans median {statistics.median(human_ms):.0f} max {max(human_ms)}, "
        f"machines median {statistics.median(machine_ms):.0f} max {max(machine_ms)}"
    )
    wrong = [(c.name, d.answered_by.value, d.reason) for c, d in results if d.answered_by is not c.expected]
    assert not wrong, wrong
    for case, decision in results:
        if case.expected is AnsweredBy.HUMAN:
            # A person is recognised within a second and a half of finishing their hello.
            assert decision.reason == "short greeting"
            assert case.greeting_end_ms < decision.decision_ms <= case.greeting_end_ms + 1500, case.name
        else:
            # A machine is recognised while its greeting is still playing, long before the beep.
            assert decision.reason == "long greeting" and decision.decision_ms < case.greeting_end_ms, case.name


def test_the_beep_is_found_where_it_ends(cases: list[AmdCase]) -> None:
    for case in (c for c in cases if c.expected is AnsweredBy.MACHINE):
        detector = detect(case.pcm)
        assert detector.cue is not None and detector.cue.beep is not None, case.name
        assert case.beep_end_ms is not None
        assert abs(detector.cue.at_ms - case.beep_end_ms) <= 64, (case.name, detector.cue, case.beep_end_ms)


def test_speech_alone_never_sounds_like_a_beep(cases: list[AmdCase]) -> None:
    for case in cases:
        speech_only = (case.pcm[: case.greeting_end_ms * 8] / 32768).astype(np.float32)
        tracker = BeepTracker(8000, 256)
        for i in range(0, len(speech_only) - 256, 256):
            assert tracker.push(speech_only[i : i + 256], i / 8) is None, case.name
            assert not tracker.in_beep, (case.name, i / 8)


def test_a_greeting_without_a_beep_is_ready_for_a_message_once_it_falls_silent() -> None:
    spoken = speech(VOICEMAIL_GREETINGS[0])
    pcm = np.concatenate([line_noise(500, 1), spoken, line_noise(4000, 2)])
    detector = detect(pcm)
    assert detector.decision is not None and detector.decision.answered_by is AnsweredBy.MACHINE
    greeting_end = 500 + len(spoken) // 8
    assert detector.cue is not None and detector.cue.beep is None
    assert greeting_end + 1500 <= detector.cue.at_ms <= greeting_end + 2600


def test_silence_is_unknown_and_a_bare_beep_is_a_machine() -> None:
    silent = detect(line_noise(6000, 3))
    assert silent.decision is not None and (silent.decision.answered_by, silent.decision.reason) == (
        AnsweredBy.UNKNOWN,
        "silence",
    )
    assert silent.decision.decision_ms == pytest.approx(4000, abs=40)
    tone = detect(np.concatenate([line_noise(800, 4), beep(1000.0, 600), line_noise(3000, 5)]))
    assert tone.decision is not None and (tone.decision.answered_by, tone.decision.reason) == (
        AnsweredBy.MACHINE,
        "beep",
    )
    assert tone.cue is not None and tone.cue.beep is not None and abs(tone.cue.at_ms - 1400) <= 64
