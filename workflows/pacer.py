"""A pacer: one entity workflow per rate-limited resource that grants slots of its token bucket to whoever asks.
``SmsPacerWorkflow`` (one per sending number) and ``DialPacerWorkflow`` (one per carrier account or SIP trunk) are
this class under their own names: the same loop, update and query.

No activities: the ``reserve_slot`` update answers at once with a slot of the bucket (``workflows/pacer_state.py``),
so a waiter holds no update open (Temporal bounds the updates in flight per workflow) and waits with its own durable
timer. Pacing state is this workflow's state: a worker restart keeps it. Past ``max_grants_per_run`` (or when
Temporal suggests it) the run continues as new with that state; once its bucket has been full for ``PACER_IDLE``
with nothing asked, it completes (a new run would grant the same slots, and the next request starts one)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    import models.sms_pacing as p  # the full name: the sandbox then knows the module (its types resolve)
    from workflows.pacer_state import PacerLedger


class PacerWorkflow:
    """The body of every pacer; a subclass names it (``@workflow.defn``) and runs :meth:`serve`."""

    @workflow.init
    def __init__(self, start: p.StartSmsPacer) -> None:
        self.start = start
        self.ledger = PacerLedger.begin(start.carry)

    async def serve(self, start: p.StartSmsPacer) -> p.PacerView:
        while True:
            granted = self.ledger.granted_total
            idle_from = self.ledger.idle_since()
            now = workflow.now()
            timeout = p.PACER_IDLE if idle_from is None or idle_from < now else idle_from - now + p.PACER_IDLE
            try:
                await workflow.wait_condition(self._full, timeout=timeout)
            except TimeoutError:
                if self.ledger.granted_total == granted:  # nothing asked meanwhile, the bucket is full: done
                    await workflow.wait_condition(workflow.all_handlers_finished)
                    if self.ledger.granted_total == granted:
                        return self.view()
                continue
            await workflow.wait_condition(workflow.all_handlers_finished)
            workflow.continue_as_new(p.StartSmsPacer(start.space_id, start.max_grants_per_run, self.ledger.carry()))

    def _full(self) -> bool:
        return (
            self.ledger.granted_in_run >= self.start.max_grants_per_run
            or workflow.info().is_continue_as_new_suggested()
        )

    @workflow.update(name=p.UPDATE_RESERVE_SLOT)
    def reserve_slot(self, request: p.SlotRequest) -> p.SlotGrants:
        now, grants = workflow.now(), []
        for ticket in request.tickets:
            at, valid_until, waiting = self.ledger.reserve(now, request.messages_per_second, request.burst)
            grants.append(p.SlotGrant(ticket, at, valid_until, waiting))
        return p.SlotGrants(grants)

    @reserve_slot.validator
    def _validate_reserve(self, request: p.SlotRequest) -> None:
        if not request.messages_per_second > 0:  # also refuses NaN
            raise ValueError("messages_per_second must be positive")
        if request.burst < 1:
            raise ValueError("burst must be at least 1")
        if not 1 <= len(request.tickets) <= p.MAX_TICKETS_PER_REQUEST:
            raise ValueError(f"between 1 and {p.MAX_TICKETS_PER_REQUEST} tickets per request")

    @workflow.query(name=p.QUERY_PACER_STATE)
    def get_state(self) -> p.PacerView:
        return self.view()

    def view(self) -> p.PacerView:
        k = self.ledger
        return p.PacerView(
            workflow.info().workflow_id,
            self.start.space_id,
            k.next_at,
            k.rate,
            k.burst,
            k.granted_total,
            k.granted_in_run,
            k.runs,
        )
