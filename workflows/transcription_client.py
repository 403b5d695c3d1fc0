"""The typed client of ``TranscriptionWorkflow`` (one per recording asset): how far a transcription has got.

The transcription is one heartbeating activity that resumes from its last heartbeat (``TranscriptionProgress``)
after a crash; the server holds those heartbeats, so a running transcription's progress is read from the
workflow's pending activity, and a finished one's from its result. Nothing here names a signal or query."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from temporalio.api.enums.v1 import PendingActivityState
from temporalio.api.workflow.v1 import PendingActivityInfo
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.service import RPCError, RPCStatusCode

from models.assets import (
    TRANSCRIPTION_COMPLETE,
    TRANSCRIPTION_FAILED,
    TRANSCRIPTION_RUNNING,
    TRANSCRIPTION_STARTED,
    TranscriptionProgress,
    TranscriptionView,
    transcription_workflow_id,
)
from workflows.transcription import TranscriptionWorkflow

log = logging.getLogger(__name__)
ENDED_BADLY = {
    WorkflowExecutionStatus.FAILED,
    WorkflowExecutionStatus.TERMINATED,
    WorkflowExecutionStatus.CANCELED,
    WorkflowExecutionStatus.TIMED_OUT,
}


class TranscriptionClient:
    def __init__(self, client: Client) -> None:
        self._client = client

    async def progress(self, asset_id: str) -> TranscriptionView | None:
        """The transcription of ``asset_id`` now (chunks done of all, messages written), or None if there is none.
        The caller has checked that the asset is of its space (it is named in that space's call)."""
        handle = self._client.get_workflow_handle_for(TranscriptionWorkflow.run, transcription_workflow_id(asset_id))
        try:
            described = await handle.describe()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:  # the call's own state still says it started
                log.warning("transcription progress unavailable", extra={"asset_id": asset_id, "status": exc.status})
            return None
        if described.status in ENDED_BADLY:
            return TranscriptionView(asset_id, TRANSCRIPTION_FAILED)
        if described.status == WorkflowExecutionStatus.COMPLETED:
            try:
                result = await handle.result()
            except WorkflowFailureError:
                return TranscriptionView(asset_id, TRANSCRIPTION_FAILED)
            return TranscriptionView(
                asset_id, TRANSCRIPTION_COMPLETE, result.chunks, result.chunks, result.messages_written
            )
        progress = await self._heartbeat(described.raw_description.pending_activities)
        if progress is None:
            return TranscriptionView(asset_id, TRANSCRIPTION_STARTED)
        return TranscriptionView(
            asset_id, TRANSCRIPTION_RUNNING, progress.next_chunk, progress.chunks, progress.messages_written
        )

    async def _heartbeat(self, pending: Iterable[PendingActivityInfo]) -> TranscriptionProgress | None:
        """The running attempt's last heartbeat (the previous attempt's, while a retry waits to start)."""
        for activity in pending:
            if activity.state == PendingActivityState.PENDING_ACTIVITY_STATE_CANCEL_REQUESTED:
                continue
            payloads = activity.heartbeat_details.payloads
            if not payloads:
                continue
            [detail] = await self._client.data_converter.decode(payloads[:1], [TranscriptionProgress])
            if isinstance(detail, TranscriptionProgress):
                return detail
        return None
