"""How the agent acts on its call: through the CallWorkflow's updates and signals, never around it.

The workflow stays the single source of truth: its update validators decide what is legal (an illegal
transition, e.g. holding a call that is transferring, comes back as an :class:`ActionResult` with
``ok=False`` and a readable reason for the LLM, not as an exception), and it performs the LiveKit action.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from models.calls import (
    CALL_ACTION_FAILED,
    ILLEGAL_TRANSITION,
    SIGNAL_ACTIVE,
    UPDATE_HANGUP,
    UPDATE_HOLD,
    UPDATE_SEND_DTMF,
    UPDATE_TRANSFER,
    ActiveEvent,
    CallStateView,
    DtmfRequest,
    HangupRequest,
    HoldRequest,
    TransferMode,
    TransferRequest,
    TransferResult,
)
from models.enums import CallState

log = logging.getLogger(__name__)

AGENT_ACTOR = "agent"  # the ``by`` of the agent's requests (shown in the call's timeline)
FAILED = "FAILED"  # the prefix of a failed action's text for the LLM (voice.local_llm reads it)


@dataclass(frozen=True)
class ActionResult:
    ok: bool
    message: str
    state: CallState | None = None

    def for_llm(self) -> str:
        """The tool output: ``OK: ...`` or ``FAILED: ...`` with the reason, plus the call's state."""
        state = f" (call state: {self.state.value})" if self.state is not None else ""
        return f"{'OK' if self.ok else FAILED}: {self.message}{state}"


class CallControl(Protocol):
    async def transfer(self, target: str, mode: str = "cold") -> ActionResult: ...

    async def hang_up(self) -> ActionResult: ...

    async def hold(self) -> ActionResult: ...

    async def send_dtmf(self, digits: str) -> ActionResult: ...

    async def mark_active(self) -> None:
        """The agent spoke for the first time: the call is live (idempotent)."""


class TemporalCallControl:
    """:class:`CallControl` over the CallWorkflow ``workflow_id`` (see ``voice.agent_config.call_workflow_id``)."""

    def __init__(
        self,
        client: Client,
        workflow_id: str,
        *,
        agent_identity: str | None = None,
        default_transfer_target: str | None = None,
    ) -> None:
        self._handle: WorkflowHandle[object, CallStateView] = client.get_workflow_handle(
            workflow_id, result_type=CallStateView
        )
        self.workflow_id = workflow_id
        self.agent_identity = agent_identity
        self.default_transfer_target = default_transfer_target
        self._active_sent = False

    async def transfer(self, target: str, mode: str = "cold") -> ActionResult:
        destination = (target or "").strip() or self.default_transfer_target
        if not destination:
            return ActionResult(False, "no transfer destination is configured for this line")
        try:
            transfer_mode = TransferMode((mode or "cold").strip().lower())
        except ValueError:
            return ActionResult(False, f"unknown transfer mode {mode!r} (use cold or warm)")
        request = TransferRequest(destination, transfer_mode, by=AGENT_ACTOR)
        try:
            result = await self._handle.execute_update(UPDATE_TRANSFER, request, result_type=TransferResult)
        except (WorkflowUpdateFailedError, RPCError) as exc:
            return _failure("transfer", exc)
        if not result.ok:
            code = f" (SIP {result.sip_status_code})" if result.sip_status_code else ""
            return ActionResult(False, f"the transfer failed{code}: {result.error or 'no reason given'}", result.state)
        if result.state is CallState.ENDED:
            return ActionResult(True, f"the caller was transferred to {destination}", result.state)
        return ActionResult(True, f"{destination} joined the call", result.state)

    async def hang_up(self) -> ActionResult:
        return await self._update(UPDATE_HANGUP, HangupRequest(by=AGENT_ACTOR), "the call has ended")

    async def hold(self) -> ActionResult:
        return await self._update(UPDATE_HOLD, HoldRequest(by=AGENT_ACTOR), "the caller is on hold")

    async def send_dtmf(self, digits: str) -> ActionResult:
        digits = "".join(digits.split())
        return await self._update(UPDATE_SEND_DTMF, DtmfRequest(digits, by=AGENT_ACTOR), f"sent the tones {digits}")

    @property
    def handle(self) -> WorkflowHandle[object, CallStateView]:
        """The call's workflow (for reports that are not actions, such as turn metrics)."""
        return self._handle

    async def mark_active(self) -> None:
        if self._active_sent:
            return
        try:
            await self._handle.signal(SIGNAL_ACTIVE, ActiveEvent(agent_identity=self.agent_identity))
        except RPCError as exc:  # the call is already over: nothing to mark
            log.warning("could not mark the call active", extra={"workflow_id": self.workflow_id, "error": str(exc)})
            return
        self._active_sent = True

    async def _update(self, name: str, request: object, done: str) -> ActionResult:
        try:
            view = await self._handle.execute_update(name, request, result_type=CallStateView)
        except (WorkflowUpdateFailedError, RPCError) as exc:
            return _failure(name.replace("_", " "), exc)
        return ActionResult(True, done, view.state)


def _failure(action: str, exc: WorkflowUpdateFailedError | RPCError) -> ActionResult:
    if isinstance(exc, RPCError):
        if exc.status is RPCStatusCode.NOT_FOUND:
            return ActionResult(False, "the call has already ended")
        log.warning("call action failed", extra={"action": action, "error": exc.message})
        return ActionResult(False, f"could not reach the call to {action}: {exc.message}")
    cause = exc.cause
    if isinstance(cause, ApplicationError):
        if cause.type == ILLEGAL_TRANSITION:
            return ActionResult(False, f"{action} is not possible now: {cause.message}")
        if cause.type == CALL_ACTION_FAILED:
            return ActionResult(False, f"{action} failed: {cause.message}")
        return ActionResult(False, f"{action} failed: {cause.message}")
    return ActionResult(False, f"{action} failed: {cause or exc}")
