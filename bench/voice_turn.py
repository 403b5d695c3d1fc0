"""Voice turn latency over a Twilio media stream: end of the caller's speech → first agent audio.

    .venv/bin/python -m bench.voice_turn [--turns 10] [--tts local-hibari|local-espeak] [--stt-vad-silence S]

Everything runs in this process, as the end-to-end voice test does: a Temporal dev server, a migrated SQLite
platform, the worker and the API (with ``MediaStreamExtension``) via ``tests.support.stack.running_stack``, the API
on a loopback port (``serve_http``) and a ``TwilioStandIn`` as the carrier. One agent with a five-entry knowledge
base answers one call; ``TwilioMediaStream`` plays Twilio's side in real time (20 ms μ-law frames, line silence in
between). Twelve different caller questions are synthesised with hibari before anything is timed (trailing
near-silence trimmed to 20 ms, so the last frame sent is the end of speech, not 200 ms after it).

Per turn, client side: first agent audio frame received - last caller audio frame sent (this includes the VAD's
end-of-speech silence, ``voice.runtime.END_OF_SPEECH_SILENCE``); the reply is then heard out (its mark comes
back once played) and the caller pauses 0.5 s. Server side: the call's ``turns`` from ``get_state`` (STT, LLM
first token, TTS first byte, and the server's own end of speech → first audio). Where the client-side latency went
is split by thin timing probes wrapped around the STT's end-of-utterance ``finalize`` and the TTS's ``pcm_chunks``
(same process, same clock; behaviour unchanged): VAD endpoint, STT tail, LLM/pipeline, TTS first audio, transport.
The STT's own VAD is also run offline on the same audio (audio time) to tell the VAD's own delay from CPU lag.
``--stt-vad-silence S`` is an experiment, off by default: the STT's internal VAD waits ``S`` seconds instead of its
shipped default (patched in this process only), to measure what aligning it with END_OF_SPEECH_SILENCE would give.

Reference figures: the Pipecat pipeline quoted in issue 4 (same models, same stream), and a naive baseline
measured in the same run on the same questions: what the stock pieces need in sequence on this machine —
Whisper's stock 30 s window (``WhisperEngine.transcribe(..., full_window=True)``) on the phone-band question,
plus hibari's stock time to first audio (the whole reply synthesised in one ``Hibari(text)`` call, then its
untrimmed leading near-silence), plus the same END_OF_SPEECH_SILENCE.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import resource
import signal
import statistics
import sys
import tempfile
import threading
import time
import traceback
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
from livekit import rtc
from livekit.agents import vad as agents_vad
from temporalio.client import Client
from twilio.request_validator import RequestValidator

from bench._support import exit_now, load_average, pct, table
from models import calls as c
from tests.api.resources import twilio_number
from tests.support.media_stream_client import AgentSpeech, TwilioMediaStream
from tests.support.stack import running_stack, serve_http, temporal_client
from tests.support.temporal import start_dev_server
from tests.twilio_standin import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TwilioStandIn
from voice.local_llm import answer_from
from voice.media_stream.extension import MediaStreamExtension
from voice.runtime import END_OF_SPEECH_SILENCE
from voice.speech import HibariTTS, build_stt, load_vad, whisper_stt
from voice.speech._local_tts import LocalTTS
from voice.speech.audio import int16_to_float, resample_int16, ulaw_decode, ulaw_encode
from voice.speech.hibari_tts import get_hibari_engine
from voice.speech.whisper_engine import PartialTranscriber, Transcript, get_whisper_engine
from workflows.calls import CallWorkflow

PUBLIC = "https://telephony.example.com"
STREAM_URL = "wss://telephony.example.com/media/twilio"
CALLER_RATE = 24000  # HibariTTS output
PAUSE_BETWEEN_TURNS = 0.5
TAIL_KEEP_MS = 20.0
SILENCE_LEVEL = 131  # int16 (≈ 0.004 full scale, the TTS trimmer's threshold)
PIPECAT = "Pipecat, same models & stream (issue 4): p50 ≈ 700-810 ms, p95 ≈ 770-860 ms; Whisper alone 490-830 ms"
TARGET_P50, TARGET_P95 = 550.0, 700.0

KNOWLEDGE = [  # answers are the first two sentences (voice.local_llm.answer_from): ~3 s of speech each
    ("Opening hours", "We are open from nine to five, Monday to Friday. Saturdays, ten to two."),
    ("Parking", "Parking is free in the garage behind the building. The entrance is on Maple Street."),
    ("Address", "Our store is at twelve Harbour Road, by the train station. Look for the blue sign."),
    ("Returns and refunds", "You can return any item within thirty days. Bring the receipt."),
    ("Delivery", "Delivery takes two to three working days. Shipping is free over fifty dollars."),
]
QUESTIONS = [  # (question, index of the entry that answers it)
    ("What are your opening hours?", 0),
    ("Where can I park my car?", 1),
    ("What is your address?", 2),
    ("Can I return an item?", 3),
    ("How long does delivery take?", 4),
    ("Are you open on Saturdays?", 0),
    ("Is there a garage for parking?", 1),
    ("Where is your store?", 2),
    ("How do refunds work?", 3),
    ("Is shipping free?", 4),
    ("What time do you close on Friday?", 0),
    ("Is the store near the train station?", 2),
]


@dataclass
class Question:
    text: str
    answer: str
    pcm: npt.NDArray[np.int16]  # 24 kHz

    @property
    def seconds(self) -> float:
        return len(self.pcm) / CALLER_RATE


@dataclass
class Turn:
    question: Question
    latency_ms: float
    reply_seconds: float
    split: Split | None = None


@dataclass
class Naive:
    whisper_full_ms: float
    whisper_sized_ms: float
    hibari_ttfa_ms: float  # whole-reply synthesis + untrimmed lead

    @property
    def total_ms(self) -> float:
        return self.whisper_full_ms + self.hibari_ttfa_ms + END_OF_SPEECH_SILENCE * 1000


@dataclass
class Result:
    turns: list[Turn] = field(default_factory=list)
    server: list[c.TurnMetrics] = field(default_factory=list)
    naive: list[Naive] = field(default_factory=list)
    stt_vad_silence: float = 0.0
    vad_audio_ms: list[float] = field(default_factory=list)  # VAD end of speech after the audio's end (audio time)
    heard: list[tuple[str, str]] = field(default_factory=list)  # (role, text) from the conversation
    rss_after_call_mb: float = 0.0
    setup_s: float = 0.0
    call_s: float = 0.0


class Probes:
    """Timestamps (``time.monotonic``, the client's clock too: everything is in this process) taken by thin wrappers
    around two server-side calls, without changing what they do: the STT's end-of-utterance ``finalize`` (called
    when its VAD reports end of speech) and the TTS's per-request ``pcm_chunks`` (first sentence's first audio)."""

    def __init__(self) -> None:
        self.on = False
        self.finals: list[tuple[float, float, int]] = []  # (VAD end of speech handled, final transcript, runs)
        self.tts: list[tuple[float, float]] = []  # (synthesis requested, first audio chunk out)

    def install(self) -> None:
        probes = self
        finalize = PartialTranscriber.finalize
        pcm_chunks = LocalTTS.pcm_chunks

        async def timed_finalize(self: PartialTranscriber) -> Transcript:
            started = time.monotonic()
            result = await finalize(self)
            if probes.on:
                probes.finals.append((started, time.monotonic(), self.runs))
            return result

        def timed_pcm_chunks(self: LocalTTS, text: str, stop: threading.Event | None = None) -> Iterator[bytes]:
            started, first = time.monotonic(), True
            for chunk in pcm_chunks(self, text, stop):
                if first and probes.on:
                    probes.tts.append((started, time.monotonic()))
                first = False
                yield chunk

        PartialTranscriber.finalize = timed_finalize  # type: ignore[method-assign]
        LocalTTS.pcm_chunks = timed_pcm_chunks  # type: ignore[method-assign]


PROBES = Probes()


@dataclass
class Split:
    """Where one turn's client-side latency went (ms, consecutive, summing to the client latency)."""

    endpoint_ms: float  # last caller frame sent → the STT's VAD reports end of speech (silence + VAD lag)
    stt_tail_ms: float  # → final transcript (what incremental decoding had left)
    runs: int  # Whisper runs for the utterance
    to_tts_ms: float  # → first sentence handed to TTS (LLM + livekit pipeline); 0 when it was ahead
    tts_first_ms: float  # → first audio chunk of that sentence (what was left of it at the final transcript)
    out_ms: float  # → first agent audio frame received by the caller (framing, μ-law, WebSocket)
    ahead_ms: float = 0.0  # the speculative reply: how long before the final transcript its TTS was requested


