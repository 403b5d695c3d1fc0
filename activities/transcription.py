"""Transcription of a stored stereo recording into conversation messages (source "recording").

Each channel is one speaker (``stereo:caller,agent``): silero finds the speech on each, every utterance is
transcribed by Whisper tiny.en with a window sized to it (voice/speech/whisper_engine.py), so silence and the other
side's turns cost nothing, which is what makes it several times faster than real time. Utterances of similar
length are decoded in small batches (one encoder/decoder call each).

The recording is processed in chunks of ``chunk_seconds`` (by utterance start). After a chunk's messages are
committed the activity heartbeats ``TranscriptionProgress(next_chunk=…)``; a retried attempt (its worker died)
reads the last heartbeat and starts there. Messages carry a dedupe key per asset, channel and start time, so even
a chunk redone after a crash between commit and heartbeat writes nothing twice. Live transcript messages (source
"voice") are never touched.
"""

from __future__ import annotations

import asyncio
import logging
import re
import tempfile
import time
import wave
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from models.assets import (
    ASSET_NOT_FOUND,
    ASSET_NOT_TRANSCRIBABLE,
    RECORDING_SOURCE,
    STEREO_LAYOUT,
    TRANSCRIBE_RECORDING,
    WAV,
    AssetStatus,
    TranscribeRecordingInput,
    TranscriptionProgress,
    TranscriptionResult,
)
from models.enums import MessageRole
from models.tables import Asset, Call, Message
from storage import BlobStore
from voice.recording.segments import speech_segments
from voice.speech.audio import resample
from voice.speech.whisper_engine import WhisperEngine, window_frames

log = logging.getLogger(__name__)

RATE = 8000
T = TypeVar("T")
SPEAKERS = (MessageRole.CALLER, MessageRole.AGENT)  # channel order of STEREO_LAYOUT
BEAM_SIZE = 5  # offline: worth its cost (WER and no repetition loops; bench/transcribe.py)


@dataclass(frozen=True)
class Utterance:
    channel: int
    start: int  # samples
    end: int

    @property
    def start_seconds(self) -> float:
        return self.start / RATE


@dataclass(frozen=True)
class TranscribedSegment:
    role: MessageRole
    start: float
    end: float
    text: str


def dedupe_key(asset_id: str, channel: int, start_ms: int) -> str:
    return f"rec:{asset_id}:{channel}:{start_ms}"


def read_stereo(path: Path) -> npt.NDArray[np.int16]:
    with wave.open(str(path), "rb") as w:
        if w.getnchannels() != 2 or w.getsampwidth() != 2 or w.getframerate() != RATE:
            raise ApplicationError(
                "only 8 kHz 16-bit stereo WAV recordings are transcribed",
                type=ASSET_NOT_TRANSCRIBABLE,
                non_retryable=True,
            )
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return data.reshape(-1, 2)


def find_utterances(audio: npt.NDArray[np.int16]) -> list[Utterance]:
    """Every channel's speech, in start order (both channels interleaved, as the conversation went)."""
    found = [
        Utterance(channel, seg.start, seg.end)
        for channel in range(audio.shape[1])
        for seg in speech_segments(np.ascontiguousarray(audio[:, channel]), RATE)
    ]
    return sorted(found, key=lambda u: (u.start, u.channel))


def transcribe_utterances(
    engine: WhisperEngine, audio: npt.NDArray[np.int16], batch: list[Utterance]
) -> list[TranscribedSegment]:
    """One Whisper call for the batch (utterances of similar length: each is padded to the longest)."""
    samples = [resample(audio[u.start : u.end, u.channel].astype(np.float32) / 32768.0, RATE, 16000) for u in batch]
    transcripts = engine.transcribe_batch(samples, beam_size=BEAM_SIZE)
    return [
        TranscribedSegment(SPEAKERS[u.channel], u.start / RATE, u.end / RATE, strip_echo(t.text))
        for u, t in zip(batch, transcripts, strict=True)
    ]


def batches(utterances: list[Utterance], size: int) -> list[list[Utterance]]:
    """Groups of up to ``size`` utterances needing the same Whisper window (so none is padded beyond its own)."""
    same_window: dict[int, list[Utterance]] = {}
    for u in utterances:
        same_window.setdefault(window_frames((u.end - u.start) * 2), []).append(u)  # 8 kHz -> 16 kHz samples
    return [group[i : i + size] for group in same_window.values() for i in range(0, len(group), size)]


_APOSTROPHES = {"there's": "there is", "it's": "it is", "that's": "that is", "we're": "we are", "i'm": "i am"}


def _norm_words(text: str) -> list[str]:
    spoken = " ".join(_APOSTROPHES.get(w, w) for w in re.sub(r"[^a-z' ]+", " ", text.lower()).split())
    return spoken.split()


def strip_echo(text: str, min_words: int = 3) -> str:
    """Drop trailing sentences that repeat part of the sentence before them ("X Y Z. Y Z"): Whisper's echo when
    its window runs on past the end of the speech. Genuine short repeats ("Yes. Yes.") are kept."""
    sentences = re.findall(r"[^.!?]+[.!?]*", text)
    while len(sentences) > 1:
        last, before = _norm_words(sentences[-1]), _norm_words(" ".join(sentences[:-1]))
        n = len(last)
        if n < min_words or not any(before[i : i + n] == last for i in range(len(before) - n + 1)):
            break
        sentences.pop()
    return "".join(sentences).strip()


