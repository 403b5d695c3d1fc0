"""The typed client of SMS pacers: the only code outside the workflow that starts, updates or queries
``SmsPacerWorkflow`` (typed handles, never a name spelled by hand). The send-slot activity and tests use it."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from models import sms_pacing as p
from models.calls import SA_SPACE_ID
from workflows.sms_pacer import SmsPacerWorkflow


class SmsPacerClient:
    def __init__(self, client: Client, task_queue: str, *, max_grants_per_run: int = p.MAX_GRANTS_PER_RUN) -> None:
        self._client = client
        self._task_queue = p.sms_pacer_task_queue(task_queue)  # the workers' queue -> the pacers' own
        self._max_grants_per_run = max_grants_per_run

    async def reserve(
        self, key: p.PacerKey, request: p.SlotRequest, rpc_timeout: timedelta = timedelta(seconds=5)
    ) -> p.SlotGrants:
        """Send slots from the number's pacer, one per ticket in their order, starting the pacer if none runs
        (update-with-start). The request id is the update id: the same request again (in the same run) is the
        same slots."""
        start = WithStartWorkflowOperation(
            SmsPacerWorkflow.run,
            p.StartSmsPacer(key.space_id, self._max_grants_per_run),
            id=key.workflow_id,
            task_queue=self._task_queue,
            id_conflict_policy=p.SMS_PACER_ID_CONFLICT_POLICY,
            id_reuse_policy=p.SMS_PACER_ID_REUSE_POLICY,
            search_attributes=TypedSearchAttributes([SearchAttributePair(SA_SPACE_ID, key.space_id)]),
        )
        grants: p.SlotGrants = await self._client.execute_update_with_start_workflow(
            SmsPacerWorkflow.reserve_slot,
            request,
            start_workflow_operation=start,
            id=request.request_id,
            rpc_timeout=rpc_timeout,
        )
        return grants

    async def state(self, key: p.PacerKey, rpc_timeout: timedelta = timedelta(seconds=5)) -> p.PacerView | None:
        """The pacer's state from its latest run; None if the number never sent."""
        handle = self._client.get_workflow_handle_for(SmsPacerWorkflow.run, key.workflow_id)
        try:
            return await handle.query(SmsPacerWorkflow.get_state, rpc_timeout=rpc_timeout)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
