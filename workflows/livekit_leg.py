"""A call carried in a LiveKit room: the room, the SIP participants we dial, the agent dispatch, egress
recording, hold by permissions, cold transfer by SIP REFER, warm transfer by dialing the target in.

A call routed to a flow has a job dispatched in flow mode instead of the agent: the job attaches itself to the
workflow (``attach_media``, naming its own task queue) and the flow's media activities run there. If that job's
participant leaves mid-flow, a new flow-mode job is dispatched; the flow waits for it to attach and goes on at the
step it was in (a prompt cut off is said again from its start). Once the flow has handed over, a lost job is
replaced by a resumed agent, as for any agent call."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    import models.calls as c
    import models.recordings as rec
    import workflows.call_recording as call_recording
    import workflows.call_state as sm
    import workflows.recording as recording
    import workflows.recording_consent as recording_consent
    from activities.livekit_rooms import LiveKitRoomActivities
    from models.enums import CallDirection, CallState, EndReason
    from models.sip_headers import ROLE_ATTRIBUTE, ROLE_REMOTE_PARTY, ROLE_TRANSFER_TARGET, WORKFLOW_ID_ATTRIBUTE
    from workflows.call_leg import A, CallLeg, LegCapabilities, LegHost, Method, run_livekit
    from workflows.failures import ActivityFailure, failure_reason

S = CallState
ONCE = RetryPolicy(maximum_attempts=1)  # dialing and REFER are never repeated: a retry could ring twice
SIP_TIMEOUT = timedelta(seconds=90)
RECORDING_SETTLE = timedelta(seconds=60)
REGISTER_FAILED_EGRESS = "register-failed-egress"  # workflow.patched: an egress that failed mid-call is registered
# workflow.patched: an egress_ended that came before StopEgress answered stands (it used to be overwritten by stopping)
EGRESS_ENDED_BEFORE_STOP = "egress-ended-before-stop"
LIVEKIT_FLOW_JOB = "livekit-flow-job"  # workflow.patched: a flow on a LiveKit call is played by a flow-mode job


class LiveKitLeg(CallLeg):
    def __init__(self, host: LegHost, start: c.StartCall) -> None:
        super().__init__(host)
        self._start = start
        self._egress_id: str | None = None
        self._egress_location: str | None = None
        self._egress_error: str | None = None
        self._dispatches = 0
        self._lost_agents: set[str] = set()
        self._redispatching: asyncio.Task[None] | None = None
        self._egress_starting = False
        self._paused_by_hold = False  # the caller is muted in the room because the recording pauses over the hold
        self._flow_job = False  # the call's flow is played by a job in the room (dispatched in flow mode)
        self._media: c.AttachMedia | None = None  # that job, once attached; None while none is
        self._attachments = 0

    def capabilities(self) -> LegCapabilities:
        k = self.host.k
        return LegCapabilities(
            has_room_and_caller=bool(k.room and k.caller),
            has_outbound_trunk=bool(self.host.route.outbound_trunk_id),
        )

    async def set_up(self) -> None:
        k, start, route = self.host.k, self._start, self.host.route
        if not k.room or start.room_name:  # a room LiveKit made for an arriving SIP call exists already
            return
        room = c.CreateRoomInput(
            k.room, start.call_id, k.space_id, start.direction, route.max_call_duration_seconds, start.workflow_id
        )
        try:
            await run_livekit(LiveKitRoomActivities.create_room, room)
        except ActivityFailure as exc:  # the call cannot proceed without its room
            self.host.end(EndReason.FAILED, "livekit_failed", failure_reason(exc))
        if start.direction is CallDirection.OUTBOUND and k.state is S.RINGING:
            await self._dial_callee()

    async def _dial_callee(self) -> None:
        k, route = self.host.k, self.host.route
        assert k.room is not None
        if not route.outbound_trunk_id:
            self.host.end(EndReason.FAILED, "dial_failed", "the number has no provisioned SIP trunk")
            return
        identity, to = f"sip_{k.start.to_number}", k.start.to_number
        dial = c.DialParticipantInput(
            k.room,
            route.outbound_trunk_id,
            to,
            identity,
            k.start.from_number,
            route.ringing_timeout_seconds,
            self._sip_attributes(ROLE_REMOTE_PARTY),
        )
        ring = timedelta(seconds=route.ringing_timeout_seconds + 30)
        outcome = await self._sip_action(LiveKitRoomActivities.dial_participant, dial, ring)
        if k.state is S.ENDED:
            return
        if outcome.ok:
            k.caller = identity
            k.join(identity, c.ParticipantKind.CALLER, workflow.now())
            self.host.transition(S.CONNECTED, "answered")
        else:
            reason = sm.dial_failure_reason(outcome.sip_status_code, outcome.no_answer)
            self.host.end(reason, "dial_failed", outcome.error)

    async def bring_in_agent(self, flow: bool = False, resumed: bool = False) -> None:
        """Dispatch the agent into the room; ``flow``: a job that plays the call's flow until it hands over."""
        k = self.host.k
        if flow and not workflow.patched(LIVEKIT_FLOW_JOB):
            return  # histories from before: the flow waited for a media stream that never came, and failed
        if not (k.room and (k.agent_id or flow) and k.space_id) or k.state is S.ENDED:
            return
        self._flow_job = self._flow_job or flow
        request = c.DispatchAgentInput(
            k.room,
            k.start.call_id,
            k.space_id,
            k.agent_id or "",
            k.conversation_id,
            workflow.info().workflow_id,
            resumed=resumed,
            attempt=self._dispatches,
            amd=k.start.amd,
            flow=flow,
        )
        self._dispatches += 1
        try:
            await run_livekit(LiveKitRoomActivities.dispatch_agent, request)
        except ActivityFailure as exc:  # nobody would answer the caller
            self.host.end(EndReason.FAILED, "livekit_failed", failure_reason(exc))
            return
        k.note("agent_redispatched" if resumed else "agent_dispatched", workflow.now(), k.agent_id or "flow")

    def agent_left(self, event: c.AgentLeft) -> None:
        """The agent left without the call ending (its worker died): dispatch a new one into the same room, once
        per lost agent however often LiveKit reports it."""
        k = self.host.k
        if k.state is S.ENDED or event.identity in self._lost_agents or event.identity != k.agent_identity:
            return
        self._lost_agents.add(event.identity)
        k.leave(event.identity, workflow.now())
        k.note("agent_lost", workflow.now(), event.identity)
        in_flow = self._flow_job and not k.agent_id  # the flow has not handed over: its prompts wait for the new job
        if in_flow:
            self._media = None
        self._redispatching = asyncio.create_task(self.bring_in_agent(flow=in_flow, resumed=True))

    # ------------------------------------------------------------------------- the flow's job
    def accepts_media(self) -> bool:
        return self._flow_job

    def media_stream(self) -> c.AttachMedia | None:
        return self._media

    def attach_media(self, request: c.AttachMedia, record: bool = False) -> bool:
        """A flow-mode job in the room serves the flow's media activities on its queue from now on (its participant
        is the call's agent participant: its leaving brings a new job)."""
        k, now = self.host.k, workflow.now()
        resumed = self._attachments > 0
        self._attachments += 1
        self._media = request
        if request.participant_identity:
            k.agent_identity = request.participant_identity
            k.join(request.participant_identity, c.ParticipantKind.AGENT, now)
        k.note("agent_reattached" if resumed else "media_attached", now, request.task_queue)
        return resumed

    # --------------------------------------------------------------------------------- recording
    async def start_recording(self) -> None:
        k = self.host.k
        if k.recording != c.RECORDING_REQUESTED or not (k.room and k.space_id) or k.state is S.ENDED:
            return
        if recording_consent.awaiting(k) or self._egress_starting:  # the agent reports consent; egress then
            return
        self._egress_starting = True
        started = await recording.start(k.room, k.start.call_id, k.space_id)
        if isinstance(started, str):
            k.recording = rec.RECORDING_FAILED
            k.note("recording_failed", workflow.now(), started)
            return
        self._egress_id = started.egress_id
        k.recording = rec.RECORDING_ACTIVE
        k.note("recording_started", workflow.now(), started.egress_id)

    async def stop_recording(self) -> None:
        k = self.host.k
        if self._egress_id and k.recording == rec.RECORDING_FAILED and workflow.patched(REGISTER_FAILED_EGRESS):
            # The egress failed during the call (egress_ended said so): its asset is a failed one; the call is not.
            await call_recording.register_egress(k, self._egress_id, self._egress_location, self._egress_error)
            return
        if not (self._egress_id and k.recording in (rec.RECORDING_ACTIVE, rec.RECORDING_PAUSED)):  # paused: on hold
            return
        failure = await recording.stop(self._egress_id)
        done = (rec.RECORDING_COMPLETE, rec.RECORDING_FAILED)
        if not (k.recording in done and workflow.patched(EGRESS_ENDED_BEFORE_STOP)):
            k.recording = rec.RECORDING_STOPPING if failure is None else rec.RECORDING_FAILED
        k.note("recording_stopped", workflow.now(), failure)
        # LiveKit reports the finished file by webhook: wait a little for it, so the call's final state
        # says where its recording is.
        try:
            await workflow.wait_condition(lambda: k.recording in done, timeout=RECORDING_SETTLE)
        except TimeoutError:
            k.note("recording_unconfirmed", workflow.now())
            return
        await call_recording.register_egress(k, self._egress_id, self._egress_location, self._egress_error)

    async def consent_given(self) -> None:
        await self.start_recording()

    def recording_update(self, update: rec.RecordingUpdate) -> bool:
        k = self.host.k
        if update.egress_id != self._egress_id or k.recording in (rec.RECORDING_COMPLETE, rec.RECORDING_FAILED):
            return False
        if not (self._paused_by_hold and update.status == rec.RECORDING_ACTIVE):  # still paused by the hold
            k.recording = update.status
        self._egress_location = update.location or self._egress_location
        self._egress_error = update.error or self._egress_error
        k.note(f"recording_{update.status}", workflow.now(), update.location or update.error)
        return True

    # ----------------------------------------------------------------------------------- actions
    async def set_hold(self, on_hold: bool) -> None:
        """Hold by permissions. The egress records the whole room and cannot pause: where the recording pauses over
        the hold (the space does not record hold), the caller stops publishing too, so the room, and the file, are
        silent over it; marked on the timeline like a pause."""
        k = self.host.k
        assert k.room is not None and k.caller is not None
        can_pause = self._egress_id is not None
        pause = call_recording.hold_pauses_recording(k, self.host.route, can_pause) if on_hold else self._paused_by_hold
        await run_livekit(LiveKitRoomActivities.set_hold, c.SetHoldInput(k.room, k.caller, on_hold, mute_caller=pause))
        if pause:
            self._paused_by_hold = on_hold
            call_recording.note_hold_pause(k, on_hold)

    async def transfer(self, request: c.TransferRequest, target: str) -> c.SipOutcome:
        k, route = self.host.k, self.host.route
        assert k.room is not None
        if request.mode is c.TransferMode.COLD:
            assert k.caller is not None
            refer = c.TransferParticipantInput(k.room, k.caller, target)
            return await self._sip_action(LiveKitRoomActivities.transfer_participant, refer, SIP_TIMEOUT)
        assert route.outbound_trunk_id is not None
        number = target.removeprefix("tel:")
        dial = c.DialParticipantInput(
            k.room,
            route.outbound_trunk_id,
            number,
            f"transfer_{number}",
            k.our_number,
            attributes=self._sip_attributes(ROLE_TRANSFER_TARGET),
        )
        return await self._sip_action(LiveKitRoomActivities.dial_participant, dial, SIP_TIMEOUT)

    async def send_dtmf(self, digits: str) -> None:
        k = self.host.k
        assert k.room is not None
        send = c.SendDtmfInput(k.room, digits, [k.agent_identity] if k.agent_identity else [])
        await run_livekit(LiveKitRoomActivities.send_dtmf, send)

    async def tear_down(self, ended_remotely: bool) -> None:
        k = self.host.k
        if not k.room:
            return
        try:
            await run_livekit(LiveKitRoomActivities.delete_room, c.DeleteRoomInput(k.room))
        except ActivityFailure as exc:
            k.note("room_cleanup_failed", workflow.now(), failure_reason(exc))

    # ----------------------------------------------------------------------------------- helpers
    async def _sip_action(self, method: Method[A, c.SipOutcome], arg: A, limit: timedelta) -> c.SipOutcome:
        """Run a dial/transfer activity once; a crash or timeout counts as a failed outcome."""
        try:
            return await workflow.execute_activity_method(method, arg, start_to_close_timeout=limit, retry_policy=ONCE)
        except ActivityFailure as exc:
            return c.SipOutcome(ok=False, error=failure_reason(exc))

    def _sip_attributes(self, role: str) -> dict[str, str]:
        """Attributes of a participant we dial: LiveKit's webhooks carry them back to this workflow."""
        return {WORKFLOW_ID_ATTRIBUTE: workflow.info().workflow_id, ROLE_ATTRIBUTE: role}
