"""The offline speech layer on real audio: TTS → phone band (μ-law 8 kHz) → VAD → Whisper, with no network at all.

Figures (model load, STT time full window vs right-sized vs incremental tail, TTS time to first audio, WER) are
printed (run with ``-s`` to see them); assertions are on behaviour, never on timings.
"""

from __future__ import annotations

import asyncio
import re
import time

import numpy as np
import pytest
from livekit import rtc
from livekit.agents import stt
from livekit.agents import vad as agents_vad

from voice.speech import (
    EspeakTTS,
    HibariTTS,
    ProviderNotInstalledError,
    WhisperSTT,
    build_stt,
    build_tts,
    load_vad,
)
from voice.speech import vad as vad_module
from voice.speech.audio import (
    Resampler,
    UlawStreamDecoder,
    UlawStreamEncoder,
    float_to_int16,
    int16_to_float,
    pcm16_to_ulaw8k,
    resample,
    ulaw8k_to_pcm16,
    ulaw_decode,
    ulaw_encode,
)
from voice.speech.pcm_cache import DEFAULT_MAX_BYTES, configure_pcm_cache
from voice.speech.whisper_engine import WhisperEngine, get_whisper_engine, strip_loop

SENTENCES = [
    "What are your opening hours on Saturday?",
    "I would like to speak with someone about my order.",
    "Please transfer me to the billing department.",
]


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


def phone_band(pcm24k: np.ndarray) -> np.ndarray:
    """24 kHz int16 → μ-law 8 kHz (what Twilio carries) → int16 8 kHz."""
    return ulaw8k_to_pcm16(pcm16_to_ulaw8k(pcm24k, 24000))


def frames_8k(pcm8k: np.ndarray, ms: int = 20) -> list[rtc.AudioFrame]:
    n = 8000 * ms // 1000
    pcm8k = np.concatenate([pcm8k, np.zeros((-len(pcm8k)) % n, dtype=np.int16)])
    return [
        rtc.AudioFrame(data=pcm8k[i : i + n].tobytes(), sample_rate=8000, num_channels=1, samples_per_channel=n)
        for i in range(0, len(pcm8k), n)
    ]


# --------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def whisper() -> WhisperEngine:
    started = time.perf_counter()
    engine = get_whisper_engine()
    print(f"\n[speech] whisper tiny.en load {engine.load_seconds:.2f}s, load+warm {time.perf_counter() - started:.2f}s")
    return engine


@pytest.fixture(scope="module")
def hibari() -> HibariTTS:
    tts = HibariTTS(voice="heart", seed=0)
    tts.prewarm()
    print(f"\n[speech] hibari load+warm {tts.engine.load_seconds:.2f}s")
    return tts


@pytest.fixture(scope="module")
def espeak() -> EspeakTTS:
    tts = EspeakTTS()
    tts.prewarm()
    return tts


@pytest.fixture(scope="module")
def vad() -> agents_vad.VAD:
    v = load_vad(sample_rate=8000)
    print(f"\n[speech] silero VAD load {sum(vad_module.load_seconds.values()):.3f}s")
    return v


@pytest.fixture(scope="module")
def phone_utterances(hibari: HibariTTS) -> list[np.ndarray]:
    return [phone_band(hibari.synthesize_pcm(s)) for s in SENTENCES]


# --------------------------------------------------------------------------------------------- audio
def test_ulaw_round_trip_error_bound() -> None:
    x = np.arange(-32768, 32768, dtype=np.int16)
    encoded = ulaw_encode(x)
    assert len(encoded) == len(x)
    back = ulaw_decode(encoded).astype(np.int64)
    err = np.abs(back - x.astype(np.int64))
    mag = np.abs(x.astype(np.int64))
    unclipped = mag < 32124
    assert np.all(err[unclipped] <= mag[unclipped] / 32 + 8)  # half a quantisation step of the segment
    assert err.max() <= 644  # clipping at ±32124
    assert ulaw_encode(np.array([0, -1, 32767, -32768], dtype=np.int16)) == bytes([0xFF, 0x7E, 0x80, 0x00])
    assert ulaw_decode(bytes([0xFF, 0x7F, 0x80, 0x00])).tolist() == [0, 0, 32124, -32124]


