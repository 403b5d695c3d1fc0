"""A campaign's steps around each dial, beside its loop (``workflows/campaign.py``): the dial checks made ahead
and the wait for a slot of the dial pacer of the route the call goes out through.

Dial checks (do-not-call list, SMS opt-out) are made for the next second of the pace together, in one local
activity, instead of one per dial in the workflow task that starts it: a local activity holds the campaign's
workflow task open, so one per dial spaced the dials by a database write under load (bench/campaign.py). A check
older than ``CHECK_VALID`` (a pause came between) is made again before the dial; a check made again for the same
contact and attempt is the same call id, and checks the lists anew."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    import models.campaigns as m
    import models.sms_pacing  # noqa: F401  (the full name: the sandbox then resolves the dial slot's types)
    import workflows.campaign_schedule as rules
    from activities.dial_pacing import DialPacingActivities
    from models.dial_pacing import ReserveDialSlotInput

CHECK_AHEAD = 1.0  # seconds of the pace checked together
CHECK_VALID = timedelta(seconds=5)
MAX_CHECKS = 50
# Runs before this patch dialled at the campaign's own pace only; from it on, a dial through a carrier account or
# trunk with a calls-per-second limit first takes a slot of that route's pacer (models/dial_pacing.py).
ROUTE_PACING = "route-pacing"
SLOT_TIMEOUT = timedelta(seconds=30)
SLOT_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=10))


@dataclass
class Checked:
    """A contact checked for its next dial (not carried across continue-as-new: checked again, same call id)."""

    at: datetime
    attempt: int
    call_id: str
    number: m.FromNumber
    allowed: m.AttemptAllowed


def checks_ahead(
    queue: list[m.ContactRef],
    now: datetime,
    limits: m.CampaignLimits,
    campaign_id: str,
    numbers: list[m.FromNumber],
    placed: int,
) -> tuple[list[m.ContactRef], list[m.AttemptBegin]]:
    """The contacts at the head of the queue to check together (a second of the pace, those in their window, in
    order) and each one's next attempt, from-number (in turn) and call id."""
    ahead = max(1, min(MAX_CHECKS, math.ceil(limits.calls_per_second * CHECK_AHEAD)))
    picks: list[m.ContactRef] = []
    for contact in queue[:ahead]:
        if not rules.in_window(now, contact.time_zone, limits.window):
            break  # deferred when it comes to the head
        picks.append(contact)
    begins = [
        m.AttemptBegin(
            c.seq, c.attempts + 1, m.attempt_call_id(campaign_id, c.seq, c.attempts + 1),
            numbers[(placed + i) % len(numbers)].phone_number_id,
        )
        for i, c in enumerate(picks)
    ]  # fmt: skip
    return picks, begins


async def route_slot(space_id: str, allowed: m.AttemptAllowed, call_id: str, cancelled: Callable[[], bool]) -> bool:
    """Wait for a slot of the pacer of the account or trunk the dial goes out through, when it has a limit (every
    campaign dialling through it shares the pace); False when the campaign is cancelled meanwhile."""
    if allowed.route is None or allowed.route_cps is None or not workflow.patched(ROUTE_PACING):
        return True
    ask = ReserveDialSlotInput(space_id, allowed.route, allowed.route_cps, call_id)
    while True:
        slot = await workflow.execute_activity_method(
            DialPacingActivities.reserve_dial_slot, ask, start_to_close_timeout=SLOT_TIMEOUT, retry_policy=SLOT_RETRY
        )
        wait = slot.at - workflow.now()
        if wait > timedelta(0):
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(cancelled, timeout=wait)
        if cancelled():
            return False
        if workflow.now() <= slot.valid_until:
            return True
        # came to the slot too late (no worker ran meanwhile): a new one, rather than a burst of late dials
