"""Inputs and outputs of ``CampaignWorkflow``: its start input, updates, query and activities, and the names of
its updates and query (used only by ``workflows/``: the workflow and its typed client,
``workflows.campaign_client``).

A campaign's contacts live in the database (``campaign_contacts``), never in workflow history: the workflow
claims small batches of them, dials each as a child ``CallWorkflow`` and writes every attempt's result back.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import datetime, time
from typing import Any

from temporalio.common import WorkflowIDReusePolicy

from models.calls import AmdOptions
from models.campaign_contacts import known_zone
from models.enums import AttemptResult, CampaignStatus, ContactOutcome, MediaMode

CAMPAIGN_WORKFLOW = "CampaignWorkflow"
CAMPAIGN_WORKFLOW_PREFIX = "campaign-"
# A campaign id is started once; a second start with the same id is refused (the API answers with the first).
CAMPAIGN_ID_REUSE_POLICY = WorkflowIDReusePolicy.REJECT_DUPLICATE

# Updates (operators: API and CLI). Validated before anything changes; each answers with the progress.
UPDATE_PAUSE = "pause"
UPDATE_RESUME = "resume"
UPDATE_CANCEL = "cancel"
UPDATE_UPDATE_LIMITS = "update_limits"
# Signal: contacts were added to the campaign's rows (the workflow pages through them).
SIGNAL_CONTACTS_ADDED = "contacts_added"
# Query
QUERY_PROGRESS = "progress"

# ApplicationError type of a refused update (the API answers 409 with its message).
CAMPAIGN_REFUSED = "CampaignActionRefused"

# Attempt results that may be retried, and their default first backoff (seconds; doubled each attempt).
DEFAULT_BACKOFF_SECONDS: dict[str, float] = {
    AttemptResult.NO_ANSWER.value: 3600.0,
    AttemptResult.BUSY.value: 600.0,
    AttemptResult.FAILED.value: 1800.0,
    AttemptResult.MACHINE.value: 7200.0,
}


def campaign_workflow_id(space_id: str, campaign_id: str) -> str:
    return f"{CAMPAIGN_WORKFLOW_PREFIX}{space_id}-{campaign_id}"


def attempt_call_id(campaign_id: str, seq: int, attempt: int) -> str:
    """The call id of one dial: fixed by campaign, contact and attempt, so the child workflow id is too and
    Temporal refuses a second start of the same dial (``CALL_ID_REUSE_POLICY``), whatever happens to workers."""
    digest = hashlib.sha256(f"{campaign_id}|{seq}|{attempt}".encode()).hexdigest()[:32]
    return f"call_{digest}"


@dataclass
class CallingWindow:
    """Hours on given days, in each contact's local time: ``start`` inclusive, ``end`` exclusive (HH:MM)."""

    start: str = "09:00"
    end: str = "18:00"
    days: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5])  # ISO weekdays, Monday = 1


@dataclass
class CampaignLimits:
    max_concurrent: int = 5
    calls_per_second: float = 1.0
    window: CallingWindow | None = None  # None: any time
    max_attempts: int = 3
    backoff_seconds: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_BACKOFF_SECONDS))
    backoff_multiplier: float = 2.0
    ends_at: datetime | None = None  # contacts not reached by then end as outside-window (or their last result)
    default_time_zone: str = "UTC"  # for numbers whose zone cannot be told and that named none


@dataclass
class FromNumber:
    phone_number_id: str
    e164: str
    media_mode: MediaMode


@dataclass
class CampaignCounters:
    placed: int = 0  # dials started
    answered: int = 0
    voicemail: int = 0
    no_answer: int = 0
    busy: int = 0
    failed: int = 0
    opted_out: int = 0
    outside_window: int = 0
    cancelled: int = 0

    def count(self, outcome: ContactOutcome) -> None:
        name = {
            ContactOutcome.ANSWERED: "answered",
            ContactOutcome.VOICEMAIL_LEFT: "voicemail",
            ContactOutcome.NO_ANSWER: "no_answer",
            ContactOutcome.BUSY: "busy",
            ContactOutcome.FAILED: "failed",
            ContactOutcome.OPTED_OUT: "opted_out",
            ContactOutcome.OUTSIDE_WINDOW: "outside_window",
            ContactOutcome.CANCELLED: "cancelled",
        }[outcome]
        setattr(self, name, getattr(self, name) + 1)

    @property
    def finished(self) -> int:
        return (
            self.answered
            + self.voicemail
            + self.no_answer
            + self.busy
            + self.failed
            + self.opted_out
            + self.outside_window
            + self.cancelled
        )