@pytest.mark.parametrize(("src", "dst"), [(24000, 8000), (24000, 16000), (8000, 16000), (22050, 24000)])
def test_resampling_keeps_the_voice_band_and_streams_seamlessly(src: int, dst: int) -> None:
    t = np.arange(src) / src
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    out = resample(tone, src, dst)
    assert len(out) == dst
    ref = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(dst) / dst)
    assert np.abs(out[64:-64] - ref[64:-64]).max() < 1e-3
    rs = Resampler(src, dst)
    streamed = np.concatenate([rs.push(tone[i : i + 331]) for i in range(0, len(tone), 331)] + [rs.flush()])
    d = rs.delay_out_samples
    assert np.abs(streamed[d : d + dst] - out).max() < 1e-5


def test_downsampling_removes_what_the_phone_band_cannot_carry() -> None:
    t = np.arange(24000) / 24000
    high = (0.5 * np.sin(2 * np.pi * 6000 * t)).astype(np.float32)  # above 4 kHz: would alias to 2 kHz
    assert np.sqrt(np.mean(resample(high, 24000, 8000)[64:-64] ** 2)) < 1e-3
    pcm = float_to_int16(high)
    assert np.abs(int16_to_float(pcm) - high).max() < 1e-4


def test_ulaw_stream_codec_matches_one_shot() -> None:
    t = np.arange(24000) / 24000
    pcm = float_to_int16(0.3 * np.sin(2 * np.pi * 440 * t))
    enc = UlawStreamEncoder(24000)
    streamed = b"".join(enc.encode(pcm[i : i + 480].tobytes()) for i in range(0, len(pcm), 480)) + enc.flush()
    assert abs(len(streamed) - 8000) <= 16
    dec = UlawStreamDecoder(16000)
    back = np.concatenate([dec.decode(streamed[i : i + 160]) for i in range(0, len(streamed), 160)])
    assert abs(len(back) - 2 * len(streamed)) <= 32
    ref = ulaw_decode(pcm16_to_ulaw8k(pcm, 24000)).astype(np.int64)
    one_shot_energy = np.sqrt(np.mean(ref.astype(np.float64) ** 2))
    assert abs(np.sqrt(np.mean(back.astype(np.float64) ** 2)) - one_shot_energy) < 0.05 * one_shot_energy


# --------------------------------------------------------------------------------------------- TTS
@pytest.mark.parametrize("engine", ["hibari", "espeak"])
def test_tts_trims_leading_silence(engine: str, request: pytest.FixtureRequest) -> None:
    tts = request.getfixturevalue(engine)
    pcm = tts.synthesize_pcm("Hello there. Thanks for calling.")
    loud = np.flatnonzero(np.abs(pcm) >= 328)  # -40 dBFS
    assert loud.size > 0
    first_ms = loud[0] / 24.0
    print(f"\n[speech] {engine}: first non-silent sample at {first_ms:.1f} ms")
    assert first_ms <= 30.0


async def test_closing_a_reply_early_stops_synthesis(hibari: HibariTTS) -> None:
    """Barge-in: closing the stream after the first frame returns at once and nothing more is produced."""
    stream = hibari.synthesize("One sentence here. " * 40)
    async for _ev in stream:
        break
    started = time.perf_counter()
    await stream.aclose()
    assert time.perf_counter() - started < 1.0


def test_hibari_is_deterministic(hibari: HibariTTS) -> None:
    configure_pcm_cache(0)  # synthesised twice, not replayed
    try:
        a = hibari.synthesize_pcm("Same text, same audio.")
        b = hibari.synthesize_pcm("Same text, same audio.")
    finally:
        configure_pcm_cache(DEFAULT_MAX_BYTES)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("engine", ["hibari", "espeak"])
async def test_streaming_tts_time_to_first_audio(engine: str, request: pytest.FixtureRequest) -> None:
    tts = request.getfixturevalue(engine)
    text = "Our office opens at nine in the morning. It closes at five in the afternoon. Anything else?"
    started = time.perf_counter()
    first: float | None = None
    frames = []
    async for ev in tts.synthesize(text):
        first = first if first is not None else time.perf_counter() - started
        frames.append(ev.frame)
    total = time.perf_counter() - started
    assert first is not None and frames
    assert all(f.sample_rate == 24000 and f.num_channels == 1 for f in frames)
    audio_s = sum(f.samples_per_channel for f in frames) / 24000

    stream = tts.stream()
    started = time.perf_counter()
    for token in ["Hello", " there,", " thanks", " for", " calling.", " How", " can", " I", " help", " you", " today?"]:
        stream.push_text(token)
    stream.end_input()
    stream_first: float | None = None
    async for _ev in stream:
        stream_first = stream_first if stream_first is not None else time.perf_counter() - started
    await stream.aclose()
    assert stream_first is not None
    print(
        f"\n[speech] {engine}: synthesize() first audio {first * 1000:.0f} ms, total {total * 1000:.0f} ms "
        f"for {audio_s:.2f} s; stream() first audio {stream_first * 1000:.0f} ms"
    )


