"""The typed client of SMS threads: the only code outside the workflow that starts, signals, updates or queries
``SmsThreadWorkflow`` (typed handles, never a name spelled by hand). API routes, webhooks and the bench use it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

import models.sms as m
from models.task_queues import speech_task_queue
from workflows.sms_thread import SmsThreadWorkflow


@dataclass(frozen=True)
class Thread:
    """Who a thread is between: the space's number and the other party."""

    space_id: str
    phone_number_id: str
    our_number: str
    party: str

    @property
    def workflow_id(self) -> str:
        return m.sms_thread_workflow_id(self.space_id, self.our_number, self.party)

    def start(self) -> m.StartSmsThread:
        return m.StartSmsThread(self.space_id, self.phone_number_id, self.our_number, self.party)


class SmsRefusedError(Exception):
    """The thread refused a send: ``kind`` is one of the contract's error types (opted out, invalid, closed)."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass
class ThreadSnapshot:
    view: m.SmsThreadView
    running: bool


class SmsClient:
    def __init__(self, client: Client, task_queue: str) -> None:
        self._client = client
        self._task_queue = speech_task_queue(task_queue)  # the workers' queue -> the speech role's, where threads run

    def _attributes(self, thread: Thread) -> TypedSearchAttributes:
        pairs: list[SearchAttributePair[Any]] = [
            SearchAttributePair(m.SA_SMS_THREAD_STATE, m.SmsThreadState.OPEN.value),
            SearchAttributePair(m.SA_SMS_SPACE_ID, thread.space_id),
            SearchAttributePair(m.SA_SMS_PHONE_NUMBER, thread.our_number),
        ]
        return TypedSearchAttributes(pairs)

    async def deliver_inbound(self, thread: Thread, sms: m.InboundSms) -> None:
        """Hand an arriving message to its thread, starting a new run if none is open (signal-with-start)."""
        await self._client.start_workflow(
            SmsThreadWorkflow.run,
            thread.start(),
            id=thread.workflow_id,
            task_queue=self._task_queue,
            id_conflict_policy=m.SMS_ID_CONFLICT_POLICY,
            id_reuse_policy=m.SMS_ID_REUSE_POLICY,
            search_attributes=self._attributes(thread),
            start_signal=m.SIGNAL_INBOUND,
            start_signal_args=[sms],
        )

    async def send(self, thread: Thread, request: m.SendSms) -> m.SmsQueued:
        """Queue a message on its thread (update-with-start); the message id is the update id, so a retried
        request queues one message. Raises ``SmsRefusedError`` when the thread refuses it."""
        start = WithStartWorkflowOperation(
            SmsThreadWorkflow.run,
            thread.start(),
            id=thread.workflow_id,
            task_queue=self._task_queue,
            id_conflict_policy=m.SMS_ID_CONFLICT_POLICY,
            id_reuse_policy=m.SMS_ID_REUSE_POLICY,
            search_attributes=self._attributes(thread),
        )
        try:
            queued: m.SmsQueued = await self._client.execute_update_with_start_workflow(
                SmsThreadWorkflow.send_message,  # type: ignore[arg-type]  # the SDK's overload wants a sync method
                request,
                start_workflow_operation=start,
                id=request.message_id,
            )
            return queued
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            if isinstance(cause, ApplicationError) and cause.type in (m.OPTED_OUT, m.INVALID_MESSAGE, m.THREAD_CLOSED):
                raise SmsRefusedError(cause.type, cause.message) from exc
            raise

    async def report_delivery(self, workflow_id: str, report: m.DeliveryReport) -> bool:
        """Signal a delivery report; False when no run of the thread is open."""
        try:
            await self._client.get_workflow_handle_for(SmsThreadWorkflow.run, workflow_id).signal(
                SmsThreadWorkflow.delivery_status, report
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return True

    async def snapshot(self, workflow_id: str, rpc_timeout: timedelta = timedelta(seconds=5)) -> ThreadSnapshot | None:
        """The thread's state from its latest run (open, or the last one's final state); None if unknown."""
        handle = self._client.get_workflow_handle_for(SmsThreadWorkflow.run, workflow_id)
        try:
            described = await handle.describe(rpc_timeout=rpc_timeout)
            view = await handle.query(SmsThreadWorkflow.get_state, rpc_timeout=rpc_timeout)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
        return ThreadSnapshot(view, described.status == WorkflowExecutionStatus.RUNNING)
