"""``SmsThreadWorkflow``: one durable thread per space + our number + the other party.

Inbound messages arrive by signal-with-start from the webhook; sends are updates (validated first: an opted-out
party is refused before anything is written); delivery reports are signals applied in any order. Outbound
messages wait in the thread's queue; the head of the queue leaves in a slot granted by its number's
``SmsPacerWorkflow`` (workflows/sms_pacer.py), which paces every thread of that number together (pacing is
workflow state, so it survives a worker restart). Past a size bound the run continues as new carrying the queue,
the opt-out state and the conversation; idle past the space's window, it pauses the conversation and completes
(the next message starts a new run that resumes the same conversation). Rules live in ``workflows/sms_state.py``.
A number routed to a flow answers with it (``workflows/sms_flow.py``) until the flow hands the thread to an agent;
while the flow waits at a gather the thread does not idle out: it waits for the gather's own reply timeout, then
takes the gather's no-input path (runs from before ``GATHER_REPLY_TIMEOUT`` keep idling out)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    import models.sms as m
    import models.sms_pacing as p  # the full name: the sandbox then knows the module (its types resolve)
    import workflows.sms_state as st
    from activities.flows import FlowActivities
    from activities.sms import SmsActivities
    from models.enums import MessageRole
    from models.flow_calls import LoadFlowInput
    from workflows.failures import ActivityFailure, failure_reason
    from workflows.sms_flow import SmsFlow
    from workflows.sms_thread_pacing import ThreadPacing

A = TypeVar("A")
R = TypeVar("R")
Method = Callable[[Any, A], Awaitable[R]]
DB_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=10), maximum_attempts=10)
DB_TIMEOUT = timedelta(seconds=15)
# The carrier send is a local activity (inbound message -> reply sent is then one workflow task); retries past a
# minute become durable timers, and it is idempotent per message id across attempts, crashes and replays
# (activities/sms.py). 429 and 5xx are retried; a 4xx is final (non-retryable SEND_FAILED with the code).
CARRIER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=20),
    maximum_attempts=8,
    non_retryable_error_types=[m.SEND_FAILED],
)
CARRIER_TIMEOUT = timedelta(seconds=12)
AGENT_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=10), maximum_attempts=3)
AGENT_TIMEOUT = timedelta(seconds=60)
UNSUBSCRIBED = 21610  # Twilio's "Attempt to send to unsubscribed recipient"
# Runs before this patch idled out (and completed) with a flow's gather pending, so the next message started the
# flow over; from it on, a pending gather keeps the thread open until its reply timeout, then is a no-input.
GATHER_REPLY_TIMEOUT = "sms-gather-reply-timeout"


async def _db(method: Method[A, R], arg: A) -> R:
    return await workflow.execute_local_activity_method(
        method, arg, start_to_close_timeout=DB_TIMEOUT, retry_policy=DB_RETRY
    )


def _message_id() -> str:
    return f"msg_{workflow.uuid4().hex}"  # replay-stable: a reply is the same message after a crash


@workflow.defn(name=m.SMS_THREAD_WORKFLOW)
class SmsThreadWorkflow(ThreadPacing):
    @workflow.init
    def __init__(self, start: m.StartSmsThread) -> None:
        self.k = st.ThreadLedger.begin(start, workflow.info().workflow_id)
        carry = start.carry
        self.bucket = st.TokenBucket(1.0, 1, carry.tokens if carry else 1.0, carry.tokens_at if carry else None)
        self.slot: p.SlotGrant | None = carry.slot if carry else None  # held for the head of the queue
        self._ask_again_at: datetime | None = None  # the pacer did not answer: when to ask again
        self.inbox: list[m.InboundSms] = []
        self.reports: list[m.DeliveryReport] = []
        self.route: m.SmsRoute | None = None
        self.ready = False  # route loaded and conversation open: handlers wait for it
        self.changes = 0
        self._upserted: m.SmsThreadState | None = None
        self._last_activity = workflow.now()
        self.flow_steps: list[str] = list(carry.flow_steps) if carry else []
        self._flow_state = carry.flow if carry else None  # a flow carried over from the previous run
        self.flow: SmsFlow | None = None

    # ------------------------------------------------------------------------------------ run
    @workflow.run
    async def run(self, start: m.StartSmsThread) -> m.SmsThreadView:
        k = self.k
        route = await _db(SmsActivities.route_sms, m.RouteSmsInput(start.space_id, start.phone_number_id, start.party))
        self.route = route
        if not route.accepted:
            k.paused = True
            self.ready = True
            self._upsert()
            await workflow.wait_condition(workflow.all_handlers_finished)
            return self._view()
        k.agent_id = route.agent_id
        if route.flow_id and self._flow_state is not None and self._flow_state.flow_id == route.flow_id:
            self.flow = SmsFlow(self._flow_state, self.flow_steps, k.workflow_id, k.start.party)
            k.agent_id = self._flow_state.agent_id  # handed over: that agent answers
        if start.carry is None:
            k.opted_out = route.opted_out
            self.bucket.tokens = float(route.burst)
        self.bucket.rate, self.bucket.burst = route.messages_per_second, route.burst
        opened = await _db(SmsActivities.open_thread, self._open_input())
        k.conversation_id = opened.conversation_id
        self.ready = True
        self._upsert()
        idle = timedelta(seconds=route.idle_timeout_seconds)
        while True:
            if self.inbox:
                await self._inbound(self.inbox.pop(0))
            elif self.reports:
                await self._report(self.reports.pop(0))
            elif k.pending and await self._slot_open():
                await self._send(k.pending[0])
            elif k.run_messages >= route.max_messages_per_run or workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not (self.inbox or self.reports):
                    workflow.continue_as_new(self._continued())
            elif (reply_by := self._reply_by()) is not None and reply_by <= workflow.now():
                await self._flow_no_reply()
            elif not await self._wait(idle):
                await _db(SmsActivities.pause_thread, self._pause_input())
                if not (self.inbox or self.reports or k.pending):  # a message may have come meanwhile
                    k.paused = True
                    self._upsert()
                    await workflow.wait_condition(workflow.all_handlers_finished)
                    return self._view()

    async def _wait(self, idle: timedelta) -> bool:
        """Wait for work; False once the thread has been idle for ``idle`` with nothing queued."""
        self._upsert()  # the state the thread rests in (a message answered at once never shows as "sending")
        now, seen, reply_by = workflow.now(), self.changes, self._reply_by()
        if self.k.pending:
            timeout = max(self._until_slot(now), timedelta(milliseconds=1))
        elif reply_by is not None:  # the flow's gather waits its own timeout, not the idle window
            timeout = max(reply_by - now, timedelta(milliseconds=1))
        else:
            timeout = self._last_activity + idle - now
            if timeout <= timedelta(0):
                return False
        try:
            await workflow.wait_condition(lambda: self.changes != seen, timeout=timeout)
        except TimeoutError:
            return bool(self.k.pending) or reply_by is not None
        return True

    def _reply_by(self) -> datetime | None:
        """When the flow's pending gather stops waiting for its reply; None: none pending (or a run before it)."""
        state = self.flow.state if self.flow is not None else None
        if state is None or state.waiting_at is None or state.reply_by is None or self.k.agent_id:
            return None
        return state.reply_by if workflow.patched(GATHER_REPLY_TIMEOUT) else None

    # -------------------------------------------------------------------------------- steps
    async def _inbound(self, sms: m.InboundSms) -> None:
        k = self.k
        if k.seen(sms.message_sid):
            return
        k.remember_inbound(sms.message_sid)
        assert k.conversation_id is not None and self.route is not None
        segments = m.count_segments(sms.body)
        at = sms.received_at or workflow.now()
        stored = await _db(
            SmsActivities.store_message,
            m.StoreMessageInput(
                k.start.space_id, k.conversation_id, _message_id(), m.SmsDirection.INBOUND, MessageRole.CALLER,
                sms.body, segments.count, m.DeliveryStatus.RECEIVED, at, list(sms.media_urls), sms.message_sid,
            ),
        )  # fmt: skip
        if stored.duplicate:  # the same MessageSid reached an earlier run: handled there
            return
        k.add(m.ThreadMessage(stored.message_id, m.SmsDirection.INBOUND, MessageRole.CALLER,
                              m.DeliveryStatus.RECEIVED, segments.count, at, sms.message_sid))  # fmt: skip
        self._last_activity = workflow.now()
        keyword = m.keyword_of(sms.body)
        if keyword in (m.Keyword.STOP, m.Keyword.START):
            opted_out = keyword is m.Keyword.STOP
            change = m.SetOptOutInput(k.start.space_id, k.start.phone_number_id, k.start.party, opted_out, at)
            await _db(SmsActivities.set_opt_out, change)
            k.opted_out = opted_out
            await self._queue(m.SendSms(_message_id(), m.STOP_REPLY if opted_out else m.START_REPLY,
                                        role=MessageRole.SYSTEM))  # fmt: skip
        elif keyword is m.Keyword.HELP:
            await self._queue(m.SendSms(_message_id(), self.route.help_text, role=MessageRole.SYSTEM))
        elif self.route.flow_id and not k.opted_out and sms.body.strip() and not k.agent_id:
            await self._flow_message(self.route.flow_id, sms.body)
        elif k.agent_id and not k.opted_out and sms.body.strip():
            await self._agent_reply(sms.body)

    async def _flow_message(self, flow_id: str, body: str) -> None:
        """The number's flow takes the message (starting it first if it is not running); if it hands the thread
        to an agent, the agent answers this message already."""
        k = self.k
        if self.flow is None:
            try:
                loaded = await _db(FlowActivities.load_flow, LoadFlowInput(k.start.space_id, flow_id))
            except ActivityFailure as exc:  # the message stays in the inbox for staff
                SmsFlow.noted(self.flow_steps, f"flow {flow_id} not started: {failure_reason(exc)}")
                return
            state = m.SmsFlowState(loaded.flow_id, loaded.version, loaded.document_json)
            self.flow = SmsFlow(state, self.flow_steps, k.workflow_id, k.start.party)
        await self.flow.message(body, self._flow_reply)
        await self._flow_moved(body)

    async def _flow_no_reply(self) -> None:
        assert self.flow is not None
        await self.flow.no_reply(self._flow_reply)
        await self._flow_moved(None)

    async def _flow_moved(self, body: str | None) -> None:
        """After the flow took a message (or a gather's timeout): an agent it handed to answers that message."""
        assert self.flow is not None
        if self.flow.state.agent_id is not None:
            self.k.agent_id = self.flow.state.agent_id
            if body is not None:
                await self._agent_reply(body)
        elif self.flow.over:
            self.flow = None  # the next message starts the flow again

    async def _flow_reply(self, text: str) -> None:
        await self._queue(m.SendSms(_message_id(), text[: m.MAX_BODY_CHARS], role=MessageRole.AGENT))

    async def _agent_reply(self, body: str) -> None:
        k = self.k
        assert k.agent_id is not None and k.conversation_id is not None
        variables = dict(self.flow.state.variables) if self.flow is not None else {}
        ask = m.AgentReplyInput(k.start.space_id, k.agent_id, k.conversation_id, body, variables)
        try:
            # A local activity: the reply is computed inside this workflow task (one round trip less per
            # message); a crash recomputes it, and its message id is replay-stable, so it is still sent once.
            reply = await workflow.execute_local_activity(
                m.AGENT_REPLY,
                ask,
                result_type=m.AgentReply,
                start_to_close_timeout=AGENT_TIMEOUT,
                retry_policy=AGENT_RETRY,
            )
        except ActivityFailure as exc:  # the message stays in the inbox for staff
            workflow.logger.warning("agent reply failed", extra={"reason": failure_reason(exc)})
            return
        if reply.text.strip():
            await self._queue(m.SendSms(_message_id(), reply.text[: m.MAX_BODY_CHARS], role=MessageRole.AGENT))

    async def _queue(self, request: m.SendSms) -> m.SmsQueued:
        """Store the message as queued and put it at the end of the thread's queue."""
        k = self.k
        assert k.conversation_id is not None
        segments = m.count_segments(request.body)
        at = workflow.now()
        await _db(
            SmsActivities.store_message,
            m.StoreMessageInput(
                k.start.space_id, k.conversation_id, request.message_id, m.SmsDirection.OUTBOUND, request.role,
                request.body, segments.count, m.DeliveryStatus.QUEUED, at, list(request.media_urls),
            ),
        )  # fmt: skip
        k.add(m.ThreadMessage(request.message_id, m.SmsDirection.OUTBOUND, request.role,
                              m.DeliveryStatus.QUEUED, segments.count, at))  # fmt: skip
        position = len(k.pending)
        k.pending.append(
            m.OutboundSms(request.message_id, request.body, list(request.media_urls), request.role, at, True)
        )
        self._last_activity = at
        self.changes += 1
        return m.SmsQueued(
            request.message_id, m.DeliveryStatus.QUEUED, segments.count, segments.encoding, position, k.conversation_id
        )

    async def _send(self, out: m.OutboundSms) -> None:
        k = self.k
        if k.opted_out and out.role is not MessageRole.SYSTEM:  # STOP arrived after it was queued
            k.pending.pop(0)
            await self._report(m.DeliveryReport(out.message_id, m.DeliveryStatus.FAILED, error_code=UNSUBSCRIBED),
                               "the recipient opted out before it was sent")  # fmt: skip
            return
        s = k.start
        send = m.SendCarrierInput(
            k.workflow_id,
            s.space_id,
            s.phone_number_id,
            out.message_id,
            s.our_number,
            s.party,
            out.body,
            out.media_urls,
            self.slot.at if self.slot else None,
            self.slot.valid_until if self.slot else None,
        )
        try:
            accepted = await workflow.execute_local_activity_method(
                SmsActivities.send_to_carrier, send, start_to_close_timeout=CARRIER_TIMEOUT, retry_policy=CARRIER_RETRY
            )
        except ActivityFailure as exc:
            cause = exc.cause if isinstance(exc, ActivityError) else exc
            self.slot = None
            k.pending.pop(0)
            code = cause.details[0] if isinstance(cause, ApplicationError) and cause.details else None
            failed = m.DeliveryReport(out.message_id, m.DeliveryStatus.FAILED,
                                      error_code=code if isinstance(code, int) else None)  # fmt: skip
            await self._report(failed, failure_reason(exc))
            return
        self.slot = None  # used, or passed
        if accepted.slot_passed:
            return  # came too late to its slot: the message stays at the head and asks for a new one
        k.pending.pop(0)
        report = m.DeliveryReport(out.message_id, accepted.status, accepted.carrier_message_sid)
        k.report(report)  # the activity already wrote the carrier's id and status to the row
        self._last_activity = workflow.now()

    async def _report(self, report: m.DeliveryReport, error: str | None = None) -> None:
        known = report.message_id in self.k.messages
        moved = self.k.report(report, error)
        if moved is None and known:
            return  # late or repeated: nothing changes
        recorded = m.RecordDeliveryInput(
            self.k.start.space_id, report.message_id, report.status, report.carrier_message_sid, report.error_code
        )
        await _db(SmsActivities.record_delivery, recorded)
        self._last_activity = workflow.now()

    # ------------------------------------------------------------------------------ signals
    @workflow.signal(name=m.SIGNAL_INBOUND)
    def inbound_message(self, sms: m.InboundSms) -> None:
        if not self.k.seen(sms.message_sid) and all(q.message_sid != sms.message_sid for q in self.inbox):
            self.inbox.append(sms)
            self.changes += 1

    @workflow.signal(name=m.SIGNAL_DELIVERY_STATUS)
    def delivery_status(self, report: m.DeliveryReport) -> None:
        self.reports.append(report)
        self.changes += 1

    # ------------------------------------------------------------------------------ updates
    @workflow.update(name=m.UPDATE_SEND)
    async def send_message(self, request: m.SendSms) -> m.SmsQueued:
        await workflow.wait_condition(lambda: self.ready)
        if self.k.paused:
            reason = self.route.reason if self.route is not None else None
            raise ApplicationError(f"the number does not send SMS: {reason}", type=m.THREAD_CLOSED, non_retryable=True)
        self._check(request)  # again: the opt-out state is known only once the route is loaded
        if request.message_id in self.k.messages:  # a retried request (after continue-as-new)
            existing = self.k.messages[request.message_id]
            segments = m.count_segments(request.body)
            return m.SmsQueued(existing.message_id, existing.status, segments.count, segments.encoding, 0,
                               self.k.conversation_id)  # fmt: skip
        return await self._queue(request)

    @send_message.validator
    def _validate_send(self, request: m.SendSms) -> None:
        self._check(request)

    def _check(self, request: m.SendSms) -> None:
        problem = st.send_problem(request, self.k.opted_out)
        if problem is not None:
            kind, reason = problem
            raise ApplicationError(reason, type=kind, non_retryable=True)

    # -------------------------------------------------------------------------------- query
    @workflow.query(name=m.QUERY_GET_STATE)
    def get_state(self) -> m.SmsThreadView:
        return self._view()

    # ------------------------------------------------------------------------------ helpers
    def _view(self) -> m.SmsThreadView:
        view = self.k.view()
        view.flow_steps = list(self.flow_steps)
        return view

    def _open_input(self) -> m.OpenThreadInput:
        s = self.k.start
        return m.OpenThreadInput(
            self.k.workflow_id, s.space_id, s.phone_number_id, s.our_number, s.party, self.k.agent_id, workflow.now()
        )

    def _pause_input(self) -> m.PauseThreadInput:
        assert self.k.conversation_id is not None
        return m.PauseThreadInput(self.k.start.space_id, self.k.conversation_id, workflow.now())

    def _continued(self) -> m.StartSmsThread:
        s = self.k.start
        carry = self.k.carry(self.bucket)
        carry.slot = self.slot
        carry.flow = self.flow.state if self.flow is not None else None
        carry.flow_steps = list(self.flow_steps)
        return m.StartSmsThread(s.space_id, s.phone_number_id, s.our_number, s.party, carry)

    def _upsert(self) -> None:
        state = self.k.state
        if state is not self._upserted:
            workflow.upsert_search_attributes(self.k.search_attributes())
            self._upserted = state
