"""How an ``SmsThreadWorkflow`` paces its sends: the head of its queue leaves in a slot granted by its number's
``SmsPacerWorkflow`` (before ``PER_NUMBER_PACING``: the thread's own token bucket). A part of the thread's class
(it keeps the thread's module within bounds); the state it reads is the thread's."""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    import models.sms as m
    import models.sms_pacing as p  # the full name: the sandbox then knows the module (its types resolve)
    import workflows.sms_state as st
    from activities.sms_pacing import SmsPacingActivities
    from workflows.failures import ActivityFailure, failure_reason

# Asking the pacer is a (remote) activity, not a local one: a local activity holds its workflow task while it
# waits, and with enough threads asking at once every workflow task slot of the worker would be held waiting for
# an update only a free slot can answer (seen in bench/sms.py at 200 threads). Asking is bounded; a thread that got
# no slot asks again after SLOT_ASK_AGAIN (a durable timer).
SLOT_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=2), maximum_attempts=3)
SLOT_TIMEOUT = timedelta(seconds=10)
SLOT_ASK_AGAIN = timedelta(seconds=5)
# Runs before this patch paced sends with a token bucket per thread; from it on, per number (SmsPacerWorkflow).
PER_NUMBER_PACING = "sms-per-number-pacing"


class ThreadPacing:
    k: st.ThreadLedger
    bucket: st.TokenBucket
    slot: p.SlotGrant | None
    route: m.SmsRoute | None
    _ask_again_at: datetime | None

    def _per_number(self) -> bool:
        return workflow.patched(PER_NUMBER_PACING)  # memoized for the run

    async def _slot_open(self) -> bool:
        """Whether the head of the queue may leave now: its slot from the number's pacer has opened (asked for
        first if none is held). Before the patch: the thread's own token bucket."""
        if not self._per_number():
            return self.bucket.take(workflow.now())
        if self.slot is None:
            if self._ask_again_at is not None and workflow.now() < self._ask_again_at:
                return False
            assert self.route is not None
            ask = p.ReserveSlotInput(self.k.start.space_id, self.k.start.our_number, self.k.pending[0].message_id,
                                     self.route.messages_per_second, self.route.burst)  # fmt: skip
            try:
                self.slot = await workflow.execute_activity_method(
                    SmsPacingActivities.reserve_send_slot, ask, start_to_close_timeout=SLOT_TIMEOUT,
                    retry_policy=SLOT_RETRY,
                )  # fmt: skip
            except ActivityFailure as exc:
                workflow.logger.warning("no send slot from the pacer", extra={"reason": failure_reason(exc)})
                self._ask_again_at = workflow.now() + SLOT_ASK_AGAIN
                return False
            self._ask_again_at = None
        return self.slot.at <= workflow.now()

    def _until_slot(self, now: datetime) -> timedelta:
        if not self._per_number():
            return self.bucket.wait(now)
        if self.slot is None:
            return self._ask_again_at - now if self._ask_again_at else timedelta(0)
        return self.slot.at - now
