"""What a media process's calls share: one Whisper behind a queue (finals batched, partials only when it is idle),
silero run inline on the event loop, and the sentences its voices have already said."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import cast

import numpy as np
import pytest
from livekit.agents import stt
from livekit.agents import vad as agents_vad

from tests.voice.test_speech import SENTENCES, frames_8k, phone_band, wer
from voice.speech import HibariTTS, WhisperSTT, load_vad
from voice.speech.audio import int16_to_float, resample
from voice.speech.pcm_cache import PcmCache, shared_pcm_cache
from voice.speech.vad import CallVAD
from voice.speech.whisper_engine import SAMPLE_RATE, PartialTranscriber, WhisperEngine, get_whisper_engine
from voice.speech.whisper_queue import WhisperQueue


@pytest.fixture(scope="module")
def whisper() -> WhisperEngine:
    return get_whisper_engine()


@pytest.fixture(scope="module")
def utterances() -> list[np.ndarray]:
    voice = HibariTTS(voice="heart", seed=0)
    return [resample(int16_to_float(phone_band(voice.synthesize_pcm(s))), 8000, 16000) for s in SENTENCES]


async def test_finals_waiting_together_are_one_batch_and_as_accurate(
    whisper: WhisperEngine, utterances: list[np.ndarray]
) -> None:
    queue = WhisperQueue(whisper)
    try:
        results = await asyncio.gather(*(queue.final(u) for u in utterances))
    finally:
        queue.close()
    errors = [wer(s, r.text) for s, r in zip(SENTENCES, results, strict=True)]
    assert queue.finals_run == len(utterances)
    assert queue.batches_run < len(utterances), queue.batches_run  # the first runs alone, the rest wait together
    assert np.mean(errors) <= 0.2 and max(errors) <= 0.25, [r.text for r in results]


async def test_a_partial_is_skipped_while_the_model_is_busy(
    whisper: WhisperEngine, utterances: list[np.ndarray]
) -> None:
    queue = WhisperQueue(whisper)
    try:
        final = queue.final(utterances[0])
        assert queue.busy
        assert queue.partial(utterances[1]) is None  # another call's final comes first
        assert (await final).text
        assert not queue.busy
        partial = queue.partial(utterances[1])  # idle: the partial runs
        assert partial is not None and (await partial).text
    finally:
        queue.close()
    assert (queue.partials_run, queue.partials_skipped) == (1, 1)


async def test_a_pause_is_transcribed_even_while_the_model_is_busy(
    whisper: WhisperEngine, utterances: list[np.ndarray]
) -> None:
    """The run at a pause is the utterance's final unless the caller goes on: it waits its turn like a final (and
    is sent as a preflight), where an ordinary partial would be skipped."""
    queue = WhisperQueue(whisper)
    engine = _Shared(whisper, queue)
    settled: list[str] = []
    partials: list[str] = []
    transcriber = PartialTranscriber(
        cast(WhisperEngine, engine),
        on_partial=lambda t: partials.append(t.text),
        on_settled=lambda t: settled.append(t.text),
    )
    try:
        other_call = queue.final(utterances[1])
        assert queue.busy
        transcriber.push(utterances[0], voiced=True)
        assert not transcriber.poll()  # still speaking, the model busy: the partial is skipped
        transcriber.push(np.zeros(SAMPLE_RATE // 5, dtype=np.float32), voiced=False)  # 200 ms pause
        assert transcriber.poll()  # the pause: queued behind the other call's final
        await other_call
        final = await transcriber.finalize()  # the VAD's end of speech: nothing left to transcribe
    finally:
        queue.close()
    assert transcriber.runs == 1 and queue.partials_skipped == 1
    assert settled == [final.text] and not partials
    assert wer(SENTENCES[0], final.text) <= 0.2


async def test_a_caller_who_goes_on_after_a_pause_gets_no_preflight_for_half_a_sentence(
    whisper: WhisperEngine, utterances: list[np.ndarray]
) -> None:
    queue = WhisperQueue(whisper)
    settled: list[str] = []
    partials: list[str] = []
    transcriber = PartialTranscriber(
        cast(WhisperEngine, _Shared(whisper, queue)),
        on_partial=lambda t: partials.append(t.text),
        on_settled=lambda t: settled.append(t.text),
    )
    try:
        transcriber.push(utterances[0], voiced=True)
        transcriber.push(np.zeros(SAMPLE_RATE // 5, dtype=np.float32), voiced=False)
        assert transcriber.poll()  # the pause's run starts...
        transcriber.push(utterances[1], voiced=True)  # ...and the caller goes on before it is done
        final = await transcriber.finalize()
    finally:
        queue.close()
    assert not settled  # the first half's transcript was an interim result, never a preflight
    assert wer(f"{SENTENCES[0]} {SENTENCES[1]}", final.text) <= 0.2, final.text


class _Shared:
    """A WhisperEngine seen through a queue of our own (the process-wide engine keeps its own queue)."""

    def __init__(self, engine: WhisperEngine, queue: WhisperQueue) -> None:
        self._engine, self.queue = engine, queue

    def __getattr__(self, name: str) -> object:
        return getattr(self._engine, name)


def test_a_sentence_said_again_is_replayed_exactly() -> None:
    voice, cache = HibariTTS(voice="heart", seed=0), shared_pcm_cache()
    text = "Replayed sentences sound the same."
    hits = cache.hits
    first = voice.synthesize_pcm(text)
    again = voice.synthesize_pcm(text)
    assert cache.hits == hits + 1 and np.array_equal(first, again)
    random_voice = HibariTTS(voice="heart", seed=None)  # random output is never kept
    assert random_voice.cache_key(text) is None


def test_the_cache_keeps_its_byte_bound() -> None:
    cache = PcmCache(max_bytes=10)
    cache.put("a", (b"12345",))
    cache.put("b", (b"1234",))
    cache.put("c", (b"123",))  # 12 bytes: the least recently used goes
    assert cache.get("a") is None and cache.get("b") == (b"1234",) and cache.size_bytes == 7
    cache.put("huge", (b"x" * 11,))  # larger than the whole cache: not kept
    assert cache.get("huge") is None


async def test_the_stt_hears_the_sessions_vad_stream(whisper: WhisperEngine) -> None:
    """With a CallVAD, the session's stream is the only silero run; the STT turns its events into transcripts."""
    voice = HibariTTS(voice="heart", seed=0)
    pcm = np.concatenate([phone_band(voice.synthesize_pcm(SENTENCES[0])), np.zeros(8000, dtype=np.int16)])
    vad = CallVAD(load_vad())
    session_vad = vad.stream()  # what the AgentSession runs
    stt_stream = WhisperSTT(engine=whisper, vad=vad).stream()
    vad_events: list[agents_vad.VADEvent] = []
    events: list[stt.SpeechEvent] = []

    async def session() -> None:
        async for ev in session_vad:
            vad_events.append(ev)

    async def collect() -> None:
        async for ev in stt_stream:
            events.append(ev)

    tasks = [asyncio.create_task(session()), asyncio.create_task(collect())]
    await asyncio.sleep(0)
    started = time.perf_counter()
    for i, frame in enumerate(frames_8k(pcm)):
        session_vad.push_frame(frame)
        stt_stream.push_frame(frame)
        await asyncio.sleep(max(0.0, started + (i + 1) * 0.02 - time.perf_counter()))
    stt_stream.end_input()
    await tasks[1]
    session_vad.end_input()
    await tasks[0]
    await stt_stream.aclose()
    await session_vad.aclose()
    assert len(vad._streams) <= 1  # the STT made no stream of its own
    types = [e.type for e in events]
    assert types[0] == stt.SpeechEventType.START_OF_SPEECH
    assert types[-2:] == [stt.SpeechEventType.FINAL_TRANSCRIPT, stt.SpeechEventType.END_OF_SPEECH]
    assert wer(SENTENCES[0], events[-2].alternatives[0].text) <= 0.2
    assert any(e.type == agents_vad.VADEventType.END_OF_SPEECH for e in vad_events)


async def test_vad_inference_runs_on_the_silero_thread_off_the_event_loop() -> None:
    """Neither inline on the loop (a starved loop delays the calls' heartbeats) nor in the default executor (where it
    queued behind Whisper)."""
    stream = load_vad().stream()
    try:
        ran_on = await stream._loop.run_in_executor(None, lambda: threading.current_thread().name)  # type: ignore[attr-defined]
        assert ran_on.startswith("silero") and ran_on != threading.current_thread().name
    finally:
        await stream.aclose()