async def heartbeating(work: Awaitable[T], progress: TranscriptionProgress, every: float = 1.0) -> T:
    """Await ``work`` (a thread: model loading, a Whisper call) while heartbeating ``progress`` every second."""
    task = asyncio.ensure_future(work)
    while True:
        activity.heartbeat(progress)
        done, _ = await asyncio.wait({task}, timeout=every)
        if done:
            return task.result()


def last_progress(details: Sequence[Any]) -> TranscriptionProgress | None:
    """The previous attempt's last heartbeat (decoded without a type hint, so it arrives as a dict)."""
    if not details:
        return None
    detail = details[0]
    if isinstance(detail, TranscriptionProgress):
        return detail
    if isinstance(detail, dict):
        return TranscriptionProgress(**detail)
    return None


class TranscriptionActivities:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        store: BlobStore,
        engine: Callable[[], WhisperEngine],
    ) -> None:
        self._sessions = sessions
        self._store = store
        self._engine_factory = engine

    async def _asset(self, request: TranscribeRecordingInput) -> tuple[Asset, datetime]:
        async with self._sessions() as session:
            asset = await session.get(Asset, request.asset_id)
            if asset is None or asset.space_id != request.space_id:
                raise ApplicationError("asset not found", type=ASSET_NOT_FOUND, non_retryable=True)
            if asset.status != AssetStatus.STORED or asset.content_type != WAV or asset.channel_layout != STEREO_LAYOUT:
                raise ApplicationError(
                    "only stored stereo WAV recordings are transcribed",
                    type=ASSET_NOT_TRANSCRIBABLE,
                    non_retryable=True,
                )
            call = await session.get(Call, asset.call_id) if asset.call_id else None
        started = call.connected_at if call is not None and call.connected_at else None
        if started is None:
            started = asset.created_at - timedelta(seconds=asset.duration_seconds or 0.0)
        return asset, started

    def _download(self, key: str, target: Path) -> None:
        with target.open("wb") as f:
            for chunk in self._store.read_range(key):
                f.write(chunk)

    async def _write(
        self, request: TranscribeRecordingInput, asset: Asset, base: datetime, segments: list[TranscribedSegment]
    ) -> int:
        """Insert the chunk's messages that are not there yet; returns how many were inserted."""
        rows = {dedupe_key(asset.id, SPEAKERS.index(s.role), round(s.start * 1000)): s for s in segments if s.text}
        if not rows:
            return 0
        async with self._sessions() as session:
            present = set(
                (await session.scalars(select(Message.dedupe_key).where(Message.dedupe_key.in_(list(rows))))).all()
            )
            missing = {k: s for k, s in rows.items() if k not in present}
            for key, seg in missing.items():
                session.add(
                    Message(
                        space_id=asset.space_id,
                        conversation_id=request.conversation_id,
                        call_id=request.call_id or asset.call_id,
                        role=seg.role,
                        source=RECORDING_SOURCE,
                        text=seg.text,
                        dedupe_key=key,
                        started_at=base + timedelta(seconds=seg.start),
                        ended_at=base + timedelta(seconds=seg.end),
                        created_at=base + timedelta(seconds=seg.start),
                    )
                )
            try:
                await session.commit()
            except IntegrityError:  # another attempt wrote some of them meanwhile: keep theirs
                await session.rollback()
                return 0
        return len(missing)

    @activity.defn(name=TRANSCRIBE_RECORDING)
    async def transcribe_recording(self, request: TranscribeRecordingInput) -> TranscriptionResult:
        """Transcribe a stereo recording into the conversation; heartbeats progress, resumes from it."""
        started = time.perf_counter()
        progress = last_progress(activity.info().heartbeat_details)
        asset, base = await self._asset(request)
        first = progress.next_chunk if progress else 0
        written_before = progress.messages_written if progress else 0
        beat = progress or TranscriptionProgress(0, 0, 0)
        with tempfile.TemporaryDirectory(prefix="transcribe-") as tmp:
            path = Path(tmp) / "recording.wav"
            await heartbeating(asyncio.to_thread(self._download, asset.storage_key, path), beat)
            audio = await heartbeating(asyncio.to_thread(read_stereo, path), beat)
        engine = await heartbeating(asyncio.to_thread(self._engine_factory), beat)
        utterances = await heartbeating(asyncio.to_thread(find_utterances, audio), beat)
        chunk_samples = max(1, int(request.chunk_seconds * RATE))
        chunks = max(1, -(-len(audio) // chunk_samples))
        written = segments = 0
        for chunk in range(first, chunks):
            beat = TranscriptionProgress(chunk, chunks, written_before + written)
            in_chunk = [u for u in utterances if u.start // chunk_samples == chunk]
            done: list[TranscribedSegment] = []
            for batch in batches(in_chunk, request.batch_size):
                done += await heartbeating(asyncio.to_thread(transcribe_utterances, engine, audio, batch), beat)
            written += await self._write(request, asset, base, done)
            segments += sum(1 for s in done if s.text)
            activity.heartbeat(TranscriptionProgress(chunk + 1, chunks, written_before + written))
        speech = sum(u.end - u.start for u in utterances) / RATE
        log.info(
            "recording transcribed",
            extra={"asset_id": asset.id, "segments": segments, "written": written, "resumed_from": first},
        )
        return TranscriptionResult(
            asset_id=asset.id,
            segments=segments,
            messages_written=written,
            audio_seconds=len(audio) / RATE,
            speech_seconds=speech,
            elapsed_seconds=time.perf_counter() - started,
            resumed_from_chunk=first,
            chunks=chunks,
        )