@dataclass
class ContactRef:
    """A contact claimed for dialling (what the workflow holds of it; its variables stay in the database)."""

    seq: int
    e164: str
    time_zone: str
    attempts: int  # attempts already made


@dataclass
class CampaignCarry:
    """What a campaign run hands to the next across continue-as-new (nothing is in flight then)."""

    counters: CampaignCounters
    batch: int  # claim batches issued so far (each claim is idempotent by its number)
    status: CampaignStatus
    hang_up_on_cancel: bool = False
    next_dial_at: datetime | None = None
    queue: list[ContactRef] = field(default_factory=list)
    recent_dials: list[datetime] = field(default_factory=list)
    runs: int = 1


@dataclass
class StartCampaign:
    campaign_id: str
    space_id: str
    from_numbers: list[FromNumber]
    limits: CampaignLimits
    agent_id: str | None = None
    flow_id: str | None = None
    amd: AmdOptions | None = None
    continue_after_dials: int = 500  # continue-as-new after this many dials in one run (~6,000 events, ~2 MB)
    carry: CampaignCarry | None = None


@dataclass
class CampaignProgress:
    """What ``progress`` answers and what the workflow returns when it closes."""

    campaign_id: str
    status: CampaignStatus
    total: int
    placed: int
    in_progress: int
    answered: int
    voicemail: int
    no_answer: int
    busy: int
    failed: int
    opted_out: int
    outside_window: int
    cancelled: int
    remaining: int  # contacts without a final outcome
    next_dial_at: datetime | None
    current_rate: float  # dials per second over the last 10 s
    limits: CampaignLimits
    runs: int = 1  # workflow runs so far (continue-as-new)


# ------------------------------------------------------------------------------------ updates
@dataclass
class PauseRequest:
    by: str = "staff"


@dataclass
class ResumeRequest:
    by: str = "staff"


@dataclass
class CancelRequest:
    hang_up: bool = False  # True: hang up the calls in progress; False: let them finish
    by: str = "staff"


@dataclass
class LimitsRequest:
    limits: CampaignLimits
    by: str = "staff"


@dataclass
class ContactsAdded:
    count: int


# ---------------------------------------------------------------------------------- activities
@dataclass
class ClaimContactsInput:
    campaign_id: str
    batch: int  # a retried claim of the same batch returns the same contacts
    limit: int
    now: datetime
    records: list[RecordAttemptInput] = field(default_factory=list)  # results not written yet: written first


@dataclass
class ClaimedContacts:
    contacts: list[ContactRef]
    total: int  # contacts of the campaign
    open_count: int  # contacts without a final outcome (claimed or not)
    next_due_at: datetime | None  # the earliest waiting contact not yet due


@dataclass
class BeginAttemptInput:
    campaign_id: str
    space_id: str
    seq: int
    attempt: int
    call_id: str
    from_phone_number_id: str
    records: list[RecordAttemptInput] = field(default_factory=list)  # results not written yet: written first


@dataclass
class AttemptBegin:
    seq: int
    attempt: int
    call_id: str
    from_phone_number_id: str


@dataclass
class BeginAttemptsInput:
    """The dial checks of the next few dials, together (one local activity for up to a second of the pace)."""

    campaign_id: str
    space_id: str
    attempts: list[AttemptBegin]
    records: list[RecordAttemptInput] = field(default_factory=list)  # results not written yet: written first


@dataclass
class AttemptAllowed:
    allowed: bool  # False: the contact opted out or is on the space's do-not-call list (final: opted-out)
    name: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    route: str | None = None  # the carrier account or SIP trunk the dial goes out through (models.dial_pacing)
    route_cps: float | None = None  # its calls-per-second limit now; None: no limit, no slot to ask for


@dataclass
class AttemptsAllowed:
    allowed: list[AttemptAllowed]  # in the order asked


@dataclass
class RecordAttemptInput:
    campaign_id: str
    seq: int
    attempt: int
    call_id: str | None
    result: AttemptResult | None  # None: no dial happened (window deferral, opt-out, cancel)
    answered_by: str | None = None
    outcome: ContactOutcome | None = None  # final; else the contact waits until ``next_attempt_at``
    next_attempt_at: datetime | None = None
    at: datetime | None = None


