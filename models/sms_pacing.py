"""The SMS pacer contract: one ``SmsPacerWorkflow`` per space + our number paces every send from that number,
whichever thread it belongs to (a carrier limits a sending number, not a conversation).

A thread asks its number's pacer for a send slot before each carrier request (the ``reserve_slot`` update,
update-with-start, so the first send of a number starts its pacer). The pacer answers at once with the moment the
slot opens and how long it stays valid: slots follow the number's token bucket (``burst`` at once, then one every
``1 / rate`` seconds), in the order they were asked for. The thread waits for its slot with a durable timer and
sends; a thread that comes to its slot later than ``valid_until`` (its worker was down, or busy) asks again instead
of sending late, so slots that passed while no worker ran never leave together. The pacer's state is one instant
(the theoretical arrival time of the next message), carried across continue-as-new.

Workflows reach the pacer through an activity (a workflow cannot send an update); that activity, the API and the
tests use ``workflows.sms_pacer_client.SmsPacerClient``, which takes the names from here."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

SMS_PACER_WORKFLOW = "SmsPacerWorkflow"
SMS_PACER_PREFIX = "sms-pacer-"
# A pacer idle long enough to have a full bucket completes; the next send starts a fresh run (same pace).
SMS_PACER_ID_REUSE_POLICY = WorkflowIDReusePolicy.ALLOW_DUPLICATE
SMS_PACER_ID_CONFLICT_POLICY = WorkflowIDConflictPolicy.USE_EXISTING

UPDATE_RESERVE_SLOT = "reserve_slot"
QUERY_PACER_STATE = "get_state"

MAX_GRANTS_PER_RUN = 2000  # continue-as-new bound (slots granted; a batch of them is one update in the history)
MAX_TICKETS_PER_REQUEST = 100
PACER_IDLE = timedelta(minutes=10)  # a pacer with a full bucket and no request for this long completes
# A slot granted open reaches its thread through an activity and a workflow task: on a loaded worker that takes
# hundreds of milliseconds, and a shorter validity made every send ask again forever (bench.sms at 100/s).
MIN_SLOT_VALIDITY = timedelta(seconds=1)


def sms_pacer_workflow_id(space_id: str, our_number: str) -> str:
    """The pacer's workflow id: the space and a hash of our number (ids carry no phone number, as for threads)."""
    digest = hashlib.sha256(f"pacer|{our_number}".encode()).hexdigest()[:24]
    return f"{SMS_PACER_PREFIX}{space_id}-{digest}"


def slot_validity(rate: float) -> timedelta:
    """How long after its opening a slot may still be used: one message's interval, at least a second. A send that
    comes this late is at most ``rate * validity`` messages ahead of the bucket (one, up to 1 message/s); later,
    it asks for a new slot."""
    return max(timedelta(seconds=1.0 / rate), MIN_SLOT_VALIDITY)


@dataclass(frozen=True)
class PacerKey:
    """Whose sends a pacer paces: one number of one space."""

    space_id: str
    our_number: str

    @property
    def workflow_id(self) -> str:
        return sms_pacer_workflow_id(self.space_id, self.our_number)


@dataclass
class PacerCarry:
    """What a pacer keeps across continue-as-new."""

    next_at: datetime | None  # the theoretical arrival time of the next message (GCRA)
    rate: float
    burst: int
    granted_total: int
    runs: int


@dataclass
class StartSmsPacer:
    space_id: str
    max_grants_per_run: int = MAX_GRANTS_PER_RUN
    carry: PacerCarry | None = None


@dataclass
class SlotRequest:
    """Slots for one or more sends, granted in the order of ``tickets`` (a worker asks for the sends waiting on it
    together: one update in flight per pacer and worker, far below Temporal's limit of updates in flight)."""

    request_id: str  # the update id: a retried request is the same slots
    tickets: list[str]
    messages_per_second: float
    burst: int


@dataclass
class SlotGrants:
    grants: list[SlotGrant]


@dataclass
class SlotGrant:
    """Send at ``at`` (not before), and no later than ``valid_until``."""

    ticket: str
    at: datetime
    valid_until: datetime
    waiting: int  # slots granted ahead of this one that had not opened yet


@dataclass
class PacerView:
    workflow_id: str
    space_id: str
    next_at: datetime | None
    rate: float
    burst: int
    granted_total: int
    granted_in_run: int
    runs: int


# ----------------------------------------------------------------------------- activity
@dataclass
class ReserveSlotInput:
    space_id: str
    our_number: str
    message_id: str
    messages_per_second: float
    burst: int
