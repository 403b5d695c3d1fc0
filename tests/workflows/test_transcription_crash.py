"""Crash test: the transcription runs in a real ``telephony worker --role speech`` process (on the speech task
queue), killed with SIGKILL after it wrote part of the transcript; a new worker process resumes from the last
heartbeat, and the transcript ends up whole, with no message twice."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.recording_assets import RecordingAssetActivities
from models.assets import (
    RECORDING_SOURCE,
    StoreRecordingInput,
    TranscribeRecordingInput,
    TranscriptionWorkflowInput,
    transcription_workflow_id,
)
from models.db import create_engine, migrate, session_factory
from models.enums import MessageRole
from models.settings import Settings
from models.tables import Message
from models.task_queues import speech_task_queue
from storage import build_store
from tests.activities.conftest import new_call
from tests.conftest import SECRET_KEY
from tests.support.dialogue import LONG_SCRIPT, record_dialogue, wer
from tests.workflows.test_call_crash import WorkerProcess, worker_env, workers  # noqa: F401 (a fixture)
from voice.recording.stereo import Side
from workers.worker_role import WorkerRole
from workflows.transcription import TranscriptionWorkflow


@pytest.mark.slow
async def test_kill_9_worker_during_transcription(
    temporal_env: WorkflowEnvironment,
    tmp_path: Path,
    workers: list[WorkerProcess],  # noqa: F811 (the fixture imported above)
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'telephony.db'}"
    await asyncio.to_thread(migrate, url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    queue = f"transcribe-{uuid.uuid4().hex[:8]}"
    settings = Settings(data_dir=tmp_path / "data", database_url=url, secret_keys=SECRET_KEY, task_queue=queue)
    env = worker_env(temporal_env, None, tmp_path, url, queue)
    try:
        first = WorkerProcess.start(env, tmp_path, "worker-1", WorkerRole.SPEECH)
        workers.append(first)
        rows = await new_call(sessions)
        dialogue = record_dialogue(tmp_path / "call.wav", LONG_SCRIPT * 2)  # ~2 min: time to kill it midway
        stored = await ActivityEnvironment().run(
            RecordingAssetActivities(sessions, build_store(settings)).store_recording,
            StoreRecordingInput(
                space_id=rows.space_id,
                call_id=rows.call_id,
                conversation_id=rows.conversation_id,
                path=str(dialogue.summary.path),
            ),
        )
        await first.wait_polling()

        handle = await temporal_env.client.start_workflow(
            TranscriptionWorkflow.run,
            TranscriptionWorkflowInput(
                TranscribeRecordingInput(
                    space_id=rows.space_id,
                    asset_id=stored.asset_id,
                    conversation_id=rows.conversation_id,
                    call_id=rows.call_id,
                    chunk_seconds=10.0,
                ),
                heartbeat_timeout_seconds=2.0,
            ),
            id=transcription_workflow_id(stored.asset_id),
            task_queue=speech_task_queue(queue),
        )

        async def written() -> int:
            async with sessions() as session:
                return int(await session.scalar(select(func.count()).select_from(Message)) or 0)

        deadline = asyncio.get_running_loop().time() + 120

        async def heartbeated_chunk() -> int:
            """``next_chunk`` of the progress the server holds from the running attempt's heartbeats."""
            pending = (await handle.describe()).raw_description.pending_activities
            if not pending or not pending[0].heartbeat_details.payloads:
                return 0
            details = await temporal_env.client.data_converter.decode(pending[0].heartbeat_details.payloads)
            return int(details[0]["next_chunk"])

        # Progress past the first chunks has reached the server (heartbeats are throttled): kill the worker.
        deadline = asyncio.get_running_loop().time() + 120
        while (resume_at := await heartbeated_chunk()) < 2:
            assert asyncio.get_running_loop().time() < deadline, first.output()
            assert "recording transcribed" not in first.output(), "finished before it could be killed"
            await asyncio.sleep(0.05)
        first.kill9()
        at_kill = await written()

        second = WorkerProcess.start(env, tmp_path, "worker-2", WorkerRole.SPEECH)
        workers.append(second)
        result = await asyncio.wait_for(handle.result(), timeout=180)

        async with sessions() as session:
            rows_written = list((await session.scalars(select(Message).order_by(Message.started_at))).all())
        assert result.resumed_from_chunk >= resume_at, "the second attempt started over instead of resuming"
        assert at_kill < len(rows_written)
        assert all(m.source == RECORDING_SOURCE for m in rows_written)
        assert len({m.dedupe_key for m in rows_written}) == len(rows_written)
        for role in (MessageRole.CALLER, MessageRole.AGENT):  # a segment written twice would overlap itself
            spans = [(m.started_at, m.ended_at) for m in rows_written if m.role == role]
            for (_, end), (start, _) in itertools.pairwise(spans):
                assert end is not None and start is not None and end <= start, "a segment was written twice"
        for side, role in ((Side.CALLER, MessageRole.CALLER), (Side.AGENT, MessageRole.AGENT)):
            said = " ".join(m.text for m in rows_written if m.role == role)
            assert wer(dialogue.reference[side], said) <= 0.10, (side, said)
        assert second.stop() == 0
    finally:
        await engine.dispose()
