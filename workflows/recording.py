"""Starting and stopping a call's recording (LiveKit egress), for ``CallWorkflow``."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.recordings import RecordingActivities
    from models.recordings import RecordingStarted, StartRecordingInput, StopRecordingInput
    from workflows.failures import failure_reason

RETRY = RetryPolicy(maximum_interval=timedelta(seconds=5), maximum_attempts=5)
TIMEOUT = timedelta(seconds=15)


async def start(room_name: str, call_id: str, space_id: str) -> RecordingStarted | str:
    """The egress recording the room, or why there is none (the call goes on unrecorded)."""
    try:
        return await workflow.execute_activity_method(
            RecordingActivities.start_recording,
            StartRecordingInput(room_name, call_id, space_id),
            start_to_close_timeout=TIMEOUT,
            retry_policy=RETRY,
        )
    except ActivityError as exc:
        return failure_reason(exc)


async def stop(egress_id: str) -> str | None:
    try:
        await workflow.execute_activity_method(
            RecordingActivities.stop_recording,
            StopRecordingInput(egress_id),
            start_to_close_timeout=TIMEOUT,
            retry_policy=RETRY,
        )
    except ActivityError as exc:
        return failure_reason(exc)
    return None
