"""``CallWorkflow``: one durable workflow per phone call, RINGING -> CONNECTED -> ACTIVE <-> HOLD
(-> TRANSFERRING) -> ENDED. See ``workflows/call_state.py`` for the transition table.

Carrier/LiveKit events arrive as signals (idempotent, order-tolerant: an event that comes late for the
current state is ignored); operator/agent actions are updates whose validators reject illegal
transitions before anything is written. Timers: ringing timeout (-> no-answer), maximum duration from
answer (-> max-duration), hold timeout (-> the caller is taken off hold: a forgotten hold must not
strand or drop the caller)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    import models.calls as c
    import models.recordings as rec
    import workflows.call_state as sm
    import workflows.recording_consent as recording_consent
    from activities.calls import CallRecordActivities
    from models.call_contract import CARRIER_ANSWERED, CARRIER_END_REASONS, room_name
    from models.consent import ConsentRecorded, ConsentReport
    from models.enums import AnsweredBy, CallDirection, CallState, EndReason, MachinePolicy, MediaMode, RouteType
    from workflows.call_leg import CallLeg, run_db
    from workflows.carrier_leg import CarrierStreamLeg
    from workflows.failures import ActivityFailure, failure_reason
    from workflows.flow_runner import FlowRunner
    from workflows.flow_runner import load as load_flow
    from workflows.livekit_leg import LiveKitLeg

S = CallState
# workflow.patched: the task that ended the call completes before the media is torn down (see _finish)
END_BEFORE_TEARDOWN = "end-before-teardown"
ATTACH_ROUTING_WAIT = timedelta(seconds=10)  # a stream may open before the call is routed: wait that long for it


def _leg_for(host: CallWorkflow, start: c.StartCall) -> CallLeg:
    # A console call's socket is carried like a carrier media stream (attached, held, recorded on its media
    # process), only with no carrier leg to dial, redirect or hang up.
    if start.media_mode in (MediaMode.STREAM, MediaMode.WEB):
        return CarrierStreamLeg(host, start)
    if start.media_mode is MediaMode.LIVEKIT:
        return LiveKitLeg(host, start)
    return CallLeg(host)


@workflow.defn(name=c.CALL_WORKFLOW)
class CallWorkflow:
    @workflow.init
    def __init__(self, start: c.StartCall) -> None:
        inbound = start.direction is CallDirection.INBOUND
        self.k = sm.CallLedger(start, space_id=start.space_id, agent_id=start.agent_id)
        self.k.our_number = start.to_number if inbound else start.from_number
        if start.media_mode is MediaMode.LIVEKIT:  # outbound: we create the room; inbound: LiveKit's rule does
            self.k.room = start.room_name or (None if inbound else room_name(start.workflow_id))
        self.k.caller = start.caller_identity
        self._route: c.CallRoute | None = None
        self._leg = _leg_for(self, start)
        self._ended_remotely = False  # the far end (or the carrier) ended it: nothing of theirs to hang up
        self._persisted = -1
        self._lock = asyncio.Lock()  # one media action (hold, resume, transfer) at a time
        self._flow: FlowRunner | None = None  # the number routes to a flow: it runs in place of an agent
        self.k.note("ringing", workflow.now(), start.direction.value)
        if start.caller_identity:
            self.k.join(start.caller_identity, c.ParticipantKind.CALLER, workflow.now())

    @property
    def route(self) -> c.CallRoute:
        assert self._route is not None, "the call is routed first thing in run()"
        return self._route

    # ------------------------------------------------------------------------------------ run
    @workflow.run
    async def run(self, start: c.StartCall) -> c.CallStateView:
        k = self.k
        self._upsert_search_attributes()
        self._route = route = await run_db(CallRecordActivities.route_call, k.route_input())
        k.space_id = route.space_id or k.space_id
        k.our_number = route.our_number or k.our_number
        if not route.accepted:
            self.end(EndReason.REJECTED, "rejected", route.reason)
            if route.space_id:
                await self._open_call(rejected=True)
            return await self._finish()
        k.agent_id = route.agent_id
        flow_id = start.flow_id or (route.flow_id if route.route_type is RouteType.FLOW else None)
        if flow_id and not start.agent_id:
            flow = await load_flow(k.space_id or "", flow_id)  # its current version, pinned for the whole call
            if isinstance(flow, str):
                self.end(EndReason.FAILED, "flow_failed", flow)
            else:
                self._flow = FlowRunner(self, flow, start.variables)
        if sm.recording_wanted(route.recording_policy, start.direction):
            k.recording = c.RECORDING_REQUESTED
            recording_consent.ask(k, route)  # the space may want an announcement or consent first
        self._upsert_search_attributes()
        await self._open_call(rejected=False)
        await self._leg.set_up()  # RINGING
        if k.state is S.RINGING:
            try:
                ringing = timedelta(seconds=route.ringing_timeout_seconds)
                await workflow.wait_condition(lambda: k.state is not S.RINGING, timeout=ringing)
            except TimeoutError:
                self.end(EndReason.NO_ANSWER, "ringing_timeout")
        if k.state is not S.ENDED:  # CONNECTED
            if self._flow is not None:
                self._flow.start()  # prompts first: the caller is waiting for someone to speak
            await self._leg.bring_in_agent(flow=self._flow is not None)  # or a LiveKit job to play the flow on
            await self._persist()
            await self._leg.start_recording()
            await self._converse(route)  # ACTIVE ⇄ HOLD (→ TRANSFERRING) until ENDED
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
                self.end(EndReason.MAX_DURATION, "max_duration")
            else:
                await self._hold_expired()

    async def _finish(self) -> c.CallStateView:
        """ENDED: write the final state, stop the recording, release the media."""
        await self._persist()
        if not self._ended_remotely and workflow.patched(END_BEFORE_TEARDOWN):
            # Releasing the media makes the far end report a hang-up (the caller leaving the deleted room, the
            # carrier's status callback). Arriving while the task that ended the call still runs, that report
            # failed the task (UnhandledCommand), and its retry took the report for the end: an operator's
            # hang-up was answered 409 and a flow lost its last step. A timer completes that task first.
            await workflow.sleep(timedelta(milliseconds=1))
        await self._leg.stop_recording()
        await self._leg.tear_down(self._ended_remotely)
        await self._leg.store_recordings()
        if self._flow is not None:
            await self._flow.finished()  # a voicemail left just before the caller hung up is still stored
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.k.view()

    # --------------------------------------------------------------------------- activities
    async def _open_call(self, rejected: bool) -> None:
        k = self.k
        opened = await run_db(CallRecordActivities.open_call, k.open_call_input(self.route, rejected))
        k.conversation_id = opened.conversation_id
        if rejected:
            self._persisted = k.version

    async def _persist(self) -> None:
        k, version = self.k, self.k.version
        if self._persisted == version or self._route is None or not self._route.accepted:
            return
        state = c.RecordCallStateInput(k.start.call_id, k.state, k.end_reason, k.connected_at, k.ended_at, k.room)
        await run_db(CallRecordActivities.record_call_state, state)
        self._persisted = version

    async def _hold_expired(self) -> None:
        async with self._lock:
            if self.k.state is not S.HOLD:
                return
            try:
                await self._leg.set_hold(False)
            except ActivityFailure as exc:
                self.end(EndReason.FAILED, "hold_timeout", f"could not resume: {failure_reason(exc)}")
                return
            self.transition(S.ACTIVE, "hold_timeout")

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
            self.transition(S.CONNECTED, "connected")

    @workflow.signal(name=c.SIGNAL_ACTIVE)
    def active(self, event: c.ActiveEvent) -> None:
        k = self.k
        if event.agent_identity and k.state is not S.ENDED:
            k.agent_identity = event.agent_identity
            k.join(event.agent_identity, c.ParticipantKind.AGENT, workflow.now())
        if k.state in (S.RINGING, S.CONNECTED):
            self.transition(S.ACTIVE, "active")

    @workflow.signal(name=c.SIGNAL_CARRIER_STATUS)
    def carrier_status(self, event: c.CarrierStatus) -> None:
        status = event.status.strip().lower()
        if status in CARRIER_END_REASONS:
            self._ended_remotely = self._ended_remotely or self.k.state is not S.ENDED
            self.end(CARRIER_END_REASONS[status], f"carrier_{status}")
        elif status in CARRIER_ANSWERED and (target := sm.answered_state(self.k.state)) is not None:
            self.transition(target, f"carrier_{status}")

    @workflow.signal(name=c.SIGNAL_DTMF_RECEIVED)
    def dtmf_received(self, event: c.DtmfEvent) -> None:
        k = self.k
        if k.state is S.ENDED or not event.digits or event.event_id in k.seen_events:
            return
        if event.event_id is not None:
            k.seen_events.add(event.event_id)
        k.dtmf += event.digits
        k.note("dtmf_received", workflow.now(), event.digits)

    @workflow.signal(name=c.SIGNAL_SPEECH_RECEIVED)
    def speech_received(self, event: c.SpeechEvent) -> None:
        """An utterance heard while the call is in its flow (a gather may be listening for it)."""
        if self._flow is not None and self.k.state is not S.ENDED:
            self._flow.heard(event)

    @workflow.signal(name=rec.SIGNAL_RECORDING_UPDATE)
    def recording_update(self, update: rec.RecordingUpdate) -> None:
        """Recording progress reported from outside (LiveKit egress webhooks; it may finish after the call)."""
        self._leg.recording_update(update)

    @workflow.signal(name=c.SIGNAL_TURN_METRICS)
    def turn_metrics(self, turn: c.TurnMetrics) -> None:
        """A turn timed by the voice runtime; kept for the call's state (the last 200)."""
        if self.k.state is not S.ENDED:
            self.k.turns = [*self.k.turns[-199:], turn]

    @workflow.signal(name=c.SIGNAL_AGENT_LEFT)
    def agent_left(self, event: c.AgentLeft) -> None:
        self._leg.agent_left(event)

    @workflow.signal(name=c.SIGNAL_HANGUP_RECEIVED)
    def hangup_received(self, event: c.HangupEvent) -> None:
        self._ended_remotely = self._ended_remotely or self.k.state is not S.ENDED
        self.end(event.reason, "hangup", event.by)

    # ------------------------------------------------------------------------------ updates
    @workflow.update  # named after the method: c.UPDATE_HOLD (tests/workflows/test_call_contract.py)
    async def hold(self, request: c.HoldRequest) -> c.CallStateView:
        async with self._lock:
            self._check(c.UPDATE_HOLD, request, holding_lock=True)
            await self._action(self._leg.set_hold(True))
            self.transition(S.HOLD, "hold", request.by)
        return self.k.view()

    @hold.validator
    def _validate_hold(self, request: c.HoldRequest) -> None:
        self._check(c.UPDATE_HOLD, request)

    @workflow.update  # named after the method: c.UPDATE_RESUME (tests/workflows/test_call_contract.py)
    async def resume(self, request: c.ResumeRequest) -> c.CallStateView:
        async with self._lock:
            self._check(c.UPDATE_RESUME, request, holding_lock=True)
            await self._action(self._leg.set_hold(False))
            self.transition(S.ACTIVE, "resume", request.by)
        return self.k.view()

    @resume.validator
    def _validate_resume(self, request: c.ResumeRequest) -> None:
        self._check(c.UPDATE_RESUME, request)

    @workflow.update  # named after the method: c.UPDATE_TRANSFER (tests/workflows/test_call_contract.py)
    async def transfer(self, request: c.TransferRequest) -> c.TransferResult:
        k = self.k
        async with self._lock:
            self._check(c.UPDATE_TRANSFER, request, holding_lock=True)
            target = sm.transfer_destination(request.target, request.mode)
            previous = k.state
            self.transition(S.TRANSFERRING, "transfer", f"{request.mode.value} to {target} by {request.by}")
            outcome = await self._leg.transfer(request, target)
            if outcome.ok and k.room is None:  # the carrier took its leg to the target: never hang it up
                self._ended_remotely = True
            if k.state is S.TRANSFERRING:
                if not outcome.ok:
                    self.transition(previous, "transfer_failed", outcome.error)
                elif request.mode is c.TransferMode.COLD:
                    self.end(EndReason.TRANSFERRED, "transferred", target)
                else:
                    identity = outcome.participant_identity or target
                    k.join(identity, c.ParticipantKind.TRANSFER_TARGET, workflow.now())
                    self.transition(previous, "transfer_connected", target)
        return c.TransferResult(outcome.ok, k.state, outcome.error, outcome.sip_status_code)

    @transfer.validator
    def _validate_transfer(self, request: c.TransferRequest) -> None:
        self._check(c.UPDATE_TRANSFER, request)

    @workflow.update  # named after the method: c.UPDATE_SEND_DTMF (tests/workflows/test_call_contract.py)
    async def send_dtmf(self, request: c.DtmfRequest) -> c.CallStateView:
        k = self.k
        self._check(c.UPDATE_SEND_DTMF, request)
        await self._action(self._leg.send_dtmf(request.digits))
        k.note("dtmf_sent", workflow.now(), request.digits)
        return k.view()

    @send_dtmf.validator
    def _validate_send_dtmf(self, request: c.DtmfRequest) -> None:
        self._check(c.UPDATE_SEND_DTMF, request)

    @workflow.update  # named after the method: c.UPDATE_HANGUP (tests/workflows/test_call_contract.py)
    async def hangup(self, request: c.HangupRequest) -> c.CallStateView:
        self._check(c.UPDATE_HANGUP, request)
        self.end(request.reason or sm.operator_hangup_reason(self.k.state), "hangup", request.by)
        return self.k.view()

    @hangup.validator
    def _validate_hangup(self, request: c.HangupRequest) -> None:
        self._check(c.UPDATE_HANGUP, request)

    @workflow.update  # named after the method: c.UPDATE_REPORT_ANSWERED_BY
    async def report_answered_by(self, report: c.AnsweredByReport) -> c.CallStateView:
        """Answering-machine detection: the first result is kept (the carrier's callback and our audio detector
        may both report); a machine on a call whose policy is to hang up ends it."""
        k = self.k
        if k.answered_by is None and k.state is not S.ENDED:
            k.answered_by = report
            detail = f"{report.answered_by.value} ({report.source}, {report.decision_ms} ms)"
            k.note("answered_by", workflow.now(), detail)
            amd = k.start.amd
            if report.answered_by is AnsweredBy.MACHINE and amd is not None and amd.policy is MachinePolicy.HANGUP:
                self.end(EndReason.COMPLETED, "machine_hangup")
        return k.view()

    @report_answered_by.validator
    def _validate_report_answered_by(self, report: c.AnsweredByReport) -> None:
        if self.k.start.direction is not CallDirection.OUTBOUND:
            raise ApplicationError(
                "answering-machine detection is for outbound calls", type=c.ILLEGAL_TRANSITION, non_retryable=True
            )

    @workflow.update  # named after the method: c.UPDATE_VOICEMAIL_LEFT
    async def voicemail_left(self, request: c.VoicemailLeft) -> c.CallStateView:
        """LEAVE_MESSAGE: the voice runtime said the message to the machine; the call ends here."""
        k = self.k
        k.voicemail_left = True
        detail = f"{request.message_ms} ms, {'after the beep' if request.after_beep else 'after the greeting'}"
        self.end(EndReason.COMPLETED, "voicemail_left", detail)
        return k.view()

    @voicemail_left.validator
    def _validate_voicemail_left(self, request: c.VoicemailLeft) -> None:
        k, amd = self.k, self.k.start.amd
        if k.state is S.ENDED:
            raise ApplicationError("the call has ended", type=c.ILLEGAL_TRANSITION, non_retryable=True)
        machine = k.answered_by is not None and k.answered_by.answered_by is AnsweredBy.MACHINE
        if amd is None or amd.policy is not MachinePolicy.LEAVE_MESSAGE or not machine:
            raise ApplicationError(
                "no message is to be left on this call (it needs a machine and the leave_message policy)",
                type=c.ILLEGAL_TRANSITION,
                non_retryable=True,
            )

    @workflow.update  # named after the method: c.UPDATE_ATTACH_MEDIA
    async def attach_media(self, request: c.AttachMedia) -> c.MediaAttached:
        """A media-stream process carries the call's audio and agent from now on (the first one, or another
        after the previous one died). Answers once the call is routed, with what the agent needs."""
        k = self.k
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: k.conversation_id is not None or k.state is S.ENDED, timeout=ATTACH_ROUTING_WAIT
            )
        if k.state is S.ENDED or not ((k.agent_id or self._flow) and k.space_id):
            raise ApplicationError("the call has no agent to answer it", type=c.ILLEGAL_TRANSITION, non_retryable=True)
        record = k.recording in (c.RECORDING_REQUESTED, rec.RECORDING_ACTIVE) and request.recording_path is not None
        consent = recording_consent.pending_request(k) if record else None  # record once it is answered
        resumed = self._leg.attach_media(request, record and consent is None)
        if k.state is S.RINGING:  # the carrier connected the audio: media is up
            identity = f"stream:{request.stream_id}"
            k.caller = k.caller or identity
            k.join(identity, c.ParticipantKind.CALLER, workflow.now())
            self.transition(S.CONNECTED, "connected")
        return c.MediaAttached(
            k.start.call_id,
            k.start.workflow_id,
            k.space_id,
            k.agent_id or "",
            k.conversation_id,
            resumed,
            record,
            consent,
            amd=k.start.amd,
            flow=not k.agent_id,  # the flow plays its prompts on the stream until it hands the call to an agent
        )

    @attach_media.validator
    def _validate_attach_media(self, request: c.AttachMedia) -> None:
        if self.k.state is S.ENDED:
            raise ApplicationError("the call has ended", type=c.ILLEGAL_TRANSITION, non_retryable=True)
        if not self._leg.accepts_media():
            raise ApplicationError(
                "this call's audio is not carried by a media stream", type=c.ILLEGAL_TRANSITION, non_retryable=True
            )

    @workflow.update  # named after the method: c.UPDATE_STREAM_ENDED
    def stream_ended(self, ended: c.StreamEnded) -> c.StreamEndedAnswer:
        """The carrier's media stream ended with the call still up (Twilio's ``<Connect action>``): the call moves
        to a new stream at once; the answer says which (or that the call is over). Idempotent per stream."""
        return self._leg.stream_ended(ended)

    @stream_ended.validator
    def _validate_stream_ended(self, ended: c.StreamEnded) -> None:
        if not self._leg.capabilities().carries_media_streams:
            raise ApplicationError(
                "this call's audio is not carried by a media stream", type=c.ILLEGAL_TRANSITION, non_retryable=True
            )
        if not 0 <= ended.stream_no <= self._leg.stream_no():
            raise ApplicationError("no such stream of this call", type=c.ILLEGAL_TRANSITION, non_retryable=True)

    @workflow.update  # named after the method: c.UPDATE_PAUSE_RECORDING
    async def pause_recording(self, request: c.RecordingPauseRequest) -> c.CallStateView:
        """Stop recording while a secret is said (card numbers): the span is silence in the file."""
        self._check_recording(pause=True)
        await self._action(self._leg.set_recording_paused(True))
        self.k.recording = rec.RECORDING_PAUSED
        self.k.note("recording_paused", workflow.now(), request.by)
        return self.k.view()

    @pause_recording.validator
    def _validate_pause_recording(self, request: c.RecordingPauseRequest) -> None:
        self._check_recording(pause=True)

    @workflow.update  # named after the method: c.UPDATE_RESUME_RECORDING
    async def resume_recording(self, request: c.RecordingPauseRequest) -> c.CallStateView:
        self._check_recording(pause=False)
        paused = c.RecordingPaused(False)

        async def resume() -> None:
            nonlocal paused
            paused = await self._leg.set_recording_paused(False)

        await self._action(resume())
        self.k.recording = rec.RECORDING_ACTIVE
        span = f"{paused.span[0]:.2f}-{paused.span[1]:.2f} s" if paused.span else None
        self.k.note("recording_resumed", workflow.now(), span)
        return self.k.view()

    @resume_recording.validator
    def _validate_resume_recording(self, request: c.RecordingPauseRequest) -> None:
        self._check_recording(pause=False)

    def _check_recording(self, *, pause: bool) -> None:
        k, wanted = self.k, rec.RECORDING_ACTIVE if pause else rec.RECORDING_PAUSED
        if k.state is S.ENDED or k.recording != wanted or not self._leg.can_pause_recording():
            now = "not being recorded" if k.recording in (c.RECORDING_OFF, c.RECORDING_REQUESTED) else k.recording
            problem = f"cannot {'pause' if pause else 'resume'} the recording: it is {now}"
            if k.recording == wanted:
                problem = "this call's recording cannot be paused (LiveKit egress records the whole room)"
            raise ApplicationError(problem, type=c.ILLEGAL_TRANSITION, non_retryable=True)

    @workflow.update  # named after the method: c.UPDATE_REPORT_RECORDING_CONSENT
    async def report_recording_consent(self, report: ConsentReport) -> ConsentRecorded:
        """The voice runtime played the announcement / heard the caller's answer: the first outcome counts; a
        recording allowed by it starts now (LiveKit egress; a media stream's recorder once this answers)."""
        k = self.k
        if recording_consent.settle(k, report, workflow.now()):
            await self._leg.consent_given()
        assert k.consent is not None  # the validator saw to it
        record = k.recording in (rec.RECORDING_ACTIVE, rec.RECORDING_PAUSED) and k.consent.outcome.allows_recording
        return ConsentRecorded(record, k.consent.outcome)

    @report_recording_consent.validator
    def _validate_report_recording_consent(self, report: ConsentReport) -> None:
        recording_consent.validate(self.k, report)

    # -------------------------------------------------------------------------------- query
    @workflow.query(name=c.QUERY_GET_STATE)
    def get_state(self) -> c.CallStateView:
        return self.k.view()

    # ------------------------------------------------------------------------------ helpers
    def _check(self, action: str, request: object, holding_lock: bool = False) -> None:
        """Raise ``ApplicationError(type=ILLEGAL_TRANSITION)`` unless ``action`` is legal now."""
        can = self._leg.capabilities()
        problem = sm.action_problem(
            action,
            self.k.state,
            request,
            busy=self._lock.locked() and not holding_lock,
            has_room_and_caller=can.has_room_and_caller,
            has_outbound_trunk=can.has_outbound_trunk,
            has_carrier_leg=can.has_carrier_leg,
            can_hold=can.can_hold,
        )
        if problem is not None:
            raise ApplicationError(problem, type=c.ILLEGAL_TRANSITION, non_retryable=True)

    async def _action(self, awaitable: Awaitable[object]) -> None:
        """Await a media action of an update; its failure fails the update, the state unchanged."""
        try:
            await awaitable
        except ActivityFailure as exc:
            message = failure_reason(exc)
            self.k.note("action_failed", workflow.now(), message)
            raise ApplicationError(message, type=c.CALL_ACTION_FAILED, non_retryable=True) from exc

    def transition(self, target: CallState, event: str, detail: str | None = None) -> None:
        if self.k.transition(target, event, workflow.now(), detail):
            self._upsert_search_attributes()
        else:
            workflow.logger.info("call event ignored in this state", extra={"event": event})

    def end(self, reason: EndReason, event: str, detail: str | None = None) -> None:
        if self.k.end(reason, event, workflow.now(), detail):
            self._upsert_search_attributes()

    def media_stream(self) -> c.AttachMedia | None:
        return self._leg.media_stream()

    def _upsert_search_attributes(self) -> None:
        workflow.upsert_search_attributes(self.k.search_attributes())