@dataclass
class AttemptRecorded:
    seq: int


@dataclass
class RecordAttemptsInput:
    """Results the workflow kept to write together (each dial's own write would cost an activity per dial)."""

    records: list[RecordAttemptInput]


@dataclass
class AttemptsRecorded:
    count: int


@dataclass
class SetCampaignStatusInput:
    campaign_id: str
    status: CampaignStatus
    at: datetime
    limits: CampaignLimits | None = None


@dataclass
class CampaignStatusSet:
    campaign_id: str


@dataclass
class FinishContactsInput:
    """Give every contact still open its final outcome (cancel: cancelled; window closed for good)."""

    campaign_id: str
    outcome: ContactOutcome
    at: datetime


@dataclass
class ContactsFinished:
    count: int


@dataclass
class HangUpCallsInput:
    workflow_ids: list[str]
    space_id: str


@dataclass
class CallsHungUp:
    hung_up: int


# ------------------------------------------------------------------------------ limits as JSON (database rows)
def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def limits_json(limits: CampaignLimits) -> dict[str, Any]:
    plain: dict[str, Any] = _plain(asdict(limits))
    return plain


def limits_of(data: dict[str, Any]) -> CampaignLimits:
    window, ends_at = data.get("window"), data.get("ends_at")
    return CampaignLimits(
        max_concurrent=data["max_concurrent"],
        calls_per_second=data["calls_per_second"],
        window=CallingWindow(**window) if window else None,
        max_attempts=data["max_attempts"],
        backoff_seconds=dict(data["backoff_seconds"]),
        backoff_multiplier=data["backoff_multiplier"],
        ends_at=datetime.fromisoformat(ends_at) if ends_at else None,
        default_time_zone=data["default_time_zone"],
    )


# ------------------------------------------------------------------------------------------ checks
def parse_hhmm(text: str) -> time:
    """``"09:00"`` → 09:00; raises ValueError for anything else (``"24:00"`` is the end of the day)."""
    hours, sep, minutes = text.partition(":")
    if not sep or len(hours) != 2 or len(minutes) != 2 or not (hours + minutes).isdigit():
        raise ValueError(f"not a time of day (HH:MM): {text!r}")
    h, m = int(hours), int(minutes)
    if (h, m) == (24, 0):
        return time.max
    if h > 23 or m > 59:
        raise ValueError(f"not a time of day (HH:MM): {text!r}")
    return time(h, m)


def window_problem(window: CallingWindow) -> str | None:
    """Why a window cannot be used, or None."""
    try:
        start, end = parse_hhmm(window.start), parse_hhmm(window.end)
    except ValueError as exc:
        return str(exc)
    if start >= end:
        return "the window must start before it ends (same local day)"
    if not window.days or any(d not in range(1, 8) for d in window.days):
        return "days must be ISO weekdays 1 (Monday) to 7 (Sunday), at least one"
    return None


def limits_problem(limits: CampaignLimits) -> str | None:
    """Why limits cannot be used, or None (update validators and the API share it)."""
    if not 1 <= limits.max_concurrent <= 1000:
        return "max_concurrent must be 1 to 1000"
    if not 0 < limits.calls_per_second <= 100:
        return "calls_per_second must be above 0 and at most 100"
    if not 1 <= limits.max_attempts <= 20:
        return "max_attempts must be 1 to 20"
    if limits.backoff_multiplier < 1 or limits.backoff_multiplier > 10:
        return "backoff_multiplier must be 1 to 10"
    valid_results = {r.value for r in (AttemptResult.NO_ANSWER, AttemptResult.BUSY, AttemptResult.FAILED)}
    valid_results.add(AttemptResult.MACHINE.value)
    for key, seconds in limits.backoff_seconds.items():
        if key not in valid_results:
            return f"backoff_seconds: {key!r} is not one of {', '.join(sorted(valid_results))}"
        if not 0 <= seconds <= 30 * 86400:
            return f"backoff_seconds[{key!r}] must be 0 to 30 days"
    if not known_zone(limits.default_time_zone):
        return f"unknown time zone {limits.default_time_zone!r}"
    if limits.window is not None:
        return window_problem(limits.window)
    return None
