"""``CampaignWorkflow``: one durable workflow per outbound campaign. It pages through the campaign's contacts in
the database, dials each as a child ``CallWorkflow`` within the limits (concurrent calls, calls per second, each
contact's calling window), retries per result with backoff, and writes one final outcome per contact.

No contact is dialled twice: each dial's call id (and so its child workflow id) is fixed by campaign, contact and
attempt, and Temporal refuses a second start of a workflow id; contacts are claimed in numbered batches that a
retried claim returns again; continue-as-new waits until no call is in flight and carries the claimed queue.
The rule book (windows, pacing, outcomes, backoff) is ``workflows/campaign_schedule.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError, ChildWorkflowError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    import models.campaigns as m
    import workflows.campaign_dial as dial
    import workflows.campaign_schedule as rules
    from activities.campaigns import CampaignActivities
    from models.call_contract import outbound_call
    from models.calls import CALL_ID_REUSE_POLICY
    from models.enums import AttemptResult, CampaignStatus, ContactOutcome
    from workflows.call_leg import run_db
    from workflows.calls import CallWorkflow

S = CampaignStatus
HANGUP_TIMEOUT = timedelta(seconds=60)
HANGUP_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=10), maximum_attempts=5)
MAX_RECENT = 200  # dial times kept for the current rate
# From this patch on, results are kept and written with the next database step (a dial's check, a claim) or
# together before a wait: one local activity per dial instead of two.
BATCHED_RESULTS = "batched-results"
FLUSH_BEFORE_WAIT = timedelta(seconds=2)  # a wait this long (or open-ended) writes the kept results first
FLUSH_AT = 100
# Same patch: the dial checks of the next second of the pace are made together (workflows/campaign_dial.py).


@workflow.defn(name=m.CAMPAIGN_WORKFLOW)
class CampaignWorkflow:
    @workflow.init
    def __init__(self, start: m.StartCampaign) -> None:
        carry = start.carry or m.CampaignCarry(m.CampaignCounters(), 0, S.RUNNING)
        self.start = start
        self.limits = start.limits
        self.counters = carry.counters
        self.batch = carry.batch
        self.status = carry.status
        self.hang_up_on_cancel = carry.hang_up_on_cancel
        self.last_dial: datetime | None = carry.next_dial_at
        self.queue: list[m.ContactRef] = list(carry.queue)
        self.recent: list[datetime] = list(carry.recent_dials)
        self.runs = carry.runs
        self.in_flight: dict[int, str] = {}  # contact seq -> its call's workflow id
        self.total = 0
        self.open_count = 0
        self.next_due_at: datetime | None = None
        self.exhausted = False  # the last claim found nothing more ready
        self.version = 0  # bumped by every change the loop may wait for
        self.claimed_at = -1  # the version at the last claim
        self.dials_this_run = 0
        self.tasks: list[asyncio.Task[None]] = []
        self.unrecorded: list[m.RecordAttemptInput] = []  # results kept to write with the next database step
        self.checked: dict[int, dial.Checked] = {}  # contact seq -> its dial check, made ahead
        self.batched = False

    # ------------------------------------------------------------------------------------ run
    @workflow.run
    async def run(self, start: m.StartCampaign) -> m.CampaignProgress:
        self.batched = workflow.patched(BATCHED_RESULTS)
        if start.carry is None:
            await self._persist_status()
        ended_by_time = await self._dial_loop()
        if self.status is S.CANCELLING:
            await self._cancel_in_flight()
        await workflow.wait_condition(lambda: not self.in_flight)
        await self._flush()
        if self.status is S.CANCELLING:
            await self._finish_open(ContactOutcome.CANCELLED)
            self.status = S.CANCELLED
        else:
            if ended_by_time:
                await self._finish_open(ContactOutcome.OUTSIDE_WINDOW)
            self.status = S.COMPLETED
        await self._persist_status()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.progress()

    async def _dial_loop(self) -> bool:
        """Dial until every contact has its outcome (False) or the campaign's end time came (True), or cancel."""
        while self.status is not S.CANCELLING:
            now = workflow.now()
            if self.limits.ends_at is not None and now >= self.limits.ends_at:
                return True
            if self._continue_as_new_due():
                await workflow.wait_condition(lambda: not self.in_flight or self.status is S.CANCELLING)
                if self.status is S.CANCELLING:
                    break
                await workflow.wait_condition(workflow.all_handlers_finished)
                await self._flush()
                workflow.continue_as_new(self._next_run())
            if self.status is S.PAUSED:
                await self._wait(self.limits.ends_at)
                continue
            if not self.queue and self._claim_wanted(now):
                await self._claim(now)
                if not self.queue and not self.in_flight and self.open_count == 0:
                    return False
                continue
            if self.queue and len(self.in_flight) < self.limits.max_concurrent:
                at = rules.next_dial_time(now, self.last_dial, self.limits.calls_per_second)
                if at > now:
                    await self._wait(at)
                    continue
                contact = self.queue[0]
                if not rules.in_window(now, contact.time_zone, self.limits.window):
                    self.queue.pop(0)
                    self.checked.pop(contact.seq, None)
                    await self._defer(contact, now)
                    continue
                if self.batched and not self._fresh_check(contact, now):
                    await self._check_ahead(now)
                    continue
                self.queue.pop(0)
                self._dial(contact, now)
                continue
            await self._wait(self._next_wake())
        return False

    def _claim_wanted(self, now: datetime) -> bool:
        due = self.next_due_at is not None and self.next_due_at <= now
        return not self.exhausted or due or self.claimed_at != self.version

    async def _claim(self, now: datetime) -> None:
        self.batch += 1
        self.claimed_at = self.version
        limit = min(200, max(20, 2 * self.limits.max_concurrent))
        request = m.ClaimContactsInput(self.start.campaign_id, self.batch, limit, now, self._take_unrecorded())
        claimed = await run_db(CampaignActivities.claim_contacts, request)
        self.queue.extend(claimed.contacts)
        self.total, self.open_count, self.next_due_at = claimed.total, claimed.open_count, claimed.next_due_at
        self.exhausted = len(claimed.contacts) < limit

    def _next_wake(self) -> datetime | None:
        wakes = [t for t in (self.next_due_at, self.limits.ends_at) if t is not None]
        return min(wakes) if wakes else None

    async def _wait(self, until: datetime | None) -> None:
        """Until something changes (a call ended, an operator acted) or ``until``."""
        if self.unrecorded and (until is None or until - workflow.now() >= FLUSH_BEFORE_WAIT):
            await self._flush()  # nothing else writes them soon
        seen = self.version
        timeout = None if until is None else max(until - workflow.now(), timedelta(milliseconds=1))
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: self.version != seen, timeout=timeout)

    def _continue_as_new_due(self) -> bool:
        return self.dials_this_run >= self.start.continue_after_dials or workflow.info().is_continue_as_new_suggested()

    def _next_run(self) -> m.StartCampaign:
        carry = m.CampaignCarry(
            counters=self.counters,
            batch=self.batch,
            status=self.status,
            hang_up_on_cancel=self.hang_up_on_cancel,
            next_dial_at=self.last_dial,
            queue=self.queue,
            recent_dials=self.recent[-MAX_RECENT:],
            runs=self.runs + 1,
        )
        s = self.start
        return m.StartCampaign(
            s.campaign_id, s.space_id, s.from_numbers, self.limits, s.agent_id, s.flow_id, s.amd,
            s.continue_after_dials, carry,
        )  # fmt: skip

    # --------------------------------------------------------------------------------- dialling
    def _fresh_check(self, contact: m.ContactRef, now: datetime) -> bool:
        check = self.checked.get(contact.seq)
        return check is not None and now - check.at <= dial.CHECK_VALID

    async def _check_ahead(self, now: datetime) -> None:
        """The dial checks of the contacts at the head of the queue (as many as a second of the pace dials, those in
        their window), in one local activity; a contact refused leaves the queue as opted-out."""
        s = self.start
        picks, begins = dial.checks_ahead(
            self.queue, now, self.limits, s.campaign_id, s.from_numbers, self.counters.placed
        )
        by_id = {n.phone_number_id: n for n in s.from_numbers}
        request = m.BeginAttemptsInput(s.campaign_id, s.space_id, begins, self._take_unrecorded())
        answers = await run_db(CampaignActivities.begin_attempts, request)
        at = workflow.now()
        for contact, begin, allowed in zip(picks, begins, answers.allowed, strict=True):
            if allowed.allowed:
                number = by_id[begin.from_phone_number_id]
                self.checked[contact.seq] = dial.Checked(at, begin.attempt, begin.call_id, number, allowed)
            elif contact in self.queue:  # (a cancel empties the queue meanwhile)
                self.queue.remove(contact)
                self.counters.placed += 1  # a dial begun and stopped by its check, as before the batched checks
                await self._record(contact, begin.attempt, None, None, ContactOutcome.OPTED_OUT)

    def _dial(self, contact: m.ContactRef, now: datetime) -> None:
        check = self.checked.pop(contact.seq, None)
        allowed: m.AttemptAllowed | None = None
        if check is not None:
            attempt, call_id, number, allowed = check.attempt, check.call_id, check.number, check.allowed
        else:  # runs before the batched checks: checked in the attempt itself
            attempt = contact.attempts + 1
            call_id = m.attempt_call_id(self.start.campaign_id, contact.seq, attempt)
            number = self.start.from_numbers[self.counters.placed % len(self.start.from_numbers)]
        self.in_flight[contact.seq] = f"pending:{call_id}"
        self.last_dial = now
        self.recent = [*self.recent[-(MAX_RECENT - 1) :], now]
        self.counters.placed += 1
        self.dials_this_run += 1
        self.tasks.append(asyncio.create_task(self._attempt(contact, attempt, call_id, number, allowed)))

    async def _attempt(
        self,
        contact: m.ContactRef,
        attempt: int,
        call_id: str,
        number: m.FromNumber,
        allowed: m.AttemptAllowed | None,
    ) -> None:
        s = self.start
        try:
            if allowed is None:
                begin = m.BeginAttemptInput(
                    s.campaign_id, s.space_id, contact.seq, attempt, call_id, number.phone_number_id,
                    self._take_unrecorded(),
                )  # fmt: skip
                allowed = await run_db(CampaignActivities.begin_attempt, begin)
            if not allowed.allowed:
                await self._record(contact, attempt, None, None, ContactOutcome.OPTED_OUT)
                return
            if self.status is S.CANCELLING or not await self._route_slot(allowed, call_id):
                await self._record(contact, attempt, None, None, ContactOutcome.CANCELLED)
                return
            result, answered_by = await self._call(contact, call_id, number, allowed)
            outcome, due = rules.after_attempt(result, attempt, self.limits, workflow.now())
            if outcome is None and self.status is S.CANCELLING:
                outcome, due = ContactOutcome.CANCELLED, None
            await self._record(contact, attempt, call_id, result, outcome, due, answered_by)
        finally:
            del self.in_flight[contact.seq]
            self.version += 1

    async def _route_slot(self, allowed: m.AttemptAllowed, call_id: str) -> bool:
        return await dial.route_slot(self.start.space_id, allowed, call_id, lambda: self.status is S.CANCELLING)

    async def _call(
        self, contact: m.ContactRef, call_id: str, number: m.FromNumber, allowed: m.AttemptAllowed
    ) -> tuple[AttemptResult, str | None]:
        """Dial one contact as a child ``CallWorkflow`` and wait for the call to end."""
        s = self.start
        variables = dict(allowed.variables)
        if allowed.name:
            variables.setdefault("name", allowed.name)
        call = outbound_call(
            call_id=call_id,
            space_id=s.space_id,
            phone_number_id=number.phone_number_id,
            media_mode=number.media_mode,
            from_number=number.e164,
            to_number=contact.e164,
            agent_id=s.agent_id,
            flow_id=s.flow_id,
            campaign_id=s.campaign_id,
            variables=variables,
            amd=s.amd,
        )
        self.in_flight[contact.seq] = call.workflow_id
        try:
            # ABANDON: a call in progress is never cut by what happens to the campaign's run; cancel hangs calls up
            # through the call's own update (``hang_up_calls``), so each ends cleanly with its carrier leg.
            handle = await workflow.start_child_workflow(
                CallWorkflow.run,
                call,
                id=call.workflow_id,
                id_reuse_policy=CALL_ID_REUSE_POLICY,
                parent_close_policy=ParentClosePolicy.ABANDON,
            )
        except WorkflowAlreadyStartedError:
            workflow.logger.warning("campaign dial refused: already placed", extra={"call_id": call_id})
            return AttemptResult.FAILED, None
        if self.status is S.CANCELLING and self.hang_up_on_cancel:
            await self._hang_up([call.workflow_id])
        try:
            view = await handle
        except ChildWorkflowError:
            return AttemptResult.FAILED, None
        answered_by = view.answered_by.value if view.answered_by is not None else None
        return rules.classify(view, s.amd), answered_by

    async def _defer(self, contact: m.ContactRef, now: datetime) -> None:
        """Outside the contact's calling window: wait for it to open (no attempt used), or end outside-window."""
        opens = rules.next_window_open(now, contact.time_zone, self.limits.window)
        if opens is None or (self.limits.ends_at is not None and opens >= self.limits.ends_at):
            await self._record(contact, contact.attempts, None, None, ContactOutcome.OUTSIDE_WINDOW)
            return
        await self._record(contact, contact.attempts, None, None, None, opens)

    async def _record(
        self,
        contact: m.ContactRef,
        attempt: int,
        call_id: str | None,
        result: AttemptResult | None,
        outcome: ContactOutcome | None,
        due: datetime | None = None,
        answered_by: str | None = None,
    ) -> None:
        now = workflow.now()
        request = m.RecordAttemptInput(
            self.start.campaign_id, contact.seq, attempt, call_id, result, answered_by, outcome, due, now
        )
        if self.batched:  # written with the next claim or dial check, or before a wait (the contact stays claimed)
            self.unrecorded.append(request)
            if len(self.unrecorded) >= FLUSH_AT:
                await self._flush()
        else:
            await run_db(CampaignActivities.record_attempt, request)
        if outcome is not None:
            self.counters.count(outcome)
        elif due is not None and (self.next_due_at is None or due < self.next_due_at):
            self.next_due_at = due
        self.version += 1

    # --------------------------------------------------------------------------------- the end
    async def _cancel_in_flight(self) -> None:
        await self._persist_status()
        self.queue.clear()
        self.checked.clear()
        if self.hang_up_on_cancel:
            calls = [w for w in self.in_flight.values() if not w.startswith("pending:")]
            if calls:
                await self._hang_up(calls)

    async def _hang_up(self, workflow_ids: list[str]) -> None:
        await workflow.execute_activity_method(
            CampaignActivities.hang_up_calls,
            m.HangUpCallsInput(workflow_ids, self.start.space_id),
            start_to_close_timeout=HANGUP_TIMEOUT,
            retry_policy=HANGUP_RETRY,
        )

    def _take_unrecorded(self) -> list[m.RecordAttemptInput]:
        taken, self.unrecorded = self.unrecorded, []
        return taken

    async def _flush(self) -> None:
        if self.unrecorded:
            await run_db(CampaignActivities.record_attempts, m.RecordAttemptsInput(self._take_unrecorded()))

    async def _finish_open(self, outcome: ContactOutcome) -> None:
        request = m.FinishContactsInput(self.start.campaign_id, outcome, workflow.now())
        finished = await run_db(CampaignActivities.finish_contacts, request)
        for _ in range(finished.count):
            self.counters.count(outcome)
        self.queue.clear()

    async def _persist_status(self, limits: m.CampaignLimits | None = None) -> None:
        request = m.SetCampaignStatusInput(self.start.campaign_id, self.status, workflow.now(), limits)
        await run_db(CampaignActivities.set_campaign_status, request)

    # ---------------------------------------------------------------------------------- updates
    @workflow.update  # named after the method: m.UPDATE_PAUSE
    async def pause(self, request: m.PauseRequest) -> m.CampaignProgress:
        self._check(m.UPDATE_PAUSE)
        self.status = S.PAUSED
        self.version += 1
        await self._persist_status()
        return self.progress()

    @pause.validator
    def _validate_pause(self, request: m.PauseRequest) -> None:
        self._check(m.UPDATE_PAUSE)

    @workflow.update  # named after the method: m.UPDATE_RESUME
    async def resume(self, request: m.ResumeRequest) -> m.CampaignProgress:
        self._check(m.UPDATE_RESUME)
        self.status = S.RUNNING
        self.version += 1
        await self._persist_status()
        return self.progress()

    @resume.validator
    def _validate_resume(self, request: m.ResumeRequest) -> None:
        self._check(m.UPDATE_RESUME)

    @workflow.update  # named after the method: m.UPDATE_CANCEL
    async def cancel(self, request: m.CancelRequest) -> m.CampaignProgress:
        self._check(m.UPDATE_CANCEL)
        self.status = S.CANCELLING
        self.hang_up_on_cancel = request.hang_up
        self.version += 1
        return self.progress()

    @cancel.validator
    def _validate_cancel(self, request: m.CancelRequest) -> None:
        self._check(m.UPDATE_CANCEL)

    @workflow.update  # named after the method: m.UPDATE_UPDATE_LIMITS
    async def update_limits(self, request: m.LimitsRequest) -> m.CampaignProgress:
        self._check(m.UPDATE_UPDATE_LIMITS, request.limits)
        self.limits = request.limits
        self.version += 1
        await self._persist_status(request.limits)
        return self.progress()

    @update_limits.validator
    def _validate_update_limits(self, request: m.LimitsRequest) -> None:
        self._check(m.UPDATE_UPDATE_LIMITS, request.limits)

    @workflow.signal(name=m.SIGNAL_CONTACTS_ADDED)
    def contacts_added(self, event: m.ContactsAdded) -> None:
        self.exhausted = False
        self.total += event.count
        self.open_count += event.count
        self.version += 1

    def _check(self, action: str, limits: m.CampaignLimits | None = None) -> None:
        problem = rules.action_problem(action, self.status, limits)
        if problem is not None:
            raise ApplicationError(problem, type=m.CAMPAIGN_REFUSED, non_retryable=True)

    # ------------------------------------------------------------------------------------ query
    @workflow.query(name=m.QUERY_PROGRESS)
    def get_progress(self) -> m.CampaignProgress:
        return self.progress()

    def progress(self) -> m.CampaignProgress:
        k = self.counters
        nxt = None
        if self.status is S.RUNNING and self.queue:
            nxt = rules.next_dial_time(workflow.now(), self.last_dial, self.limits.calls_per_second)
        elif self.status is S.RUNNING:
            nxt = self.next_due_at
        return m.CampaignProgress(
            campaign_id=self.start.campaign_id,
            status=self.status,
            total=self.total,
            placed=k.placed,
            in_progress=len(self.in_flight),
            answered=k.answered,
            voicemail=k.voicemail,
            no_answer=k.no_answer,
            busy=k.busy,
            failed=k.failed,
            opted_out=k.opted_out,
            outside_window=k.outside_window,
            cancelled=k.cancelled,
            remaining=max(0, self.total - k.finished),
            next_dial_at=nxt,
            current_rate=rules.current_rate(self.recent, workflow.now()),
            limits=self.limits,
            runs=self.runs,
        )
