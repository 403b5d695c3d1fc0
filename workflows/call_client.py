"""The typed call client: how every process outside the worker starts a call and talks to it.

Webhooks, REST routes, the voice runtime, campaigns and benches use :class:`CallClient`; its methods go through
Temporal's typed handles (``handle.signal(CallWorkflow.connected, event)``), so a type checker follows a call
from a webhook into the workflow, and nothing outside ``workflows/`` names a signal, update or query.

The tenant rule lives here, once: :meth:`CallClient.call` takes the space on whose behalf an event arrives (the
space of the carrier account that signed a webhook, of the API key, of the media stream), and a call of any
other space is answered exactly like an unknown one: nothing is signalled, queries find nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.workflow import UpdateMethodMultiParam

import models.calls as c
import models.recordings as rec
from models.call_contract import belongs_to
from models.consent import ConsentRecorded, ConsentReport
from models.enums import CallState
from workflows.calls import CallWorkflow

log = logging.getLogger(__name__)
E = TypeVar("E")
R = TypeVar("R")

# The events a call may be started with (signal-with-start), and the signal each one is.
START_SIGNALS: dict[type[object], str] = {
    c.ConnectedEvent: c.SIGNAL_CONNECTED,
    c.CarrierStatus: c.SIGNAL_CARRIER_STATUS,
}
StartEvent = c.ConnectedEvent | c.CarrierStatus


class CallActionError(Exception):
    """An update the call did not carry out; ``reason`` is meant for the requester (staff, the agent's LLM)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CallActionRefused(CallActionError):
    """Illegal in the call's current state (the update's validator said why): nothing was done."""


class CallActionFailed(CallActionError):
    """Accepted, but the media action failed (LiveKit or the carrier refused): the state is unchanged."""


class CallNotRunning(CallActionError):
    """No running call of this space by that id (never existed, another space's, or already ended)."""


def _search_attributes(start: c.StartCall) -> TypedSearchAttributes:
    pairs: list[SearchAttributePair[str]] = [
        SearchAttributePair(c.SA_CALL_STATE, CallState.RINGING.value),
        SearchAttributePair(c.SA_CALL_DIRECTION, start.direction.value),
    ]
    if start.space_id:
        pairs.append(SearchAttributePair(c.SA_SPACE_ID, start.space_id))
    return TypedSearchAttributes(pairs)


class CallRef:
    """One call, as seen by one space. Signals answer False when there is no such running call."""

    def __init__(self, handle: WorkflowHandle[CallWorkflow, c.CallStateView], *, visible: bool) -> None:
        self.handle = handle
        self.workflow_id = handle.id
        self._visible = visible

    # ---------------------------------------------------------------------------------- events
    async def connected(self, event: c.ConnectedEvent) -> bool:
        return await self._signal(CallWorkflow.connected, event)

    async def active(self, event: c.ActiveEvent) -> bool:
        return await self._signal(CallWorkflow.active, event)

    async def carrier_status(self, event: c.CarrierStatus) -> bool:
        return await self._signal(CallWorkflow.carrier_status, event)

    async def dtmf_received(self, event: c.DtmfEvent) -> bool:
        return await self._signal(CallWorkflow.dtmf_received, event)

    async def speech_received(self, event: c.SpeechEvent) -> bool:
        return await self._signal(CallWorkflow.speech_received, event)

    async def hangup_received(self, event: c.HangupEvent) -> bool:
        return await self._signal(CallWorkflow.hangup_received, event)

    async def agent_left(self, event: c.AgentLeft) -> bool:
        return await self._signal(CallWorkflow.agent_left, event)

    async def turn_metrics(self, turn: c.TurnMetrics) -> bool:
        return await self._signal(CallWorkflow.turn_metrics, turn)

    async def recording_update(self, update: rec.RecordingUpdate) -> bool:
        return await self._signal(CallWorkflow.recording_update, update)

    async def _signal(self, signal: Callable[[CallWorkflow, E], None], event: E) -> bool:
        if not self._visible:  # nothing reaches another space's call
            log.info("event for no call of this space", extra={"workflow_id": self.workflow_id})
            return False
        try:
            await self.handle.signal(signal, event)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                log.info("event for no running call", extra={"workflow_id": self.workflow_id})
                return False
            raise
        return True

    # --------------------------------------------------------------------------------- queries
    async def state(self) -> c.CallStateView:
        """The call's state, live from its workflow (also after it ended, while Temporal keeps it)."""
        if not self._visible:
            raise CallNotRunning("call not found")
        try:
            return await self.handle.query(CallWorkflow.get_state)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise CallNotRunning("call not found") from exc
            raise

    # --------------------------------------------------------------------------------- updates
    async def hold(self, request: c.HoldRequest) -> c.CallStateView:
        return await self._update(CallWorkflow.hold, request)

    async def resume(self, request: c.ResumeRequest) -> c.CallStateView:
        return await self._update(CallWorkflow.resume, request)

    async def transfer(self, request: c.TransferRequest) -> c.TransferResult:
        return await self._update(CallWorkflow.transfer, request)

    async def send_dtmf(self, request: c.DtmfRequest) -> c.CallStateView:
        return await self._update(CallWorkflow.send_dtmf, request)

    async def hangup(self, request: c.HangupRequest) -> c.CallStateView:
        return await self._update(CallWorkflow.hangup, request)

    async def pause_recording(self, request: c.RecordingPauseRequest) -> c.CallStateView:
        return await self._update(CallWorkflow.pause_recording, request)

    async def resume_recording(self, request: c.RecordingPauseRequest) -> c.CallStateView:
        return await self._update(CallWorkflow.resume_recording, request)

    async def report_answered_by(self, report: c.AnsweredByReport) -> c.CallStateView:
        """Answering-machine detection's result (the first report of a call wins)."""
        return await self._update(CallWorkflow.report_answered_by, report)

    async def report_recording_consent(self, report: ConsentReport) -> ConsentRecorded:
        """The recording-consent outcome from the voice runtime (see ``models.consent``); the first one counts."""
        return await self._update(CallWorkflow.report_recording_consent, report)

    async def voicemail_left(self, request: c.VoicemailLeft) -> c.CallStateView:
        """The AMD message was said to the machine: the call ends (LEAVE_MESSAGE)."""
        return await self._update(CallWorkflow.voicemail_left, request)

    async def attach_media(self, request: c.AttachMedia) -> c.MediaAttached:
        """A media-stream process takes the call's audio (see ``models.calls.AttachMedia``)."""
        return await self._update(CallWorkflow.attach_media, request)

    async def stream_ended(self, ended: c.StreamEnded) -> c.StreamEndedAnswer:
        """The carrier's media stream ended with the call up (``<Connect action>``): where the call goes next."""
        return await self._update(CallWorkflow.stream_ended, ended)

    async def _update(self, update: UpdateMethodMultiParam[[CallWorkflow, E], R], request: E) -> R:
        """Run an update; its refusal or failure becomes a :class:`CallActionError` with the reason."""
        if not self._visible:
            raise CallNotRunning("the call has ended")
        try:
            return await self.handle.execute_update(update, request)
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            if isinstance(cause, ApplicationError) and cause.type == c.CALL_ACTION_FAILED:
                raise CallActionFailed(cause.message) from exc
            reason = cause.message if isinstance(cause, ApplicationError) else str(cause or exc)
            raise CallActionRefused(reason) from exc
        except RPCError as exc:
            if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
                raise CallNotRunning("the call has ended") from exc
            raise


class CallClient:
    """Starts calls and hands out :class:`CallRef` s, on top of a connected ``temporalio.client.Client``."""

    def __init__(self, client: Client, task_queue: str) -> None:
        self.temporal = client
        self.task_queue = task_queue

    def call(self, workflow_id: str, *, space_id: str | None) -> CallRef:
        """The call ``workflow_id`` on behalf of ``space_id``: a call of another space is no call at all."""
        handle = self.temporal.get_workflow_handle_for(CallWorkflow.run, workflow_id)
        return CallRef(handle, visible=belongs_to(workflow_id, space_id))

    def trusted(self, workflow_id: str) -> CallRef:
        """A call named by our own side (the worker's dispatch, a stream token we issued and verified)."""
        return CallRef(self.temporal.get_workflow_handle_for(CallWorkflow.run, workflow_id), visible=True)

    async def start(self, start: c.StartCall, first: StartEvent | None = None) -> CallRef | None:
        """Start the call's workflow, or reach the running one (signal-with-start with ``first``).

        ``None``: the call is over. A retried webhook lands on the same workflow id, and a call that already
        ended is never started again (``CALL_ID_REUSE_POLICY``)."""
        try:
            handle = await self.temporal.start_workflow(
                CallWorkflow.run,
                start,
                id=start.workflow_id,
                task_queue=self.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=c.CALL_ID_REUSE_POLICY,
                search_attributes=_search_attributes(start),
                start_signal=START_SIGNALS[type(first)] if first is not None else None,
                start_signal_args=[first] if first is not None else [],
            )
        except WorkflowAlreadyStartedError:
            log.info("event for a call that already ended", extra={"workflow_id": start.workflow_id})
            return None
        return CallRef(handle, visible=True)
