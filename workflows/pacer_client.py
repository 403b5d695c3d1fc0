"""The typed client of pacers (``workflows/pacer.py``): the only code outside the workflows that starts, updates or
queries one (typed handles, never a name spelled by hand). Pacer activities and tests use it through
``SmsPacerClient`` and ``DialPacerClient``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Protocol

from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode
from temporalio.types import MethodAsyncSingleParam

import models.sms_pacing as p
from models.calls import SA_SPACE_ID
from models.task_queues import sms_pacer_task_queue
from workflows.pacer import PacerWorkflow


class PacedResource(Protocol):
    """What a pacer paces (a sending number, a carrier account, a trunk): its space and its pacer's workflow id."""

    @property
    def space_id(self) -> str: ...

    @property
    def workflow_id(self) -> str: ...


PacerRun = MethodAsyncSingleParam[Any, p.StartSmsPacer, p.PacerView]


class PacerClient:
    """``run``: the pacer workflow's run method (``SmsPacerWorkflow.run``, ``DialPacerWorkflow.run``)."""

    def __init__(self, client: Client, task_queue: str, run: PacerRun, *, max_grants_per_run: int) -> None:
        self._client = client
        self._task_queue = sms_pacer_task_queue(task_queue)  # the workers' queue -> the pacers' own
        self._run = run
        self._max_grants_per_run = max_grants_per_run

    async def reserve(
        self, key: PacedResource, request: p.SlotRequest, rpc_timeout: timedelta = timedelta(seconds=5)
    ) -> p.SlotGrants:
        """Slots from the resource's pacer, one per ticket in their order, starting the pacer if none runs
        (update-with-start). The request id is the update id: the same request again (in the same run) is the
        same slots."""
        start = WithStartWorkflowOperation(
            self._run,
            p.StartSmsPacer(key.space_id, self._max_grants_per_run),
            id=key.workflow_id,
            task_queue=self._task_queue,
            id_conflict_policy=p.SMS_PACER_ID_CONFLICT_POLICY,
            id_reuse_policy=p.SMS_PACER_ID_REUSE_POLICY,
            search_attributes=TypedSearchAttributes([SearchAttributePair(SA_SPACE_ID, key.space_id)]),
        )
        grants: p.SlotGrants = await self._client.execute_update_with_start_workflow(
            PacerWorkflow.reserve_slot,
            request,
            start_workflow_operation=start,
            id=request.request_id,
            rpc_timeout=rpc_timeout,
        )
        return grants

    async def state(self, key: PacedResource, rpc_timeout: timedelta = timedelta(seconds=5)) -> p.PacerView | None:
        """The pacer's state from its latest run; None if it never granted a slot."""
        handle = self._client.get_workflow_handle_for(self._run, key.workflow_id)
        try:
            return await handle.query(PacerWorkflow.get_state, rpc_timeout=rpc_timeout)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