# --------------------------------------------------------------------------------------------- STT
async def test_phone_band_round_trip_hibari(whisper: WhisperEngine, phone_utterances: list[np.ndarray]) -> None:
    stt_ = WhisperSTT(engine=whisper)
    errors = []
    for sentence, pcm8k in zip(SENTENCES, phone_utterances, strict=True):
        started = time.perf_counter()
        event = await stt_.recognize(frames_8k(pcm8k))
        elapsed = time.perf_counter() - started
        assert event.type == stt.SpeechEventType.FINAL_TRANSCRIPT
        text = event.alternatives[0].text
        errors.append(wer(sentence, text))
        full = whisper.transcribe(resample(int16_to_float(pcm8k), 8000, 16000), full_window=True)
        print(
            f"\n[speech] {len(pcm8k) / 8000:.2f} s utterance: recognize() {elapsed * 1000:.0f} ms "
            f"(stock 30 s window {full.elapsed * 1000:.0f} ms) → {text!r} WER {errors[-1]:.2f}"
        )
    assert np.mean(errors) <= 0.2
    assert max(errors) <= 0.25


async def test_phone_band_round_trip_espeak(whisper: WhisperEngine, espeak: EspeakTTS) -> None:
    """espeak is the robotic fallback: Whisper tiny.en understands it well at 16 kHz, less so in the phone band."""
    stt_ = WhisperSTT(engine=whisper)
    phone_errors, wide_errors = [], []
    for sentence in SENTENCES:
        pcm24k = espeak.synthesize_pcm(sentence)
        text = (await stt_.recognize(frames_8k(phone_band(pcm24k)))).alternatives[0].text
        phone_errors.append(wer(sentence, text))
        wide = whisper.transcribe(resample(int16_to_float(pcm24k), 24000, 16000)).text
        wide_errors.append(wer(sentence, wide))
        print(f"\n[speech] espeak → phone band {text!r} WER {phone_errors[-1]:.2f}; 16 kHz {wide!r}")
    assert np.mean(wide_errors) <= 0.25
    assert np.mean(phone_errors) <= 0.5


async def said_in_real_time(stream: stt.RecognizeStream, pcm8k: np.ndarray) -> list[stt.SpeechEvent]:
    """Push ``pcm8k`` as a caller's line does (one 20 ms frame every 20 ms), then end; the stream's events."""
    events: list[stt.SpeechEvent] = []

    async def collect() -> None:
        async for ev in stream:
            events.append(ev)

    collector = asyncio.create_task(collect())
    started = time.perf_counter()
    for i, frame in enumerate(frames_8k(pcm8k)):
        stream.push_frame(frame)
        await asyncio.sleep(max(0.0, started + (i + 1) * 0.02 - time.perf_counter()))
    stream.end_input()
    await collector
    await stream.aclose()
    return events


async def test_streaming_stt_transcribes_while_the_caller_speaks(
    whisper: WhisperEngine, vad: agents_vad.VAD, phone_utterances: list[np.ndarray]
) -> None:
    """Frames arrive in real time (20 ms each); by the VAD's end of speech the transcript is (nearly) ready."""
    stt_ = WhisperSTT(engine=whisper, vad=vad)
    stream = stt_.stream()
    events = await said_in_real_time(stream, np.concatenate([phone_utterances[0], np.zeros(8000, dtype=np.int16)]))
    types = [e.type for e in events]
    assert types[0] == stt.SpeechEventType.START_OF_SPEECH
    assert types[-2:] == [stt.SpeechEventType.FINAL_TRANSCRIPT, stt.SpeechEventType.END_OF_SPEECH]
    final = events[-2].alternatives[0].text
    assert wer(SENTENCES[0], final) <= 0.2
    interims = [e for e in events if e.type == stt.SpeechEventType.INTERIM_TRANSCRIPT]
    assert interims, "no partial transcript while speaking"
    # The pause's run is the final transcript, sent as a preflight before the VAD's end of speech.
    preflights = [e for e in events if e.type == stt.SpeechEventType.PREFLIGHT_TRANSCRIPT]
    assert preflights, types
    assert preflights[-1].alternatives[0].text == final
    assert types.index(stt.SpeechEventType.PREFLIGHT_TRANSCRIPT) < types.index(stt.SpeechEventType.FINAL_TRANSCRIPT)
    assert stream.last_final_latency is not None
    print(
        f"\n[speech] streaming STT: {stream.last_partial_runs} whisper runs, {len(interims)} interim results; "
        f"end of speech → final transcript {stream.last_final_latency * 1000:.0f} ms (tail work only); final {final!r}"
    )