def split_of(
    t0: float, first_audio: float, finals: list[tuple[float, float, int]], tts: list[tuple[float, float]]
) -> Split | None:
    before = [f for f in finals if f[0] < first_audio]
    if not before:
        return None
    vad_end, final, runs = before[-1]
    # The reply's first sentence: requested after the final transcript, or ahead of it (a speculative reply made
    # during the end-of-speech silence; then its audio may be ready before the turn is).
    after = [x for x in tts if final <= x[0] < first_audio] or [x for x in tts if t0 <= x[0] < final <= first_audio]
    if not after:
        return None
    requested, produced = after[0] if after[0][0] >= final else after[-1]
    handed = max(requested, final)
    ready = max(produced, handed)
    ms = 1000.0
    return Split(
        (vad_end - t0) * ms,
        (final - vad_end) * ms,
        runs,
        (handed - final) * ms,
        (ready - handed) * ms,
        (first_audio - ready) * ms,
        (final - requested) * ms if requested < final else 0.0,
    )


SPLIT_LEGEND = """Where the client latency went, ms (probe timestamps on the shared clock; consecutive, they sum to it):
endpoint = last frame sent → STT's VAD end of speech (includes END_OF_SPEECH_SILENCE); stt_tail = → final transcript;
to_tts = → first sentence handed to TTS (LLM, pipeline); tts_first = → its first audio; out = → first agent frame at
the caller (framing, μ-law, WebSocket); spec_ahead = the reply was speculative (voice_speculative_reply): its first
sentence went to TTS this long before the final transcript (to_tts is then 0, tts_first what was left);
vad_offline = the STT's VAD (same options) on the same audio offline, in audio time: its end of speech after the
audio's end (endpoint - vad_offline = processing lag)"""


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def trim_tail(pcm: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) >= SILENCE_LEVEL)
    if loud.size == 0:
        return pcm
    return pcm[: min(len(pcm), int(loud[-1]) + 1 + int(CALLER_RATE * TAIL_KEEP_MS / 1000))]


