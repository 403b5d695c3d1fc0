"""The leg of a call: what differs between transports, behind one interface, so ``CallWorkflow.run`` reads as
the state machine whichever transport carries the audio.

A leg sets the call's media up (create the room and dial, or place the carrier call), brings the agent in,
records, holds, transfers, sends tones, and tears the media down. ``workflows/livekit_leg.py`` carries calls in
LiveKit rooms; ``workflows/carrier_leg.py`` carries calls whose audio is a carrier media stream (the voice
runtime attaches itself to the stream, so there is no agent to dispatch).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    import models.calls as c
    import models.recordings as rec
    from models.enums import CallState, EndReason
    from workflows.call_state import CallLedger

A = TypeVar("A")
R = TypeVar("R")
Method = Callable[[Any, A], Awaitable[R]]
DB_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=10), maximum_attempts=10)
LIVEKIT_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=5), maximum_attempts=5)
ACTIVITY_TIMEOUT = timedelta(seconds=15)

# Database writes and LiveKit room calls are short, so they run as local activities: inside the workflow task
# that needs them, with no round trip through the server per step. Ringing → agent dispatched is then one task.


async def run_db(method: Method[A, R], arg: A) -> R:
    return await workflow.execute_local_activity_method(
        method, arg, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=DB_RETRY
    )


async def run_livekit(method: Method[A, R], arg: A) -> R:
    return await workflow.execute_local_activity_method(
        method, arg, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=LIVEKIT_RETRY
    )


class LegHost(Protocol):
    """What a leg may see and do of its workflow: the ledger, the route, and the two ways the state moves."""

    k: CallLedger

    @property
    def route(self) -> c.CallRoute: ...

    def transition(self, target: CallState, event: str, detail: str | None = None) -> None: ...

    def end(self, reason: EndReason, event: str, detail: str | None = None) -> None: ...


@dataclass(frozen=True)
class LegCapabilities:
    """What the update validators need to know about the transport (see ``call_state.action_problem``)."""

    has_room_and_caller: bool = False
    has_outbound_trunk: bool = False
    has_carrier_leg: bool = False
    carries_media_streams: bool = False  # a transport process attaches itself to the call (attach_media)
    can_hold: bool = False  # hold/resume without a LiveKit room (a media stream's process holds the caller)


class CallLeg:
    """A transport with nothing of its own to set up or tear down."""

    def __init__(self, host: LegHost) -> None:
        self.host = host

    def capabilities(self) -> LegCapabilities:
        return LegCapabilities()

    async def set_up(self) -> None:
        """Before ringing is awaited: create the media of a call we place, and dial."""

    async def bring_in_agent(self, flow: bool = False) -> None:
        """Once answered: the agent joins (a media stream's agent attaches itself); ``flow``: the call runs its flow
        (a LiveKit room gets a job to play it on)."""

    async def start_recording(self) -> None:
        pass

    async def stop_recording(self) -> None:
        pass

    async def consent_given(self) -> None:
        """The caller consented to (or was told of) the recording the call wants: start it."""

    def recording_update(self, update: rec.RecordingUpdate) -> bool:
        """A recording report from outside; True when it was this leg's and changed something."""
        return False

    async def set_hold(self, on_hold: bool) -> None:
        raise NotImplementedError("validators only allow hold on legs that can hold")

    async def transfer(self, request: c.TransferRequest, target: str) -> c.SipOutcome:
        raise NotImplementedError("validators only allow transfers on legs that can transfer")

    async def send_dtmf(self, digits: str) -> None:
        raise NotImplementedError("validators only allow DTMF on legs that can send it")

    def agent_left(self, event: c.AgentLeft) -> None:
        """The agent's participant left the call's room without a hang-up (LiveKit calls only)."""

    def can_pause_recording(self) -> bool:
        return False

    async def set_recording_paused(self, paused: bool) -> c.RecordingPaused:
        raise NotImplementedError("validators only allow pausing where the leg can")

    async def store_recordings(self) -> None:
        """After tear-down: store what the leg recorded itself."""

    def media_stream(self) -> c.AttachMedia | None:
        """The stream carrying the call's audio now (legs that carry media streams)."""
        return None

    def stream_no(self) -> int:
        """The number of the carrier's current stream (legs that carry media streams)."""
        return 0

    def stream_ended(self, ended: c.StreamEnded) -> c.StreamEndedAnswer:
        """The carrier's stream ended with the call up: where the carrier goes next."""
        raise NotImplementedError("validators only allow stream_ended on legs that carry media streams")

    def accepts_media(self) -> bool:
        """May a transport process attach itself to the call (``attach_media``)?"""
        return self.capabilities().carries_media_streams

    def attach_media(self, request: c.AttachMedia, record: bool = False) -> bool:
        """A transport process carries the call's audio from now on; True when it takes over from another."""
        raise NotImplementedError("validators only allow attach_media on legs that carry media streams")

    async def tear_down(self, ended_remotely: bool) -> None:
        """After ENDED: release what the call held (the room, the carrier's leg)."""
