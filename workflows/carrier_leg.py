"""A call whose audio is a carrier media stream: the carrier's leg is dialed, redirected (cold transfer) and
hung up through the carrier's REST API; the voice runtime attaches the agent to the stream by itself. A console
call is carried the same way (its socket attached as a stream), with no carrier leg."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    import models.calls as c
    import models.recordings as rec
    import workflows.call_recording as call_recording
    from activities.carrier_calls import CarrierCallActivities
    from activities.media_streams import MediaStreamActivities
    from models.carrier_calls import (
        CarrierCallPlaced,
        EndCarrierCallInput,
        PlaceCarrierCallInput,
        ReconnectStreamInput,
        RedirectCarrierCallInput,
    )
    from models.enums import CallDirection, CallState, EndReason, MediaMode
    from workflows.call_leg import CallLeg, LegCapabilities, LegHost
    from workflows.failures import failure_reason

JOIN_RECORDING_PARTS = "join-recording-parts"  # workflow.patched: a moved call's recording parts are joined
STREAM_LOST_WAITS = "stream-lost-waits-for-carrier"  # workflow.patched: a lost stream waits for <Connect action>
PLACE_ONCE = RetryPolicy(maximum_attempts=1)  # a retried dial could ring the callee twice
HANGUP_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=10), maximum_attempts=10)


async def place(start: c.StartCall, route: c.CallRoute) -> CarrierCallPlaced | str:
    """The carrier's call id, or why the carrier would not dial."""
    assert route.space_id and route.phone_number_id
    request = PlaceCarrierCallInput(
        space_id=route.space_id,
        phone_number_id=route.phone_number_id,
        call_id=start.call_id,
        workflow_id=workflow.info().workflow_id,
        to_number=start.to_number,
        from_number=start.from_number,
        ringing_timeout_seconds=route.ringing_timeout_seconds,
        amd=start.amd is not None,
    )
    try:
        return await workflow.execute_activity_method(
            CarrierCallActivities.place_carrier_call,
            request,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=PLACE_ONCE,
        )
    except ActivityError as exc:
        return failure_reason(exc)


async def redirect(route: c.CallRoute, carrier_call_id: str, target: str) -> c.SipOutcome:
    """Cold-transfer the carrier's leg to ``target``; the outcome in the shape LiveKit transfers use."""
    assert route.space_id and route.phone_number_id
    request = RedirectCarrierCallInput(route.space_id, route.phone_number_id, carrier_call_id, target)
    try:
        result = await workflow.execute_activity_method(
            CarrierCallActivities.redirect_carrier_call,
            request,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=PLACE_ONCE,
        )
    except ActivityError as exc:
        return c.SipOutcome(ok=False, error=failure_reason(exc))
    return c.SipOutcome(ok=result.ok, error=result.error)


async def hang_up(route: c.CallRoute, carrier_call_id: str) -> str | None:
    """End the carrier's leg; None when done, else why not."""
    assert route.space_id and route.phone_number_id
    request = EndCarrierCallInput(route.space_id, route.phone_number_id, carrier_call_id)
    try:
        await workflow.execute_activity_method(
            CarrierCallActivities.end_carrier_call,
            request,
            start_to_close_timeout=timedelta(seconds=15),
            retry_policy=HANGUP_RETRY,
        )
    except ActivityError as exc:
        return failure_reason(exc)
    return None


