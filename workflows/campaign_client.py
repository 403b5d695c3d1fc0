"""The typed campaign client: how the API, the CLI's server side and benches start a campaign and talk to it.

Typed Temporal handles (``handle.execute_update(CampaignWorkflow.pause, ...)``): nothing outside ``workflows/``
names an update or query. The tenant rule is here once: a campaign is reached only through the space it belongs
to (its workflow id carries the space), so another space's campaign is, to a caller, no campaign.
"""

from __future__ import annotations

from typing import TypeVar

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.workflow import UpdateMethodMultiParam

import models.campaigns as m
from models.calls import SA_CAMPAIGN_ID, SA_SPACE_ID
from workflows.campaign import CampaignWorkflow

E = TypeVar("E")
R = TypeVar("R")


class CampaignActionRefused(Exception):
    """The campaign refused the action in its current status (or it is over); ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CampaignNotFound(Exception):
    """No campaign of this space by that id (never existed, another space's, or no longer kept)."""


class CampaignRef:
    def __init__(self, handle: WorkflowHandle[CampaignWorkflow, m.CampaignProgress]) -> None:
        self.handle = handle
        self.workflow_id = handle.id

    async def progress(self) -> m.CampaignProgress:
        try:
            return await self.handle.query(CampaignWorkflow.get_progress)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise CampaignNotFound("campaign not found") from exc
            raise

    async def pause(self, request: m.PauseRequest) -> m.CampaignProgress:
        return await self._update(CampaignWorkflow.pause, request)

    async def resume(self, request: m.ResumeRequest) -> m.CampaignProgress:
        return await self._update(CampaignWorkflow.resume, request)

    async def cancel(self, request: m.CancelRequest) -> m.CampaignProgress:
        return await self._update(CampaignWorkflow.cancel, request)

    async def update_limits(self, request: m.LimitsRequest) -> m.CampaignProgress:
        return await self._update(CampaignWorkflow.update_limits, request)

    async def contacts_added(self, count: int) -> bool:
        """Tell the campaign its list grew (the rows are written first); False when it is over."""
        try:
            await self.handle.signal(CampaignWorkflow.contacts_added, m.ContactsAdded(count))
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return True

    async def result(self) -> m.CampaignProgress:
        return await self.handle.result()

    async def _update(self, update: UpdateMethodMultiParam[[CampaignWorkflow, E], R], request: E) -> R:
        try:
            return await self.handle.execute_update(update, request)
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            reason = cause.message if isinstance(cause, ApplicationError) else str(cause or exc)
            raise CampaignActionRefused(reason) from exc
        except RPCError as exc:
            if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
                raise CampaignActionRefused("the campaign is over") from exc
            raise


class CampaignClient:
    def __init__(self, client: Client, task_queue: str) -> None:
        self.temporal = client
        self.task_queue = task_queue

    def campaign(self, space_id: str, campaign_id: str) -> CampaignRef:
        workflow_id = m.campaign_workflow_id(space_id, campaign_id)
        return CampaignRef(self.temporal.get_workflow_handle_for(CampaignWorkflow.run, workflow_id))

    async def start(self, start: m.StartCampaign) -> CampaignRef:
        """Start the campaign's workflow; a second start of the same campaign reaches the first."""
        workflow_id = m.campaign_workflow_id(start.space_id, start.campaign_id)
        try:
            handle = await self.temporal.start_workflow(
                CampaignWorkflow.run,
                start,
                id=workflow_id,
                task_queue=self.task_queue,
                id_reuse_policy=m.CAMPAIGN_ID_REUSE_POLICY,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(SA_SPACE_ID, start.space_id),
                        SearchAttributePair(SA_CAMPAIGN_ID, start.campaign_id),
                    ]
                ),
            )
        except WorkflowAlreadyStartedError:
            return self.campaign(start.space_id, start.campaign_id)
        return CampaignRef(handle)
