"""A transcription's progress as the API shows it in a call's state: chunks done of all while it runs (read from
the heartbeats the server holds), complete with every chunk done at the end, failed when it cannot be done, and
nothing for an asset never transcribed."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from sqlalchemy import func, select
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities.recording_assets import RecordingAssetActivities
from activities.transcription import TranscriptionActivities
from models.assets import (
    TRANSCRIPTION_COMPLETE,
    TRANSCRIPTION_FAILED,
    TRANSCRIPTION_RUNNING,
    StoreRecordingInput,
    TranscribeRecordingInput,
    TranscriptionView,
    TranscriptionWorkflowInput,
    transcription_workflow_id,
)
from models.db import create_engine, migrate, session_factory
from models.tables import Message
from storage import LocalStore
from tests.activities.conftest import new_call
from tests.support.dialogue import LONG_SCRIPT, record_dialogue
from voice.speech.whisper_engine import get_whisper_engine
from workflows.sandbox import workflow_runner
from workflows.transcription import TranscriptionWorkflow
from workflows.transcription_client import TranscriptionClient


async def test_progress_chunk_by_chunk_then_complete_or_failed(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'telephony.db'}"
    await asyncio.to_thread(migrate, url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    try:
        rows = await new_call(sessions)
        dialogue = await asyncio.to_thread(record_dialogue, tmp_path / "call.wav", LONG_SCRIPT)
        store = LocalStore(tmp_path / "store", b"k" * 32, "http://127.0.0.1")
        stored = await ActivityEnvironment().run(
            RecordingAssetActivities(sessions, store).store_recording,
            StoreRecordingInput(rows.space_id, rows.call_id, str(dialogue.summary.path), rows.conversation_id),
        )
        progress = TranscriptionClient(temporal_env.client)
        assert await progress.progress(stored.asset_id) is None  # not transcribed (yet)

        queue = f"transcribe-{uuid.uuid4().hex[:8]}"
        activities = TranscriptionActivities(sessions, store, get_whisper_engine)
        async with Worker(
            temporal_env.client,
            task_queue=queue,
            workflows=[TranscriptionWorkflow],
            activities=[activities.transcribe_recording],
            workflow_runner=workflow_runner(),
        ):
            request = TranscribeRecordingInput(
                rows.space_id, stored.asset_id, rows.conversation_id, rows.call_id, chunk_seconds=10.0
            )
            handle = await temporal_env.client.start_workflow(
                TranscriptionWorkflow.run,
                TranscriptionWorkflowInput(request, heartbeat_timeout_seconds=2.0),
                id=transcription_workflow_id(stored.asset_id),
                task_queue=queue,
            )
            seen: list[TranscriptionView] = []
            finished = asyncio.ensure_future(handle.result())
            while not finished.done():
                view = await progress.progress(stored.asset_id)
                assert view is not None
                seen.append(view)
                await asyncio.sleep(0.1)
            result = finished.result()

            missing = TranscribeRecordingInput(rows.space_id, "as_missing", rows.conversation_id)
            failing = await temporal_env.client.start_workflow(
                TranscriptionWorkflow.run,
                TranscriptionWorkflowInput(missing),
                id=transcription_workflow_id("as_missing"),
                task_queue=queue,
            )
            await asyncio.gather(failing.result(), return_exceptions=True)
            failed = await progress.progress("as_missing")

        running = [v for v in seen if v.status == TRANSCRIPTION_RUNNING]
        assert any(0 < v.chunks_done < v.chunks for v in running), seen  # part-way, visibly
        done = [v.chunks_done for v in running]
        assert done == sorted(done)  # never goes back
        final = await progress.progress(stored.asset_id)
        async with sessions() as session:
            written = int(await session.scalar(select(func.count()).select_from(Message)) or 0)
        assert final is not None and final.status == TRANSCRIPTION_COMPLETE
        assert final.chunks == result.chunks == final.chunks_done >= 3  # a ~1 min recording in 10 s chunks
        assert final.messages_written == written > 0
        assert failed is not None and failed.status == TRANSCRIPTION_FAILED
    finally:
        await engine.dispose()