async def test_without_interim_results_whisper_runs_once_at_the_pause(
    whisper: WhisperEngine, vad: agents_vad.VAD, phone_utterances: list[np.ndarray]
) -> None:
    """A phone call's STT: nobody reads interim results, so the only run is the pause's, sent as the preflight and
    reused as the final."""
    stream = WhisperSTT(engine=whisper, vad=vad, interim_results=False).stream()
    events = await said_in_real_time(stream, np.concatenate([phone_utterances[0], np.zeros(8000, dtype=np.int16)]))
    types = [e.type for e in events]
    assert types == [
        stt.SpeechEventType.START_OF_SPEECH,
        stt.SpeechEventType.PREFLIGHT_TRANSCRIPT,
        stt.SpeechEventType.FINAL_TRANSCRIPT,
        stt.SpeechEventType.END_OF_SPEECH,
    ], types
    assert events[1].alternatives[0].text == events[2].alternatives[0].text
    assert wer(SENTENCES[0], events[2].alternatives[0].text) <= 0.2
    assert stream.last_partial_runs == 1 and stream.last_final_latency is not None
    assert stream.last_final_latency < 0.05  # the final was the pause's run, already done


def test_strip_loop_cuts_only_whole_utterance_repeats() -> None:
    phrase = [10, 11, 12, 13, 14]
    assert strip_loop(phrase + phrase + phrase[:2]) == phrase
    assert strip_loop(phrase) == phrase
    genuine = [1, 1, 2, 3, 4, 2, 3, 4]  # "yes, yes, that is right, that is right"
    assert strip_loop(genuine) == genuine


# --------------------------------------------------------------------------------------------- VAD
async def _vad_events(vad: agents_vad.VAD, pcm8k: np.ndarray) -> list[agents_vad.VADEventType]:
    stream = vad.stream()
    for frame in frames_8k(pcm8k):
        stream.push_frame(frame)
    stream.end_input()
    kinds: list[agents_vad.VADEventType] = [
        ev.type async for ev in stream if ev.type != agents_vad.VADEventType.INFERENCE_DONE
    ]
    await stream.aclose()
    return kinds


async def test_vad_finds_speech_in_speech(vad: agents_vad.VAD, phone_utterances: list[np.ndarray]) -> None:
    pcm = np.concatenate([np.zeros(4000, dtype=np.int16), phone_utterances[1], np.zeros(8000, dtype=np.int16)])
    kinds = await _vad_events(vad, pcm)
    assert kinds[0] == agents_vad.VADEventType.START_OF_SPEECH
    assert agents_vad.VADEventType.END_OF_SPEECH in kinds


async def test_vad_finds_nothing_in_silence_or_line_noise(vad: agents_vad.VAD) -> None:
    silence = np.zeros(16000, dtype=np.int16)
    noise = (np.random.default_rng(0).standard_normal(48000) * 100).astype(np.int16)  # -50 dBFS hiss, 24 kHz
    assert await _vad_events(vad, silence) == []
    assert await _vad_events(vad, phone_band(noise)) == []


# --------------------------------------------------------------------------------------------- factory
def test_factory_builds_offline_providers_and_refuses_cloud_ones() -> None:
    assert isinstance(build_stt("local-whisper"), WhisperSTT)
    assert isinstance(build_tts("local-hibari", "heart"), HibariTTS)
    assert isinstance(build_tts("local-hibari", ""), HibariTTS)
    assert isinstance(build_tts("local-espeak", ""), EspeakTTS)
    with pytest.raises(ProviderNotInstalledError, match="livekit-plugins-deepgram"):
        build_stt("deepgram")
    with pytest.raises(ProviderNotInstalledError, match="livekit-plugins-cartesia"):
        build_tts("cartesia", "any")
    with pytest.raises(ValueError, match="unknown"):
        build_tts("nope", "")


def test_hibari_refuses_voices_that_would_download() -> None:
    with pytest.raises(ValueError, match="downloaded"):
        HibariTTS(voice="fenrir").prewarm()
