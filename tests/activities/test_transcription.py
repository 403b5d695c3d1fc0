"""transcribe_recording over a real two-speaker recording: hibari speaks a script through the phone band into the
stereo recorder; Whisper's transcript, speaker by channel, is within 10 % WER; re-runs and resumed attempts write
nothing twice and never touch the live transcript."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from sqlalchemy import select
from temporalio.testing import ActivityEnvironment

from activities.recording_assets import RecordingAssetActivities
from activities.transcription import TranscriptionActivities
from models.assets import RECORDING_SOURCE, StoreRecordingInput, TranscribeRecordingInput, TranscriptionProgress
from models.enums import MessageRole
from models.tables import Message, utcnow
from storage import LocalStore
from tests.activities.conftest import CallRows, new_call
from tests.conftest import Platform
from tests.support.dialogue import record_dialogue, wer
from voice.recording.stereo import Side
from voice.speech.whisper_engine import get_whisper_engine

ROLE = {Side.CALLER: MessageRole.CALLER, Side.AGENT: MessageRole.AGENT}


async def recorded_call(platform: Platform, tmp_path: Path) -> tuple[CallRows, str, dict[Side, str], LocalStore]:
    rows = await new_call(platform)
    dialogue = record_dialogue(tmp_path / "call.wav")
    store = LocalStore(tmp_path / "store", b"k" * 32, "http://127.0.0.1")
    stored = await ActivityEnvironment().run(
        RecordingAssetActivities(platform.sessions, store).store_recording,
        StoreRecordingInput(
            space_id=rows.space_id,
            call_id=rows.call_id,
            conversation_id=rows.conversation_id,
            path=str(dialogue.summary.path),
        ),
    )
    return rows, stored.asset_id, dialogue.reference, store


async def messages(platform: Platform, conversation_id: str) -> list[Message]:
    async with platform.sessions() as session:
        rows = await session.scalars(
            select(Message).where(Message.conversation_id == conversation_id).order_by(Message.started_at)
        )
        return list(rows.all())


async def test_transcript_by_speaker_once_and_beside_the_live_one(platform: Platform, tmp_path: Path) -> None:
    rows, asset_id, reference, store = await recorded_call(platform, tmp_path)
    async with platform.sessions() as session:  # what the live agent wrote during the call
        session.add(
            Message(
                space_id=rows.space_id,
                conversation_id=rows.conversation_id,
                call_id=rows.call_id,
                role=MessageRole.CALLER,
                source="voice",
                text="hi I would like to know",
                dedupe_key=f"live:{asset_id}",
                started_at=utcnow(),
            )
        )
        await session.commit()
    acts = TranscriptionActivities(platform.sessions, store, get_whisper_engine)
    request = TranscribeRecordingInput(
        space_id=rows.space_id,
        asset_id=asset_id,
        conversation_id=rows.conversation_id,
        call_id=rows.call_id,
        chunk_seconds=10.0,
    )
    env = ActivityEnvironment()
    beats: list[TranscriptionProgress] = []
    env.on_heartbeat = lambda *details: beats.append(details[0])
    result = await env.run(acts.transcribe_recording, request)

    rows_written = [m for m in await messages(platform, rows.conversation_id) if m.source == RECORDING_SOURCE]
    assert result.messages_written == len(rows_written) >= 8
    for side in Side:
        said = " ".join(m.text for m in rows_written if m.role == ROLE[side])
        assert wer(reference[side], said) <= 0.10, (side, said)
    assert rows_written[0].role == MessageRole.AGENT  # the agent greets first: order and speaker from the channel
    assert all(m.call_id == rows.call_id and m.ended_at and m.started_at for m in rows_written)
    assert beats[-1].next_chunk == beats[-1].chunks >= 3
    assert result.speech_seconds < result.audio_seconds

    again = await ActivityEnvironment().run(acts.transcribe_recording, request)
    assert again.messages_written == 0
    after = await messages(platform, rows.conversation_id)
    assert len([m for m in after if m.source == RECORDING_SOURCE]) == len(rows_written)
    assert [m.text for m in after if m.source == "voice"] == ["hi I would like to know"]


async def test_a_retried_attempt_resumes_from_its_last_heartbeat(platform: Platform, tmp_path: Path) -> None:
    rows, asset_id, _, store = await recorded_call(platform, tmp_path)
    acts = TranscriptionActivities(platform.sessions, store, get_whisper_engine)
    request = TranscribeRecordingInput(
        space_id=rows.space_id, asset_id=asset_id, conversation_id=rows.conversation_id, chunk_seconds=10.0
    )
    env = ActivityEnvironment()
    # The first attempt wrote chunks 0-1 and heartbeated, then its worker died (the next attempt sees a dict).
    beats: list[TranscriptionProgress] = []
    env.on_heartbeat = lambda *details: beats.append(details[0])
    full = await env.run(acts.transcribe_recording, request)
    async with platform.sessions() as session:
        written = list(
            (await session.scalars(select(Message).where(Message.conversation_id == rows.conversation_id))).all()
        )
        first = min(m.started_at for m in written if m.started_at)
        late = [m for m in written if m.started_at and (m.started_at - first).total_seconds() >= 20]
        for m in late:
            await session.delete(m)
        await session.commit()
    assert late, "the recording is longer than two chunks"
    retry = ActivityEnvironment()
    retry.info = dataclasses.replace(
        retry.info, attempt=2, heartbeat_details=[{"next_chunk": 2, "chunks": beats[-1].chunks, "messages_written": 5}]
    )
    resumed = await retry.run(acts.transcribe_recording, request)
    assert resumed.resumed_from_chunk == 2
    assert 0 < resumed.messages_written <= len(late) and resumed.messages_written < full.messages_written
    assert len(await messages(platform, rows.conversation_id)) == full.messages_written


@pytest.fixture(autouse=True)
def _whisper_loaded_once() -> None:
    get_whisper_engine()
