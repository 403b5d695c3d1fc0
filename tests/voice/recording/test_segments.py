"""Offline speech segmentation (silero) and batched Whisper over real speech."""

from __future__ import annotations

import numpy as np

from activities.transcription import Utterance, batches, strip_echo
from tests.support.dialogue import phone_speech, wer
from voice.recording.segments import speech_segments
from voice.speech.audio import resample
from voice.speech.whisper_engine import get_whisper_engine, window_frames

FIRST = "Do you also sell fruit trees and roses?"
SECOND = "There is a free parking lot right behind the main building."


def test_segments_find_each_utterance_and_skip_silence() -> None:
    first, second = phone_speech(FIRST, 1.0), phone_speech(SECOND, 1.0)
    gap = np.zeros(8000 * 2, dtype=np.int16)
    line = np.concatenate([gap, first, gap, second, gap])
    segments = speech_segments(line)
    assert len(segments) == 2
    starts = (len(gap), 2 * len(gap) + len(first))
    for segment, start, speech in zip(segments, starts, (first, second), strict=True):
        assert start - 0.35 * 8000 <= segment.start <= start + 0.35 * 8000
        assert abs(segment.end - (start + len(speech))) <= 0.5 * 8000
    assert speech_segments(gap) == []


def test_long_speech_is_split_under_the_limit() -> None:
    speech = np.concatenate([phone_speech(SECOND, 1.0)] * 4)
    segments = speech_segments(speech, max_seconds=5.0)
    assert len(segments) >= 2 and all(s.end - s.start <= 5.0 * 8000 for s in segments)


def test_a_batch_transcribes_like_single_calls() -> None:
    engine = get_whisper_engine()
    audios = [resample(phone_speech(FIRST, speed).astype(np.float32) / 32768.0, 8000, 16000) for speed in (1.0, 1.1)]
    assert len({window_frames(len(a)) for a in audios}) == 1  # a batch shares one window
    batch = engine.transcribe_batch([*audios, np.zeros(800, np.float32)], beam_size=5)
    assert [wer(FIRST, t.text) for t in batch[:2]] == [0.0, 0.0]
    assert batch[2].text == ""
    assert [t.text for t in batch[:2]] == [engine.transcribe(a, beam_size=5).text for a in audios]


def test_whispers_echo_is_cut_and_real_repeats_kept() -> None:
    echo = "There is a free parking lot right behind the main building. There's a free parking"
    assert strip_echo(echo) == "There is a free parking lot right behind the main building."
    tail = "We deliver anywhere, and delivery is free for large orders. And delivery is free for large orders"
    assert strip_echo(tail) == "We deliver anywhere, and delivery is free for large orders."
    for kept in ("Yes. Yes.", "Hello there. How are you?", "I said no. I said no, thank you very much."):
        assert strip_echo(kept) == kept


def test_batches_only_group_utterances_of_one_window() -> None:
    short = [Utterance(0, i * 8000, i * 8000 + 12000) for i in range(3)]  # 1.5 s: a 2 s window
    long = [Utterance(1, 0, 8000 * 10)]  # 10 s: an 11 s window
    groups = batches([long[0], *short], 2)
    assert sorted(len(g) for g in groups) == [1, 1, 2]
    assert all(len({window_frames((u.end - u.start) * 2) for u in g}) == 1 for g in groups)