def synthesise_questions(turns: int) -> list[Question]:
    voice = HibariTTS(voice="heart", seed=0)
    voice.prewarm()
    made = [
        Question(text, answer_from(KNOWLEDGE[entry][1]), trim_tail(voice.synthesize_pcm(text)))
        for text, entry in QUESTIONS
    ]
    return [made[i % len(made)] for i in range(turns)]


def phone_band_16k(pcm24k: npt.NDArray[np.int16]) -> npt.NDArray[np.float32]:
    """What the server's STT gets: μ-law 8 kHz, decoded and brought up to 16 kHz."""
    narrow = ulaw_decode(ulaw_encode(resample_int16(pcm24k, CALLER_RATE, 8000)))
    return int16_to_float(resample_int16(narrow, 8000, 16000))


def naive_baseline(questions: Sequence[Question]) -> list[Naive]:
    """The stock pieces in sequence, per question (blocking; run while the call is over and the box is idle)."""
    ears = get_whisper_engine()
    engine = get_hibari_engine("heart")
    hibari: Any = engine._tts  # the stock ``Hibari`` object: text → whole waveform
    out = []
    for q in questions:
        audio = phone_band_16k(q.pcm)
        full = ears.transcribe(audio, full_window=True).elapsed
        sized = ears.transcribe(audio).elapsed
        with engine.lock:
            started = time.perf_counter()
            wave = np.asarray(hibari(q.answer, seed=0), dtype=np.float32)
            synth = time.perf_counter() - started
        loud = np.flatnonzero(np.abs(wave) >= SILENCE_LEVEL / 32768)
        lead = (int(loud[0]) if loud.size else len(wave)) / engine.sample_rate
        out.append(Naive(full * 1000, sized * 1000, (synth + lead) * 1000))
    return out


