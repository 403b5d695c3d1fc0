"""How the agent acts on its call: through the CallWorkflow's updates and signals, never around it.

The workflow stays the single source of truth: its update validators decide what is legal (an illegal
transition, e.g. holding a call that is transferring, comes back as an :class:`ActionResult` with
``ok=False`` and a readable reason for the LLM, not as an exception), and it performs the LiveKit action.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Protocol

from temporalio.service import RPCError

from models.calls import (
    ActiveEvent,
    CallStateView,
    DtmfRequest,
    HangupRequest,
    HoldRequest,
    RecordingPauseRequest,
    TransferMode,
    TransferRequest,
)
from models.enums import CallState
from workflows.call_client import CallActionError, CallActionFailed, CallActionRefused, CallNotRunning, CallRef

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

    async def pause_recording(self) -> ActionResult: ...

    async def resume_recording(self) -> ActionResult: ...

    async def mark_active(self) -> None:
        """The agent spoke for the first time: the call is live (idempotent)."""


class TemporalCallControl:
    """:class:`CallControl` over the call's workflow, through the typed call client."""

    def __init__(
        self, call: CallRef, *, agent_identity: str | None = None, default_transfer_target: str | None = None
    ) -> None:
        self.call = call
        self.workflow_id = call.workflow_id
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
        try:
            result = await self.call.transfer(TransferRequest(destination, transfer_mode, by=AGENT_ACTOR))
        except (CallActionError, RPCError) as exc:
            return _failure("transfer", exc)
        if not result.ok:
            code = f" (SIP {result.sip_status_code})" if result.sip_status_code else ""
            return ActionResult(False, f"the transfer failed{code}: {result.error or 'no reason given'}", result.state)
        if result.state is CallState.ENDED:
            return ActionResult(True, f"the caller was transferred to {destination}", result.state)
        return ActionResult(True, f"{destination} joined the call", result.state)

    async def hang_up(self) -> ActionResult:
        return await self._act("hang up", self.call.hangup(HangupRequest(by=AGENT_ACTOR)), "the call has ended")

    async def hold(self) -> ActionResult:
        return await self._act("hold", self.call.hold(HoldRequest(by=AGENT_ACTOR)), "the caller is on hold")

    async def send_dtmf(self, digits: str) -> ActionResult:
        digits = "".join(digits.split())
        sending = self.call.send_dtmf(DtmfRequest(digits, by=AGENT_ACTOR))
        return await self._act("send dtmf", sending, f"sent the tones {digits}")

    async def pause_recording(self) -> ActionResult:
        pausing = self.call.pause_recording(RecordingPauseRequest(by=AGENT_ACTOR))
        return await self._act("pause the recording", pausing, "the recording is paused")

    async def resume_recording(self) -> ActionResult:
        resuming = self.call.resume_recording(RecordingPauseRequest(by=AGENT_ACTOR))
        return await self._act("resume the recording", resuming, "the recording goes on")

    async def mark_active(self) -> None:
        if self._active_sent:
            return
        try:
            await self.call.active(ActiveEvent(agent_identity=self.agent_identity))
        except RPCError:  # Temporal unreachable: the workflow also learns of the call from the carrier
            log.warning("could not mark the call active", extra={"workflow_id": self.workflow_id})
            return
        self._active_sent = True

    async def _act(self, action: str, running: Awaitable[CallStateView], done: str) -> ActionResult:
        try:
            view = await running
        except (CallActionError, RPCError) as exc:
            return _failure(action, exc)
        return ActionResult(True, done, view.state)


def _failure(action: str, exc: CallActionError | RPCError) -> ActionResult:
    if isinstance(exc, CallNotRunning):
        return ActionResult(False, "the call has already ended")
    if isinstance(exc, CallActionRefused):
        return ActionResult(False, f"{action} is not possible now: {exc.reason}")
    if isinstance(exc, CallActionFailed):
        return ActionResult(False, f"{action} failed: {exc.reason}")
    log.warning("call action failed", extra={"action": action})
    return ActionResult(False, f"could not reach the call to {action}: {exc}")
