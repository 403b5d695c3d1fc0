"""The daily Temporal Schedule running the retention workflow, created idempotently at worker start."""

from __future__ import annotations

import logging
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)

from models.assets import RETENTION_SCHEDULE_ID, RETENTION_WORKFLOW_ID, RetentionInput
from workflows.retention import RetentionWorkflow

log = logging.getLogger(__name__)


def retention_schedule(task_queue: str, every: timedelta = timedelta(days=1)) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            RetentionWorkflow.run, RetentionInput(), id=RETENTION_WORKFLOW_ID, task_queue=task_queue
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_retention_schedule(client: Client, task_queue: str) -> bool:
    """Create the schedule unless it exists (every worker calls this at start); True if this call created it."""
    try:
        await client.create_schedule(RETENTION_SCHEDULE_ID, retention_schedule(task_queue))
    except ScheduleAlreadyRunningError:
        return False
    log.info("retention schedule created", extra={"schedule_id": RETENTION_SCHEDULE_ID})
    return True