def stt_vad_silence() -> float:
    """The end-of-speech silence of the VAD inside the STT (its final transcript waits for that VAD's end).

    The transports hand the STT the session's VAD (END_OF_SPEECH_SILENCE), as built here."""
    vad: Any = build_stt("local-whisper", load_vad(min_silence_duration=END_OF_SPEECH_SILENCE)).vad  # type: ignore[attr-defined]
    return float(vad.min_silence_duration)


async def vad_endpoints(questions: Sequence[Question], silence: float) -> list[float]:
    """Per question, in audio time (CPU speed does not matter): end of the caller audio → the silero VAD's end of
    speech, with the runtime's options, on the phone-band audio followed by line silence (ms)."""
    out = []
    for q in questions:
        narrow = ulaw_decode(ulaw_encode(resample_int16(q.pcm, CALLER_RATE, 8000)))
        narrow = np.concatenate([narrow, np.zeros(8000, dtype=np.int16)])
        stream = load_vad(min_silence_duration=silence).stream()
        for i in range(0, len(narrow), 160):
            chunk = narrow[i : i + 160]
            stream.push_frame(rtc.AudioFrame(chunk.tobytes(), 8000, 1, len(chunk)))
        stream.end_input()
        ended = float("nan")
        async for event in stream:
            if event.type == agents_vad.VADEventType.END_OF_SPEECH:
                ended = event.samples_index / 8000
                break
        await stream.aclose()
        out.append((ended - q.seconds) * 1000)
    return out


async def _state(client: Client, workflow_id: str) -> c.CallStateView:
    view: c.CallStateView = await client.get_workflow_handle(workflow_id).query(CallWorkflow.get_state)
    return view