class CarrierStreamLeg(CallLeg):
    def __init__(self, host: LegHost, start: c.StartCall) -> None:
        super().__init__(host)
        self._start = start
        # The carrier's leg, hung up by us unless the far end ended the call. Inbound: the carrier's call id;
        # outbound: known once the carrier accepted the dial. A console call has none (its socket is the line).
        inbound = start.direction is CallDirection.INBOUND and start.media_mode is MediaMode.STREAM
        self.carrier_call_id: str | None = start.carrier_call_id if inbound else None
        self._stream: c.AttachMedia | None = None  # the stream carrying the call now
        self._attachments = 0
        # The carrier's current <Connect><Stream>: 0 the first TwiML's, +1 per move (its action URL names it).
        self._stream_no = 0
        self._attachments_at_move = 0  # no attachment since the last move: that stream never reached a server
        self._unanswered = 0  # moved streams in a row no media server took
        self._carrying: asyncio.Task[None] | None = None
        self._waiting: asyncio.Task[None] | None = None  # a moved call waits for its new stream
        self._recorded: list[c.AttachMedia] = []  # the streams whose process records the call
        self._paused_by_hold = False  # the recording is paused because the caller is on hold

    def can_pause_recording(self) -> bool:
        return bool(self._recorded) and self._recorded[-1] is self._stream

    async def set_recording_paused(self, paused: bool) -> c.RecordingPaused:
        assert self._stream is not None
        return await call_recording.set_paused(self._stream, paused)

    async def consent_given(self) -> None:
        """The stream's process starts its recorder once the consent update answers: store its file at the end."""
        if self._stream is not None and self._stream.recording_path is not None:
            self._start_recording(self._stream)

    def _start_recording(self, stream: c.AttachMedia) -> None:
        self._recorded.append(stream)
        if self.host.k.recording != rec.RECORDING_ACTIVE:
            self.host.k.recording = rec.RECORDING_ACTIVE
            self.host.k.note("recording_started", workflow.now(), stream.stream_id)

    def capabilities(self) -> LegCapabilities:
        return LegCapabilities(
            has_carrier_leg=self.carrier_call_id is not None,
            carries_media_streams=True,
            can_hold=self._stream is not None,
        )

    async def set_hold(self, on_hold: bool) -> None:
        """The stream's process holds the caller; the recording follows the space's policy: paused over the hold
        (silence in the file, marked on the timeline like a pause) unless the space records time on hold."""
        k, stream = self.host.k, self._stream
        assert stream is not None  # the validator allows hold only once a stream carries the call
        if on_hold:
            pause = call_recording.hold_pauses_recording(k, self.host.route, self.can_pause_recording())
        else:
            pause = self._paused_by_hold
        held = await call_recording.set_stream_hold(stream, on_hold, pause)
        if pause:
            self._paused_by_hold = on_hold
            call_recording.note_hold_pause(k, on_hold, held.paused_span)

    # ------------------------------------------------------------------- the process carrying the audio
    def media_stream(self) -> c.AttachMedia | None:
        return self._stream

    def attach_media(self, request: c.AttachMedia, record: bool = False) -> bool:
        resumed = self._attachments > 0
        self._attachments += 1
        self._stream = request
        if record:
            self._start_recording(request)
        self.host.k.note("agent_reattached" if resumed else "media_attached", workflow.now(), request.task_queue)
        self._carrying = asyncio.create_task(self._carry(request))
        return resumed

    async def _carry(self, stream: c.AttachMedia) -> None:
        """Hold the stream's heartbeating activity on its process; if the process dies, move the call (unless
        the carrier's ``<Connect action>`` already told of the stream's end and the call moved)."""
        k, route, stream_no = self.host.k, self.host.route, self._stream_no
        try:
            await workflow.execute_activity_method(
                MediaStreamActivities.carry_media,
                c.CarryMediaInput(stream.stream_id, k.start.call_id),
                task_queue=stream.task_queue,
                start_to_close_timeout=timedelta(seconds=route.max_call_duration_seconds + 600),
                heartbeat_timeout=timedelta(seconds=c.MEDIA_HEARTBEAT_TIMEOUT_SECONDS),
                retry_policy=PLACE_ONCE,  # a stream lives on one process: there is nothing to retry
                cancellation_type=ActivityCancellationType.TRY_CANCEL,
            )
        except (ActivityError, CancelledError) as exc:
            moved = self._stream is not stream or self._stream_no != stream_no
            if k.state is CallState.ENDED or moved or isinstance(exc, CancelledError):
                return
            cause = exc.cause if isinstance(exc, ActivityError) else None
            handed_over = isinstance(cause, ApplicationError) and cause.type == c.MEDIA_HANDED_OVER
            lost = isinstance(cause, ApplicationError) and cause.type == c.MEDIA_STREAM_LOST
            if lost and workflow.patched(STREAM_LOST_WAITS) and await self._carrier_moves(stream, stream_no):
                return
            k.note("media_handed_over" if handed_over else "media_lost", workflow.now(), failure_reason(exc))
            await self._reattach(stream)

    async def _carrier_moves(self, stream: c.AttachMedia, stream_no: int) -> bool:
        """The stream's socket closed without ``stop``: the carrier requests its ``<Connect action>`` (stream_ended
        moves the call) or reports the hang-up; True if either came in time, else the caller is redirected."""
        k = self.host.k

        def settled() -> bool:
            return k.state is CallState.ENDED or self._stream is not stream or self._stream_no != stream_no

        try:
            wait = timedelta(seconds=c.MEDIA_STREAM_LOST_WAIT_SECONDS)
            await workflow.wait_condition(settled, timeout=wait)
        except TimeoutError:  # (stream_ended cancels this task when it moves the call: nothing more to do then)
            return settled()
        return True

    async def _reattach(self, lost: c.AttachMedia) -> None:
        """Redirect the live carrier leg to a new stream; a fresh agent attaches there and resumes the call."""
        k, route = self.host.k, self.host.route
        if self.carrier_call_id is None or not (route.space_id and route.phone_number_id):
            self.host.end(EndReason.FAILED, "media_lost", "no carrier leg to move")
            return
        self._move()
        request = ReconnectStreamInput(
            route.space_id, route.phone_number_id, self.carrier_call_id, k.start.workflow_id, self._stream_no
        )
        try:
            moved = await workflow.execute_activity_method(
                CarrierCallActivities.reconnect_stream,
                request,
                start_to_close_timeout=timedelta(seconds=15),
                retry_policy=HANGUP_RETRY,
            )
        except ActivityError as exc:
            self.host.end(EndReason.FAILED, "media_lost", failure_reason(exc))
            return
        if not moved.ok:
            self.host.end(EndReason.FAILED, "media_lost", moved.error)
            return
        k.note("media_reconnecting", workflow.now())
        await self._await_new_stream(lost)

    async def _await_new_stream(self, lost: c.AttachMedia | None) -> None:
        k = self.host.k
        try:
            wait = timedelta(seconds=c.MEDIA_REATTACH_WAIT_SECONDS)
            await workflow.wait_condition(lambda: self._stream is not lost or k.state is CallState.ENDED, timeout=wait)
        except TimeoutError:
            self.host.end(EndReason.FAILED, "media_lost", "no media server took the call back")

    def _move(self) -> None:
        """The call goes to a new stream (number ``_stream_no`` from now on)."""
        self._stream_no += 1
        self._attachments_at_move = self._attachments

    def stream_no(self) -> int:
        return self._stream_no

    def stream_ended(self, ended: c.StreamEnded) -> c.StreamEndedAnswer:
        """The carrier's stream ``ended.stream_no`` ended with the call up (its ``<Connect action>``): the call
        moves to a new stream at once, in the answer to the carrier; no heartbeat is waited for."""
        k = self.host.k
        if k.state is CallState.ENDED:
            return c.StreamEndedAnswer(None)
        if ended.stream_no < self._stream_no:  # a retried or late report: the answer already given (one move)
            return c.StreamEndedAnswer(self._stream_no)
        never_attached = self._attachments == self._attachments_at_move
        self._unanswered = self._unanswered + 1 if never_attached else 0
        if self._unanswered >= c.MEDIA_REATTACH_MAX_UNANSWERED:
            self.host.end(EndReason.FAILED, "media_lost", "no media server took the call")
            return c.StreamEndedAnswer(None)
        lost = self._stream
        k.note("media_lost", workflow.now(), "the carrier's stream ended")
        if self._carrying is not None and not self._carrying.done():
            self._carrying.cancel()  # its process is gone (or hung up): nothing left to watch there
        self._move()
        k.note("media_reconnecting", workflow.now())
        self._waiting = asyncio.create_task(self._await_new_stream(lost))
        return c.StreamEndedAnswer(self._stream_no)

    async def set_up(self) -> None:
        if self._start.direction is not CallDirection.OUTBOUND:
            return
        placed = await place(self._start, self.host.route)
        if isinstance(placed, str):
            self.host.end(EndReason.FAILED, "dial_failed", placed)
        else:
            self.carrier_call_id = placed.carrier_call_id
            self.host.k.note("carrier_dialing", workflow.now())

    async def transfer(self, request: c.TransferRequest, target: str) -> c.SipOutcome:
        assert self.carrier_call_id is not None  # guaranteed by the validator (has_carrier_leg)
        return await redirect(self.host.route, self.carrier_call_id, target)

    async def tear_down(self, ended_remotely: bool) -> None:
        if self._carrying is not None and not self._carrying.done():
            self._carrying.cancel()  # the media process hangs its stream up
        route = self.host.route
        if not self.carrier_call_id or ended_remotely or not route.accepted:
            return
        failure = await hang_up(route, self.carrier_call_id)
        if failure is not None:
            self.host.k.note("carrier_hangup_failed", workflow.now(), failure)

    async def store_recordings(self) -> None:
        """The call ended: its recording becomes the call's asset. A call that moved between media processes was
        recorded in parts: they are joined into one file (histories from before that stored the first part that
        could be stored, and so do calls whose join failed)."""
        joined = len(self._recorded) > 1 and workflow.patched(JOIN_RECORDING_PARTS)
        if joined and await call_recording.store_joined_recording(self.host.k, self._recorded) is not None:
            return
        for stream in self._recorded:
            if await call_recording.store_stream_recording(self.host.k, stream) is not None:
                return
