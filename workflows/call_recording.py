"""After a call ends: its stream recordings stored as space assets and transcribed, and its LiveKit egress file
registered, for ``CallWorkflow``'s legs (kept apart so the legs stay about the media)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    import models.calls as c
    import models.recordings as rec
    from activities.media_streams import MediaStreamActivities
    from activities.recording_assets import RecordingAssetActivities
    from models.assets import (
        TRANSCRIPTION_STARTED,
        TRANSCRIPTION_WORKFLOW,
        JoinRecordingPartsInput,
        RegisterEgressAssetInput,
        StoredAsset,
        StoreRecordingInput,
        TranscribeRecordingInput,
        TranscriptionResult,
        TranscriptionView,
        TranscriptionWorkflowInput,
        transcription_workflow_id,
    )
    from models.stream_hold import StreamHeld, StreamHoldInput
    from models.task_queues import speech_task_queue
    from workflows.call_state import CallLedger
    from workflows.failures import failure_reason

ONCE = RetryPolicy(maximum_attempts=1)
STORE_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=10), maximum_attempts=5)
# A stream's process must pick these up: if it is gone, its recording went with it.
ON_ITS_PROCESS = timedelta(seconds=10)


async def store_stream_recording(k: CallLedger, stream: c.AttachMedia) -> StoredAsset | None:
    """Wait for the stream's recorder to close, store the file as the call's asset from the process that wrote it,
    and start its transcription. None (noted on the timeline) when the recording could not be stored."""
    assert k.space_id is not None and stream.recording_path is not None
    try:
        done = await _finish(stream)
        stored = await _store(k, stream, stream.recording_path, done.paused_spans)
    except ActivityError as exc:
        _lost(k, exc)
        return None
    return await _stored(k, stored)


async def store_joined_recording(k: CallLedger, streams: list[c.AttachMedia]) -> StoredAsset | None:
    """A call that moved between media processes (one died or drained) was recorded in parts, one per process.
    The process that carried it last waits for its recorder, joins every part it can read into one file on the
    call's timeline (the time between them is silence), and stores that as the call's asset."""
    last = streams[-1]
    parts = [s.recording_path for s in streams if s.recording_path is not None]
    try:
        await _finish(last)
        joined = await workflow.execute_activity_method(
            RecordingAssetActivities.join_recording_parts,
            JoinRecordingPartsInput(k.start.call_id, parts),
            task_queue=last.task_queue,
            schedule_to_start_timeout=ON_ITS_PROCESS,
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=STORE_RETRY,
        )
        if joined.missing:
            k.note("recording_parts_missing", workflow.now(), f"{joined.missing} of {len(parts)}")
        stored = await _store(k, last, joined.path, joined.paused_spans)
    except ActivityError as exc:
        _lost(k, exc)
        return None
    return await _stored(k, stored)


async def _finish(stream: c.AttachMedia) -> c.StreamRecordingDone:
    return await workflow.execute_activity_method(
        MediaStreamActivities.finish_stream_recording,
        c.StreamRecordingInput(stream.stream_id),
        task_queue=stream.task_queue,
        schedule_to_start_timeout=ON_ITS_PROCESS,
        start_to_close_timeout=timedelta(seconds=30),
        heartbeat_timeout=timedelta(seconds=5),
        retry_policy=ONCE,
    )


async def _store(
    k: CallLedger, stream: c.AttachMedia, path: str, paused_spans: list[tuple[float, float]]
) -> StoredAsset:
    assert k.space_id is not None
    return await workflow.execute_activity_method(
        RecordingAssetActivities.store_recording,
        StoreRecordingInput(k.space_id, k.start.call_id, path, k.conversation_id, paused_spans=paused_spans),
        task_queue=stream.task_queue,
        schedule_to_start_timeout=ON_ITS_PROCESS,
        start_to_close_timeout=timedelta(minutes=5),
        retry_policy=STORE_RETRY,
    )


def _lost(k: CallLedger, exc: ActivityError) -> None:
    k.recording = rec.RECORDING_FAILED
    k.note("recording_lost", workflow.now(), failure_reason(exc))


async def _stored(k: CallLedger, stored: StoredAsset) -> StoredAsset:
    k.recording = rec.RECORDING_COMPLETE
    k.note("recording_stored", workflow.now(), stored.asset_id)
    await transcribe(k, stored.asset_id)
    return stored


async def transcribe(k: CallLedger, asset_id: str) -> None:
    """Transcribe the recording into the conversation, in a workflow of its own that outlives the call's, on the
    speech role's task queue (started by name: the call role never imports the transcription stack)."""
    if not (k.space_id and k.conversation_id):
        return
    request = TranscribeRecordingInput(k.space_id, asset_id, k.conversation_id, k.start.call_id)
    try:
        await workflow.start_child_workflow(
            TRANSCRIPTION_WORKFLOW,
            TranscriptionWorkflowInput(request),
            id=transcription_workflow_id(asset_id),
            task_queue=speech_task_queue(workflow.info().task_queue),
            result_type=TranscriptionResult,
            parent_close_policy=ParentClosePolicy.ABANDON,
        )
    except WorkflowAlreadyStartedError:
        k.transcription = TranscriptionView(asset_id, TRANSCRIPTION_STARTED)
        return  # transcribed already (the asset was stored by an earlier attempt)
    k.transcription = TranscriptionView(asset_id, TRANSCRIPTION_STARTED)
    k.note("transcription_started", workflow.now(), asset_id)


