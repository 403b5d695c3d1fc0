"""The retention workflow, run daily by a Temporal Schedule (workflows/retention_schedule.py): deletes every
asset past its deadline (legal holds skipped, an audit entry each) and transcript messages past theirs."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.retention import RetentionActivities
    from models.assets import (
        RETENTION_WORKFLOW,
        DeleteAssetInput,
        DeleteTranscriptsInput,
        FindExpiredInput,
        RetentionInput,
        RetentionResult,
    )

RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1), maximum_attempts=10)
MAX_BATCHES = 50  # then continue as new, so a large backlog never makes one huge history


@workflow.defn(name=RETENTION_WORKFLOW)
class RetentionWorkflow:
    @workflow.run
    async def run(self, request: RetentionInput) -> RetentionResult:
        as_of = workflow.now()
        assets_deleted = 0
        for _ in range(MAX_BATCHES):
            expired = await workflow.execute_activity_method(
                RetentionActivities.find_expired_assets,
                FindExpiredInput(as_of=as_of, batch_size=request.batch_size),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RETRY,
            )
            for asset_id in expired.asset_ids:
                deleted = await workflow.execute_activity_method(
                    RetentionActivities.delete_asset,
                    DeleteAssetInput(asset_id=asset_id, as_of=as_of),
                    start_to_close_timeout=timedelta(seconds=60),
                    retry_policy=RETRY,
                )
                assets_deleted += int(deleted.deleted)
            if len(expired.asset_ids) < request.batch_size:
                break
        else:
            workflow.continue_as_new(request)
        transcripts = await workflow.execute_activity_method(
            RetentionActivities.delete_expired_transcripts,
            DeleteTranscriptsInput(as_of=as_of),
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=RETRY,
        )
        return RetentionResult(assets_deleted=assets_deleted, messages_deleted=transcripts.messages_deleted)