async def _reply(phone: TwilioMediaStream, seen: int, within: float = 20.0) -> AgentSpeech:
    """The first agent segment after index ``seen``, once played out (its mark echoed)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for segment in phone.segments[seen:]:
            if segment.mark is not None:
                return segment
        await asyncio.sleep(0.01)  # timestamps are taken on receipt; polling only paces the caller
    raise TimeoutError("no complete agent reply in time")


async def run_call(turns: int, tts: str, result: Result) -> None:
    started = time.monotonic()
    questions = await asyncio.to_thread(synthesise_questions, turns)
    print(f"# {len(set(q.text for q in questions))} caller questions synthesised with hibari "
          f"({min(q.seconds for q in questions):.2f}-{max(q.seconds for q in questions):.2f} s each)")  # fmt: skip
    env = await start_dev_server()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-voice-") as tmp:
            async with (
                TwilioStandIn({TEST_ACCOUNT_SID: TEST_AUTH_TOKEN}) as carrier,
                running_stack(
                    env, Path(tmp), extensions=[MediaStreamExtension()], twilio_api_base_url=carrier.url
                ) as stack,
            ):
                assert stack.app is not None
                await stack.app.state.voice.warm_up()
                result.stt_vad_silence = stt_vad_silence()
                space = await stack.new_space("bench")
                agent = {
                    "name": "front desk",
                    "greeting": "Hello, thanks for calling.",
                    "knowledge_base": [{"title": t, "content": body} for t, body in KNOWLEDGE],
                    "tts_provider": tts,
                    "voice": "heart" if tts == "local-hibari" else "en-us",  # the schema's default is hibari's
                }
                e164 = await twilio_number(
                    stack.client,
                    space,
                    media_mode="stream",
                    agent=agent,
                    account_sid=TEST_ACCOUNT_SID,
                    auth_token=TEST_AUTH_TOKEN,
                )
                carrier.add_incoming(
                    TEST_ACCOUNT_SID,
                    e164,
                    VoiceUrl=f"{PUBLIC}/webhooks/twilio/voice",
                    StatusCallback=f"{PUBLIC}/webhooks/twilio/status",
                )
                carrier.webhook_transport = httpx.ASGITransport(app=stack.app)
                temporal = temporal_client(stack)
                async with serve_http(stack.app) as base_url:
                    record, response = await carrier.incoming_call(e164, "+14155550142")
                    element = ET.fromstring(response.text).find("./Connect/Stream")
                    assert element is not None, response.text
                    parameters = {str(p.get("name")): str(p.get("value")) for p in element.findall("Parameter")}
                    parameters["call_sid"] = record.sid
                    workflow_id = parameters["workflow_id"]
                    phone = TwilioMediaStream(
                        f"{base_url.replace('http', 'ws')}/media/twilio",
                        signature=RequestValidator(TEST_AUTH_TOKEN).compute_signature(STREAM_URL, {}),
                        account_sid=TEST_ACCOUNT_SID,
                        parameters=parameters,
                    )
                    async with phone:
                        await phone.start()
                        await _reply(phone, 0)  # the greeting, heard out
                        result.setup_s = time.monotonic() - started
                        call_started = time.monotonic()
                        await asyncio.sleep(PAUSE_BETWEEN_TURNS)
                        PROBES.on = True
                        for i, question in enumerate(questions):
                            seen = len(phone.segments)
                            n_finals, n_tts = len(PROBES.finals), len(PROBES.tts)
                            await phone.say(question.pcm, CALLER_RATE)
                            reply = await _reply(phone, seen)
                            first = phone.segments[seen]  # the reply's first audio (normally ``reply`` itself)
                            latency = (first.first_audio_at - phone.last_caller_audio_at) * 1000
                            split = split_of(
                                phone.last_caller_audio_at,
                                first.first_audio_at,
                                PROBES.finals[n_finals:],
                                PROBES.tts[n_tts:],
                            )
                            result.turns.append(Turn(question, latency, len(reply.ulaw) / 8000, split))
                            print(f"  turn {i + 1:2d}: {latency:6.0f} ms  {question.text}", flush=True)
                            await asyncio.sleep(PAUSE_BETWEEN_TURNS)
                        result.call_s = time.monotonic() - call_started
                        PROBES.on = False

                        async def reported() -> c.CallStateView:
                            deadline = time.monotonic() + 10
                            while True:
                                view = await _state(temporal, workflow_id)
                                if len(view.turns) >= len(questions) or time.monotonic() > deadline:
                                    return view
                                await asyncio.sleep(0.1)

                        view = await reported()
                        result.server = list(view.turns)
                        result.rss_after_call_mb = peak_rss_mb()
                        await phone.stop()
                    with contextlib.suppress(Exception):  # the transcript is a sanity check, not the measure
                        for _ in range(50):
                            view = await _state(temporal, workflow_id)
                            if view.state.value == "ended":
                                break
                            await asyncio.sleep(0.1)
                        response = await stack.client.get(
                            space.path(f"/conversations/{view.conversation_id}/messages"),
                            headers=space.viewer,
                            params={"limit": 200},
                        )
                        result.heard = [(m["role"], m["text"]) for m in response.json()["data"]]
                print("# naive baseline: stock Whisper (30 s window) + stock hibari, same questions ...", flush=True)
                result.naive = await asyncio.to_thread(naive_baseline, questions)
                result.vad_audio_ms = await vad_endpoints(questions, result.stt_vad_silence)
    finally:
        await env.shutdown()


def _p(values: Sequence[float | None], q: float) -> str:
    present = [v for v in values if v is not None]
    return f"{pct(present, q):.0f}" if present else "-"


def _f(value: float | None) -> str:
    return f"{value:.0f}" if value is not None else "-"


def report(result: Result, tts: str) -> None:
    turns, server, naive = result.turns, result.server, result.naive
    agent_said = [text for role, text in result.heard if role == "agent"][1:]  # after the greeting
    caller_said = [text for role, text in result.heard if role == "caller"]
    rows = []
    for i, turn in enumerate(turns):
        s = server[i] if i < len(server) else None
        n = naive[i] if i < len(naive) else None
        right = "yes" if i < len(agent_said) and agent_said[i].strip() == turn.question.answer else "?"
        heard = caller_said[i] if i < len(caller_said) else ""
        rows.append(
            [
                i + 1,
                f"{turn.question.seconds:.2f}",
                f"{turn.latency_ms:.0f}",
                _f(s.latency_ms if s else None),
                _f(s.stt_ms if s else None),
                _f(s.llm_ttft_ms if s else None),
                _f(s.tts_ttfb_ms if s else None),
                _f(n.whisper_full_ms if n else None),
                _f(n.whisper_sized_ms if n else None),
                _f(n.hibari_ttfa_ms if n else None),
                _f(n.total_ms if n else None),
                right,
                heard[:38],
            ]
        )
    header = [
        "turn", "q_s", "client", "server", "stt", "llm_ttft", "tts_ttfb",
        "whisper30s", "whisper_sized", "hibari_stock", "naive_total", "kb_answer", "server heard",
    ]  # fmt: skip
    client_ms = [t.latency_ms for t in turns]
    for q in (50, 95):
        rows.append(
            [
                f"p{q}",
                "",
                _p(client_ms, q),
                _p([s.latency_ms for s in server], q),
                _p([s.stt_ms for s in server], q),
                _p([s.llm_ttft_ms for s in server], q),
                _p([s.tts_ttfb_ms for s in server], q),
                _p([n.whisper_full_ms for n in naive], q),
                _p([n.whisper_sized_ms for n in naive], q),
                _p([n.hibari_ttfa_ms for n in naive], q),
                _p([n.total_ms for n in naive], q),
                "",
                "",
            ]
        )
    print()
    print("Per turn, ms (client = first agent audio frame received - last caller audio frame sent; server = the")
    print("call's `turns`: VAD end - END_OF_SPEECH_SILENCE → first agent audio sent; naive = measured stock pieces)")
    print(table(header, rows))
    splits = [(i + 1, t.split) for i, t in enumerate(turns) if t.split is not None]
    if splits:
        parts = ["endpoint_ms", "stt_tail_ms", "to_tts_ms", "tts_first_ms", "out_ms"]
        srows: list[list[object]] = [
            [
                n,
                *(f"{getattr(sp, k):.0f}" for k in parts),
                sp.runs,
                f"{sp.ahead_ms:.0f}" if sp.ahead_ms else "-",
                f"{turns[n - 1].latency_ms:.0f}",
                _f(result.vad_audio_ms[n - 1] if n - 1 < len(result.vad_audio_ms) else None),
            ]
            for n, sp in splits
        ]
        for q in (50, 95):
            srows.append(
                [
                    f"p{q}",
                    *(_p([getattr(sp, k) for _, sp in splits], q) for k in parts),
                    "",
                    _p([sp.ahead_ms for _, sp in splits if sp.ahead_ms], q),
                    "",
                    _p(result.vad_audio_ms, q),
                ]
            )
        print()
        print(SPLIT_LEGEND)
        header = [
            "turn", "endpoint", "stt_tail", "to_tts", "tts_first", "out", "whisper_runs", "spec_ahead", "client",
            "vad_offline",
        ]  # fmt: skip
        print(table(header, srows))
    print()
    p50, p95 = pct(client_ms, 50), pct(client_ms, 95)
    n_total = [n.total_ms for n in naive]
    summary = [
        ["this design (client side)", f"{p50:.0f}", f"{p95:.0f}", f"{max(client_ms):.0f}", f"{len(client_ms)}"],
        ["naive stock pieces, this run", _p(n_total, 50), _p(n_total, 95), _f(max(n_total, default=None)), ""],
        ["Pipecat (issue 4, quoted)", "700-810", "770-860", "", ""],
        ["target", f"≤ {TARGET_P50:.0f}", f"≤ {TARGET_P95:.0f}", "", ""],
    ]
    print(table(["turn latency, ms", "p50", "p95", "max", "turns"], summary))
    print()
    verdict = "MET" if p50 <= TARGET_P50 and p95 <= TARGET_P95 else "NOT MET"
    print(f"target p50 ≤ {TARGET_P50:.0f} / p95 ≤ {TARGET_P95:.0f} ms: {verdict}")
    if naive:
        saved = pct(n_total, 50) - p50
        print(f"saved vs naive (p50): {saved:.0f} ms")
    print(
        f"VAD end-of-speech silence in force: session VAD (turn taking, barge-in) END_OF_SPEECH_SILENCE = "
        f"{END_OF_SPEECH_SILENCE * 1000:.0f} ms; the STT's own VAD (gates the final transcript) "
        f"{result.stt_vad_silence * 1000:.0f} ms{' [overridden by --stt-vad-silence]' if OVERRIDE else ''}"
    )
    print(f"reference: {PIPECAT}")
    correct = sum(1 for row in rows[: len(turns)] if row[11] == "yes")
    print(
        f"agent tts {tts}; correct KB answers {correct}/{len(turns)}; "
        f"server turns reported {len(server)}/{len(turns)}; "
        f"replies {statistics.fmean(t.reply_seconds for t in turns):.1f} s avg"
    )
    print(
        f"peak RSS {peak_rss_mb():.0f} MB (after the call {result.rss_after_call_mb:.0f} MB; whole process: stack, "
        f"models, client); set-up {result.setup_s:.1f} s, {len(turns)} turns {result.call_s:.1f} s; {load_average()}"
    )


OVERRIDE: list[float] = []  # --stt-vad-silence (an experiment: not what ships)


def override_stt_vad(silence: float) -> None:
    """Experiment: the STT's internal VAD waits ``silence`` instead of its default (patched here, in this process)."""
    OVERRIDE.append(silence)
    whisper_stt.load_vad = functools.partial(load_vad, min_silence_duration=silence)


