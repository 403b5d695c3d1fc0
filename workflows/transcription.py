"""One transcription per recording asset (workflow id ``transcribe-<asset id>``): the call's workflow starts it,
by name on the speech role's task queue, as a child that outlives the call (ParentClosePolicy.ABANDON). The
activity is named too: importing this workflow (the call role, the API's progress client) never loads Whisper."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from models.assets import (
        ASSET_NOT_FOUND,
        ASSET_NOT_TRANSCRIBABLE,
        TRANSCRIBE_RECORDING,
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
        return await workflow.execute_activity(
            TRANSCRIBE_RECORDING,
            request.request,
            result_type=TranscriptionResult,
            start_to_close_timeout=timedelta(seconds=request.start_to_close_timeout_seconds),
            heartbeat_timeout=timedelta(seconds=request.heartbeat_timeout_seconds),
            retry_policy=TRANSCRIBE_RETRY,
        )
