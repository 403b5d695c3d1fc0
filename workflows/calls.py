"""``CallWorkflow``: one durable workflow per phone call, RINGING -> CONNECTED -> ACTIVE <-> HOLD
(-> TRANSFERRING) -> ENDED. See ``workflows/call_state.py`` for the transition table.

Carrier/LiveKit events arrive as signals (idempotent, order-tolerant: an event that comes late for the
current state is ignored); operator/agent actions are updates whose validators reject illegal
transitions before anything is written. Timers: ringing timeout (-> no-answer), maximum duration from
answer (-> max-duration), hold timeout (-> the caller is taken off hold: a forgotten hold must not
strand or drop the caller)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.calls import CallRecordActivities
    from activities.livekit_rooms import LiveKitRoomActivities
    from models import calls as c
    from models import recordings as rec
    from models.enums import CallDirection, CallState, EndReason, MediaMode
    from models.sip_headers import ROLE_ATTRIBUTE, ROLE_REMOTE_PARTY, ROLE_TRANSFER_TARGET, WORKFLOW_ID_ATTRIBUTE
    from workflows import call_state as sm
    from workflows import carrier_leg, recording
    from workflows.failures import ActivityFailure, failure_reason

S = CallState
A = TypeVar("A")
R = TypeVar("R")
Method = Callable[[Any, A], Awaitable[R]]
DB_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=10), maximum_attempts=10)
LIVEKIT_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=5), maximum_attempts=5)
ONCE = RetryPolicy(maximum_attempts=1)  # dialing and REFER are never repeated: a retry could ring twice
ACTIVITY_TIMEOUT = timedelta(seconds=15)
SIP_TIMEOUT = timedelta(seconds=90)
RECORDING_SETTLE = timedelta(seconds=60)


# Database writes and LiveKit room calls are short, so they run as local activities: inside the workflow task
# that needs them, with no round trip through the server per step. Ringing → agent dispatched is then one task.


async def _db(method: Method[A, R], arg: A) -> R:
    return await workflow.execute_local_activity_method(
        method, arg, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=DB_RETRY
    )


async def _livekit(method: Method[A, R], arg: A) -> R:
    return await workflow.execute_local_activity_method(
        method, arg, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=LIVEKIT_RETRY
    )


@workflow.defn(name=c.CALL_WORKFLOW)
class CallWorkflow:
    @workflow.init
    def __init__(self, start: c.StartCall) -> None:
        inbound = start.direction is CallDirection.INBOUND
        self.k = sm.CallLedger(start, space_id=start.space_id, agent_id=start.agent_id)
        self.k.our_number = start.to_number if inbound else start.from_number
        if start.media_mode is MediaMode.LIVEKIT:  # outbound: we create the room; inbound: LiveKit's rule does
            self.k.room = start.room_name or (None if inbound else c.call_workflow_id(start.carrier_call_id))
        self.k.caller = start.caller_identity
        self._route: c.CallRoute | None = None
        # The carrier's leg of a media-stream call, hung up by us unless the far end ended the call.
        stream = start.media_mode is MediaMode.STREAM
        self._carrier_call_id = start.carrier_call_id if stream and inbound else None
        self._ended_remotely = False
        self._egress_id: str | None = None
        self._persisted = -1
        self._lock = asyncio.Lock()  # one LiveKit action (hold, resume, transfer) at a time
        self.k.note("ringing", workflow.now(), start.direction.value)
        if start.caller_identity:
            self.k.join(start.caller_identity, c.ParticipantKind.CALLER, workflow.now())

    # ------------------------------------------------------------------------------------ run
    @workflow.run
    async def run(self, start: c.StartCall) -> c.CallStateView:
        k = self.k
        self._upsert_search_attributes()
        self._route = route = await _db(CallRecordActivities.route_call, k.route_input())
        k.space_id = route.space_id or k.space_id
        k.our_number = route.our_number or k.our_number
        if not route.accepted:
            self._end(EndReason.REJECTED, "rejected", route.reason)
            if route.space_id:
                await self._open_call(rejected=True)
            return await self._finish()
        k.agent_id = route.agent_id
        if sm.recording_wanted(route.recording_policy, start.direction):
            k.recording = c.RECORDING_REQUESTED
        self._upsert_search_attributes()
        await self._open_call(rejected=False)
        if k.room and not start.room_name:  # a room LiveKit made for an arriving SIP call already exists
            room = c.CreateRoomInput(
                k.room, start.call_id, k.space_id, start.direction, route.max_call_duration_seconds
            )
            try:
                await _livekit(LiveKitRoomActivities.create_room, room)
            except ActivityFailure as exc:  # the call cannot proceed without its room
                self._end(EndReason.FAILED, "livekit_failed", failure_reason(exc))
            if start.direction is CallDirection.OUTBOUND and k.state is S.RINGING:
                await self._dial_callee(route)
        elif start.media_mode is MediaMode.STREAM and start.direction is CallDirection.OUTBOUND:
            placed = await carrier_leg.place(start, route)
            if isinstance(placed, str):
                self._end(EndReason.FAILED, "dial_failed", placed)
            else:
                self._carrier_call_id = placed.carrier_call_id
                k.note("carrier_dialing", workflow.now())
        if k.state is S.RINGING:
            try:
                ringing = timedelta(seconds=route.ringing_timeout_seconds)
                await workflow.wait_condition(lambda: k.state is not S.RINGING, timeout=ringing)
            except TimeoutError:
                self._end(EndReason.NO_ANSWER, "ringing_timeout")
        if k.state is not S.ENDED:
            await self._dispatch_agent()  # first: the caller is waiting for someone to speak
            await self._persist()
            await self._start_recording()
            await self._converse(route)
        return await self._finish()

    async def _converse(self, route: c.CallRoute) -> None:
        """Until ENDED: persist each change, and fire the max-duration and hold timers."""
        k = self.k
        assert k.connected_at is not None
        deadline = k.connected_at + timedelta(seconds=route.max_call_duration_seconds)
        hold_limit = timedelta(seconds=route.hold_timeout_seconds)
        while k.state is not S.ENDED:
            if self._persisted != k.version:
                await self._persist()
                continue
            wake, timer = deadline, "max_duration"
            if k.state is S.HOLD and k.hold_since is not None and k.hold_since + hold_limit < wake:
                wake, timer = k.hold_since + hold_limit, "hold_timeout"
            now, seen = workflow.now(), k.version
            if wake > now:
                try:
                    await workflow.wait_condition(lambda: k.version != seen, timeout=wake - now)  # noqa: B023
                    continue
                except TimeoutError:
                    pass
            if timer == "max_duration":
                self._end(EndReason.MAX_DURATION, "max_duration")
            else:
                await self._hold_expired()

    async def _start_recording(self) -> None:
        k = self.k
        if k.recording != c.RECORDING_REQUESTED or not (k.room and k.space_id) or k.state is S.ENDED:
            return
        started = await recording.start(k.room, k.start.call_id, k.space_id)
        if isinstance(started, str):
            k.recording = rec.RECORDING_FAILED
            k.note("recording_failed", workflow.now(), started)
            return
        self._egress_id = started.egress_id
        k.recording = rec.RECORDING_ACTIVE
        k.note("recording_started", workflow.now(), started.egress_id)

    async def _finish(self) -> c.CallStateView:
        await self._persist()
        if self._egress_id and self.k.recording == rec.RECORDING_ACTIVE:
            failure = await recording.stop(self._egress_id)
            self.k.recording = rec.RECORDING_STOPPING if failure is None else rec.RECORDING_FAILED
            self.k.note("recording_stopped", workflow.now(), failure)
            # LiveKit reports the finished file by webhook: wait a little for it, so the call's
            # final state says where its recording is.
            done = (rec.RECORDING_COMPLETE, rec.RECORDING_FAILED)
            try:
                await workflow.wait_condition(lambda: self.k.recording in done, timeout=RECORDING_SETTLE)
            except TimeoutError:
                self.k.note("recording_unconfirmed", workflow.now())
        route = self._route
        if self._carrier_call_id and not self._ended_remotely and route is not None and route.accepted:
            failure = await carrier_leg.hang_up(route, self._carrier_call_id)
            if failure is not None:
                self.k.note("carrier_hangup_failed", workflow.now(), failure)
        if self.k.room:
            try:
                await _livekit(LiveKitRoomActivities.delete_room, c.DeleteRoomInput(self.k.room))
            except ActivityFailure as exc:
                self.k.note("room_cleanup_failed", workflow.now(), failure_reason(exc))
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.k.view()

    # --------------------------------------------------------------------------- activities
    async def _open_call(self, rejected: bool) -> None:
        k = self.k
        assert self._route is not None
        opened = await _db(CallRecordActivities.open_call, k.open_call_input(self._route, rejected))
        k.conversation_id = opened.conversation_id
        if rejected:
            self._persisted = k.version

    async def _persist(self) -> None:
        k, version = self.k, self.k.version
        if self._persisted == version or self._route is None or not self._route.accepted:
            return
        state = c.RecordCallStateInput(k.start.call_id, k.state, k.end_reason, k.connected_at, k.ended_at, k.room)
        await _db(CallRecordActivities.record_call_state, state)
        self._persisted = version

    async def _dispatch_agent(self) -> None:
        k = self.k
        if not (k.room and k.agent_id and k.space_id) or k.state is S.ENDED:
            return
        request = c.DispatchAgentInput(k.room, k.start.call_id, k.space_id, k.agent_id, k.conversation_id)
        try:
            await _livekit(LiveKitRoomActivities.dispatch_agent, request)
        except ActivityFailure as exc:  # nobody would answer the caller
            self._end(EndReason.FAILED, "livekit_failed", failure_reason(exc))
            return
        k.note("agent_dispatched", workflow.now(), k.agent_id)

    async def _dial_callee(self, route: c.CallRoute) -> None:
        k = self.k
        assert k.room is not None
        if not route.outbound_trunk_id:
            self._end(EndReason.FAILED, "dial_failed", "the number has no provisioned SIP trunk")
            return
        identity, to, ringing = f"sip_{k.start.to_number}", k.start.to_number, route.ringing_timeout_seconds
        dial = c.DialParticipantInput(
            k.room,
            route.outbound_trunk_id,
            to,
            identity,
            k.start.from_number,
            ringing,
            self._sip_attributes(ROLE_REMOTE_PARTY),
        )
        ring = timedelta(seconds=route.ringing_timeout_seconds + 30)
        outcome = await self._sip_action(LiveKitRoomActivities.dial_participant, dial, ring)
        if k.state is S.ENDED:
            return
        if outcome.ok:
            k.caller = identity
            k.join(identity, c.ParticipantKind.CALLER, workflow.now())
            self._transition(S.CONNECTED, "answered")
        else:
            reason = sm.dial_failure_reason(outcome.sip_status_code, outcome.no_answer)
            self._end(reason, "dial_failed", outcome.error)

    async def _sip_action(self, method: Method[A, c.SipOutcome], arg: A, limit: timedelta) -> c.SipOutcome:
        """Run a dial/transfer activity once; a crash or timeout counts as a failed outcome."""
        try:
            return await workflow.execute_activity_method(method, arg, start_to_close_timeout=limit, retry_policy=ONCE)
        except ActivityFailure as exc:
            return c.SipOutcome(ok=False, error=failure_reason(exc))

    async def _set_hold(self, on_hold: bool) -> None:
        assert self.k.room is not None and self.k.caller is not None
        await _livekit(LiveKitRoomActivities.set_hold, c.SetHoldInput(self.k.room, self.k.caller, on_hold))

    async def _hold_expired(self) -> None:
        async with self._lock:
            if self.k.state is not S.HOLD:
                return
            try:
                await self._set_hold(False)
            except ActivityFailure as exc:
                self._end(EndReason.FAILED, "hold_timeout", f"could not resume: {failure_reason(exc)}")
                return
            self._transition(S.ACTIVE, "hold_timeout")

    # ------------------------------------------------------------------------------ signals
    @workflow.signal(name=c.SIGNAL_CONNECTED)
    def connected(self, event: c.ConnectedEvent) -> None:
        k = self.k
        if event.room_name and k.start.media_mode is MediaMode.LIVEKIT and not k.room:
            k.room = event.room_name
        if event.participant_identity and k.state is not S.ENDED:
            k.caller = k.caller or event.participant_identity
            k.join(event.participant_identity, c.ParticipantKind.CALLER, workflow.now())
        if k.state is S.RINGING:
            self._transition(S.CONNECTED, "connected")

    @workflow.signal(name=c.SIGNAL_ACTIVE)
    def active(self, event: c.ActiveEvent) -> None:
        k = self.k
        if event.agent_identity and k.state is not S.ENDED:
            k.agent_identity = event.agent_identity
            k.join(event.agent_identity, c.ParticipantKind.AGENT, workflow.now())
        if k.state in (S.RINGING, S.CONNECTED):
            self._transition(S.ACTIVE, "active")

    @workflow.signal(name=c.SIGNAL_CARRIER_STATUS)
    def carrier_status(self, event: c.CarrierStatus) -> None:
        status = event.status.strip().lower()
        if status in sm.CARRIER_END_REASONS:
            self._ended_remotely = self._ended_remotely or self.k.state is not S.ENDED
            self._end(sm.CARRIER_END_REASONS[status], f"carrier_{status}")
        elif status in sm.CARRIER_ANSWERED and (target := sm.answered_state(self.k.state)) is not None:
            self._transition(target, f"carrier_{status}")

    @workflow.signal(name=c.SIGNAL_DTMF_RECEIVED)
    def dtmf_received(self, event: c.DtmfEvent) -> None:
        k = self.k
        if k.state is S.ENDED or not event.digits or event.event_id in k.seen_events:
            return
        if event.event_id is not None:
            k.seen_events.add(event.event_id)
        k.dtmf += event.digits
        k.note("dtmf_received", workflow.now(), event.digits)

    @workflow.signal(name=rec.SIGNAL_RECORDING_UPDATE)
    def recording_update(self, update: rec.RecordingUpdate) -> None:
        """Egress progress from LiveKit's webhooks (the recording may finish after the call)."""
        if update.egress_id != self._egress_id or self.k.recording in (rec.RECORDING_COMPLETE, rec.RECORDING_FAILED):
            return
        self.k.recording = update.status
        self.k.note(f"recording_{update.status}", workflow.now(), update.location or update.error)

    @workflow.signal(name=c.SIGNAL_TURN_METRICS)
    def turn_metrics(self, turn: c.TurnMetrics) -> None:
        """A turn timed by the voice runtime; kept for the call's state (the last 200)."""
        if self.k.state is not S.ENDED:
            self.k.turns = [*self.k.turns[-199:], turn]

    @workflow.signal(name=c.SIGNAL_HANGUP_RECEIVED)
    def hangup_received(self, event: c.HangupEvent) -> None:
        self._ended_remotely = self._ended_remotely or self.k.state is not S.ENDED
        self._end(event.reason, "hangup", event.by)

    # ------------------------------------------------------------------------------ updates
    @workflow.update(name=c.UPDATE_HOLD)
    async def hold(self, request: c.HoldRequest) -> c.CallStateView:
        async with self._lock:
            self._check(c.UPDATE_HOLD, request, holding_lock=True)
            await self._action(self._set_hold(True))
            self._transition(S.HOLD, "hold", request.by)
        return self.k.view()

    @hold.validator
    def _validate_hold(self, request: c.HoldRequest) -> None:
        self._check(c.UPDATE_HOLD, request)

    @workflow.update(name=c.UPDATE_RESUME)
    async def resume(self, request: c.ResumeRequest) -> c.CallStateView:
        async with self._lock:
            self._check(c.UPDATE_RESUME, request, holding_lock=True)
            await self._action(self._set_hold(False))
            self._transition(S.ACTIVE, "resume", request.by)
        return self.k.view()

    @resume.validator
    def _validate_resume(self, request: c.ResumeRequest) -> None:
        self._check(c.UPDATE_RESUME, request)

    @workflow.update(name=c.UPDATE_TRANSFER)
    async def transfer(self, request: c.TransferRequest) -> c.TransferResult:
        k = self.k
        async with self._lock:
            self._check(c.UPDATE_TRANSFER, request, holding_lock=True)
            target = sm.transfer_destination(request.target, request.mode)
            previous = k.state
            self._transition(S.TRANSFERRING, "transfer", f"{request.mode.value} to {target} by {request.by}")
            if k.room is None:  # a carrier media stream: the carrier takes the caller to the target
                assert self._route is not None and self._carrier_call_id is not None  # guaranteed by _check
                outcome = await carrier_leg.redirect(self._route, self._carrier_call_id, target)
                self._ended_remotely = outcome.ok  # the leg now belongs to the target: never hang it up
            elif request.mode is c.TransferMode.COLD:
                assert k.caller is not None
                refer = c.TransferParticipantInput(k.room, k.caller, target)
                outcome = await self._sip_action(LiveKitRoomActivities.transfer_participant, refer, SIP_TIMEOUT)
            else:
                assert self._route is not None and self._route.outbound_trunk_id is not None
                number = target.removeprefix("tel:")
                dial = c.DialParticipantInput(
                    k.room,
                    self._route.outbound_trunk_id,
                    number,
                    f"transfer_{number}",
                    k.our_number,
                    attributes=self._sip_attributes(ROLE_TRANSFER_TARGET),
                )
                outcome = await self._sip_action(LiveKitRoomActivities.dial_participant, dial, SIP_TIMEOUT)
            if k.state is S.TRANSFERRING:
                if not outcome.ok:
                    self._transition(previous, "transfer_failed", outcome.error)
                elif request.mode is c.TransferMode.COLD:
                    self._end(EndReason.TRANSFERRED, "transferred", target)
                else:
                    identity = outcome.participant_identity or target
                    k.join(identity, c.ParticipantKind.TRANSFER_TARGET, workflow.now())
                    self._transition(previous, "transfer_connected", target)
        return c.TransferResult(outcome.ok, k.state, outcome.error, outcome.sip_status_code)

    @transfer.validator
    def _validate_transfer(self, request: c.TransferRequest) -> None:
        self._check(c.UPDATE_TRANSFER, request)

    @workflow.update(name=c.UPDATE_SEND_DTMF)
    async def send_dtmf(self, request: c.DtmfRequest) -> c.CallStateView:
        k = self.k
        self._check(c.UPDATE_SEND_DTMF, request)
        assert k.room is not None
        send = c.SendDtmfInput(k.room, request.digits, [k.agent_identity] if k.agent_identity else [])
        await self._action(_livekit(LiveKitRoomActivities.send_dtmf, send))
        k.note("dtmf_sent", workflow.now(), request.digits)
        return k.view()

    @send_dtmf.validator
    def _validate_send_dtmf(self, request: c.DtmfRequest) -> None:
        self._check(c.UPDATE_SEND_DTMF, request)

    @workflow.update(name=c.UPDATE_HANGUP)
    async def hangup(self, request: c.HangupRequest) -> c.CallStateView:
        self._check(c.UPDATE_HANGUP, request)
        self._end(request.reason or sm.operator_hangup_reason(self.k.state), "hangup", request.by)
        return self.k.view()

    @hangup.validator
    def _validate_hangup(self, request: c.HangupRequest) -> None:
        self._check(c.UPDATE_HANGUP, request)

    # -------------------------------------------------------------------------------- query
    def _sip_attributes(self, role: str) -> dict[str, str]:
        """Attributes of a participant we dial: LiveKit's webhooks carry them back to this workflow."""
        return {WORKFLOW_ID_ATTRIBUTE: workflow.info().workflow_id, ROLE_ATTRIBUTE: role}

    @workflow.query(name=c.QUERY_GET_STATE)
    def get_state(self) -> c.CallStateView:
        return self.k.view()

    # ------------------------------------------------------------------------------ helpers
    def _check(self, action: str, request: object, holding_lock: bool = False) -> None:
        """Raise ``ApplicationError(type=ILLEGAL_TRANSITION)`` unless ``action`` is legal now."""
        k = self.k
        problem = sm.action_problem(
            action,
            k.state,
            request,
            busy=self._lock.locked() and not holding_lock,
            has_room_and_caller=bool(k.room and k.caller),
            has_outbound_trunk=bool(self._route and self._route.outbound_trunk_id),
            has_carrier_leg=self._carrier_call_id is not None,
        )
        if problem is not None:
            raise ApplicationError(problem, type=c.ILLEGAL_TRANSITION, non_retryable=True)

    async def _action(self, awaitable: Awaitable[object]) -> None:
        """Await a LiveKit action of an update; its failure fails the update, the state unchanged."""
        try:
            await awaitable
        except ActivityFailure as exc:
            message = failure_reason(exc)
            self.k.note("action_failed", workflow.now(), message)
            raise ApplicationError(message, type=c.CALL_ACTION_FAILED, non_retryable=True) from exc

    def _transition(self, target: CallState, event: str, detail: str | None = None) -> None:
        if self.k.transition(target, event, workflow.now(), detail):
            self._upsert_search_attributes()
        else:
            workflow.logger.info("call event ignored in this state", extra={"event": event})

    def _end(self, reason: EndReason, event: str, detail: str | None = None) -> None:
        if self.k.end(reason, event, workflow.now(), detail):
            self._upsert_search_attributes()

    def _upsert_search_attributes(self) -> None:
        workflow.upsert_search_attributes(self.k.search_attributes())