async def main(turns: int, tts: str) -> None:
    print(f"# voice turn latency over a Twilio media stream: {turns} turns, agent TTS {tts}; {load_average()}")
    if OVERRIDE:
        print(
            f"# EXPERIMENT: the STT's internal VAD silence overridden to {OVERRIDE[0] * 1000:.0f} ms (not as shipped)"
        )
    task = asyncio.current_task()
    if task is not None:  # SIGTERM (e.g. `timeout`) cancels the run, so the dev server is still stopped
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    PROBES.install()
    result = Result()
    budget = 90 + 15 * turns
    await asyncio.wait_for(run_call(turns, tts, result), timeout=budget)
    report(result, tts)


def cli(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=10, help="caller questions in the call (≥ 1; default 10)")
    parser.add_argument("--tts", choices=["local-hibari", "local-espeak"], default="local-hibari")
    parser.add_argument(
        "--stt-vad-silence",
        type=float,
        default=None,
        help="experiment: end-of-speech silence (s) for the STT's internal VAD instead of its shipped default",
    )
    args = parser.parse_args(argv)
    code = 0
    try:
        if args.stt_vad_silence is not None:
            override_stt_vad(args.stt_vad_silence)
        asyncio.run(main(max(1, args.turns), args.tts))
    except BaseException as exc:  # report, then leave without interpreter finalisation
        traceback.print_exc()
        print(f"benchmark failed: {exc!r}", file=sys.stderr)
        code = 1
    exit_now(code)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    cli()