async def register_egress(k: CallLedger, egress_id: str, location: str | None, error: str | None) -> None:
    """A LiveKit egress result becomes the call's asset (a failed egress, a failed asset: the call is unaffected)."""
    if k.space_id is None:
        return
    request = RegisterEgressAssetInput(k.space_id, k.start.call_id, egress_id, location, error, k.conversation_id)
    try:
        stored = await workflow.execute_activity_method(
            RecordingAssetActivities.register_egress_asset,
            request,
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=STORE_RETRY,
        )
    except ActivityError as exc:
        k.note("recording_unregistered", workflow.now(), failure_reason(exc))
        return
    k.note("recording_registered", workflow.now(), stored.asset_id)


async def set_paused(stream: c.AttachMedia, paused: bool) -> c.RecordingPaused:
    return await workflow.execute_activity_method(
        MediaStreamActivities.set_recording_paused,
        c.StreamRecordingInput(stream.stream_id, paused),
        task_queue=stream.task_queue,
        schedule_to_start_timeout=ON_ITS_PROCESS,
        start_to_close_timeout=timedelta(seconds=10),
        retry_policy=ONCE,
    )


async def set_stream_hold(stream: c.AttachMedia, on_hold: bool, pause_recording: bool) -> StreamHeld:
    return await workflow.execute_activity_method(
        MediaStreamActivities.set_stream_hold,
        StreamHoldInput(stream.stream_id, on_hold, pause_recording),
        task_queue=stream.task_queue,
        schedule_to_start_timeout=ON_ITS_PROCESS,
        start_to_close_timeout=timedelta(seconds=10),
        retry_policy=ONCE,
    )


def hold_pauses_recording(k: CallLedger, route: c.CallRoute, can_pause: bool) -> bool:
    """Going on hold: the recording pauses over it unless the space records time on hold."""
    return can_pause and not route.record_hold and k.recording == rec.RECORDING_ACTIVE


def note_hold_pause(k: CallLedger, on_hold: bool, span: tuple[float, float] | None = None) -> None:
    """The recording paused because the call went on hold, or resumed because it came off it (like a pause)."""
    if on_hold:
        k.recording = rec.RECORDING_PAUSED
        k.note("recording_paused", workflow.now(), "hold")
    else:
        k.recording = rec.RECORDING_ACTIVE
        k.note("recording_resumed", workflow.now(), f"{span[0]:.2f}-{span[1]:.2f} s (hold)" if span else "hold")
