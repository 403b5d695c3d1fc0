"""One Whisper model shared by every call of a process: final transcripts first and batched, partials only when idle.

The live calls of a media process share one :class:`~voice.speech.whisper_engine.WhisperEngine` (its model runs one
transcription at a time). Every call's :class:`~voice.speech.whisper_engine.PartialTranscriber` used to put its runs
in the event loop's default executor: with eight calls, runs waiting for the model's lock filled that executor's
threads, and the silero VAD's inferences (which run there too) waited behind them, so ends of speech were noticed
late. Here the model has a thread of its own and a queue in front of it:
- a **final** transcript (the caller's turn is over and waits for it) is always queued; when the thread is free it
  takes every final waiting and runs those that share an encoder window (:func:`window_frames`) as one batch
  (``transcribe_batch``: one encoder and one decoder call), so N callers who stop speaking together cost about one
  pass per window size instead of N runs one after the other;
- a **partial** (re-transcribing an utterance still being spoken, to have its transcript ready at end of speech) is
  an optimisation: it runs only when the model is idle (``partials_when_busy=False``, the default), otherwise it is
  skipped and that utterance's final is transcribed after its end of speech. One call alone keeps every partial, so
  its final is usually ready at once, as before.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt

from .whisper_engine import Transcript, WhisperEngine, window_frames

_Pending = tuple[npt.NDArray[np.float32], "concurrent.futures.Future[Transcript]"]


class WhisperQueue:
    """The shared engine's own thread: :meth:`final` and :meth:`partial` return asyncio futures of transcripts."""

    def __init__(self, engine: WhisperEngine, *, max_batch: int = 8, partials_when_busy: bool = False) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.partials_when_busy = partials_when_busy
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="whisper")
        self._lock = threading.Lock()
        self._finals: list[_Pending] = []
        self._queued = 0  # jobs submitted to the thread and not finished
        self.partials_run = 0
        self.partials_skipped = 0
        self.finals_run = 0  # final transcripts made (each batch counts its members)
        self.batches_run = 0

    @property
    def busy(self) -> bool:
        """The model is transcribing, or has work waiting."""
        with self._lock:
            return self._queued > 0

    def final(self, audio: npt.NDArray[np.float32]) -> asyncio.Future[Transcript]:
        """Transcribe a finished utterance, as soon as the model is free (batched with other calls' finals)."""
        done: concurrent.futures.Future[Transcript] = concurrent.futures.Future()
        with self._lock:
            self._finals.append((audio, done))
            self._queued += 1
        self._executor.submit(self._run_finals)
        return asyncio.wrap_future(done)

    def partial(self, audio: npt.NDArray[np.float32]) -> asyncio.Future[Transcript] | None:
        """Transcribe an utterance in progress if the model is idle; None when it was skipped."""
        with self._lock:
            if self._queued and not self.partials_when_busy:
                self.partials_skipped += 1
                return None
            self._queued += 1
            self.partials_run += 1
        return asyncio.wrap_future(self._executor.submit(self._run_partial, audio))

    def _run_partial(self, audio: npt.NDArray[np.float32]) -> Transcript:
        try:
            return self.engine.transcribe(audio)
        finally:
            with self._lock:
                self._queued -= 1

    def _run_finals(self) -> None:
        with self._lock:
            waiting, self._finals = self._finals, []
        by_window: dict[int, list[_Pending]] = defaultdict(list)
        for item in waiting:
            by_window[window_frames(len(item[0]))].append(item)
        for group in by_window.values():
            for start in range(0, len(group), self.max_batch):
                self._transcribe(group[start : start + self.max_batch])

    def _transcribe(self, group: list[_Pending]) -> None:
        live = [(audio, done) for audio, done in group if done.set_running_or_notify_cancel()]
        outcome: list[Transcript] | BaseException
        try:
            if not live:
                outcome = []
            elif len(live) == 1:
                outcome = [self.engine.transcribe(live[0][0])]
            else:
                outcome = self.engine.transcribe_batch([audio for audio, _ in live])
        except BaseException as exc:  # every waiting caller learns of it
            outcome = exc
        # The model is free for these before anyone hears back: a caller woken by its result sees the queue as it is
        # (one job per final was submitted; those taken here leave theirs nothing to do).
        with self._lock:
            self._queued -= len(group)
        if isinstance(outcome, BaseException):
            for _, done in live:
                done.set_exception(outcome)
            return
        self.finals_run += len(live)
        self.batches_run += 1 if live else 0
        for (_, done), result in zip(live, outcome, strict=True):
            done.set_result(result)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=False)
