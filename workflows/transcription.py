"""One transcription per recording asset (workflow id ``transcribe-<asset id>``): the call's workflow starts it
as a child that outlives the call (ParentClosePolicy.ABANDON), or calls the activity itself."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.transcription import TranscriptionActivities
    from models.assets import (
        ASSET_NOT_FOUND,
        ASSET_NOT_TRANSCRIBABLE,
        TRANSCRIPTION_WORKFLOW,
        TranscriptionResult,
        TranscriptionWorkflowInput,
    )

TRANSCRIBE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
    non_retryable_error_types=[ASSET_NOT_FOUND, ASSET_NOT_TRANSCRIBABLE],
)


@workflow.defn(name=TRANSCRIPTION_WORKFLOW)
class TranscriptionWorkflow:
    @workflow.run
    async def run(self, request: TranscriptionWorkflowInput) -> TranscriptionResult:
        return await workflow.execute_activity_method(
            TranscriptionActivities.transcribe_recording,
            request.request,
            start_to_close_timeout=timedelta(seconds=request.start_to_close_timeout_seconds),
            heartbeat_timeout=timedelta(seconds=request.heartbeat_timeout_seconds),
            retry_policy=TRANSCRIBE_RETRY,
        )
