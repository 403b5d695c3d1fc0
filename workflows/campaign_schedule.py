"""The campaign's rule book, pure and deterministic (tested without a server, used inside the workflow):
calling windows in each contact's local time (time zones, daylight-saving changes), pacing (calls per second),
what a finished call means for its contact, and when — or whether — to try again.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from models.calls import AmdOptions, CallStateView
from models.campaign_contacts import known_zone as valid_zone
from models.campaign_contacts import zone_of_number
from models.campaigns import (
    UPDATE_PAUSE,
    UPDATE_RESUME,
    UPDATE_UPDATE_LIMITS,
    CallingWindow,
    CampaignLimits,
    limits_problem,
    parse_hhmm,
    window_problem,
)
from models.enums import AnsweredBy, AttemptResult, CallState, CampaignStatus, ContactOutcome, EndReason, MachinePolicy

MAX_WINDOW_SEARCH_DAYS = 8  # a week and a day covers every allowed weekday, DST shifts included
RATE_SPAN = timedelta(seconds=10)  # current rate: dials over the last 10 s


# ---------------------------------------------------------------------------------- time zones
@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def contact_time_zone(e164: str, given: str | None, default: str = "UTC") -> str:
    """The zone a contact is called in: the one given, else the number's (``phonenumbers``), else ``default``.
    A number spanning several zones (a national mobile range) takes the first the metadata lists."""
    return given or zone_of_number(e164, default)


# ------------------------------------------------------------------------------------- windows
def in_window(now: datetime, tz: str, window: CallingWindow | None) -> bool:
    """Is ``now`` (aware) inside the window in the local time of ``tz``?"""
    if window is None:
        return True
    local = now.astimezone(zone(tz))
    start, end = parse_hhmm(window.start), parse_hhmm(window.end)
    return local.isoweekday() in window.days and start <= local.time() < end


def _instant(day: datetime, at: time, tz: ZoneInfo) -> datetime:
    """``at`` on the local ``day`` as a UTC instant. A time the clocks skip (spring forward) becomes the first
    instant after the gap (when the clocks jump); a time that happens twice (fall back) is its first occurrence."""
    local = datetime.combine(day.date(), at, tzinfo=tz)
    early, late = local.replace(fold=1).astimezone(UTC), local.replace(fold=0).astimezone(UTC)
    if early >= late:  # an ordinary or a repeated time: fold=0 is the (first) occurrence
        return late
    wall = local.replace(tzinfo=None)
    while late - early > timedelta(seconds=1):  # in the gap: find the jump, to the second
        middle = early + (late - early) / 2
        if middle.astimezone(tz).replace(tzinfo=None) >= wall:
            late = middle
        else:
            early = middle
    return early.replace(microsecond=0) + timedelta(seconds=1)  # clocks jump on a whole second, after early


def next_window_open(now: datetime, tz: str, window: CallingWindow | None) -> datetime | None:
    """The first instant at or after ``now`` inside the window (``now`` itself when open); None if never."""
    if in_window(now, tz, window):
        return now
    assert window is not None
    zi = zone(tz)
    start, end = parse_hhmm(window.start), parse_hhmm(window.end)
    local_now = now.astimezone(zi)
    for offset in range(MAX_WINDOW_SEARCH_DAYS):
        day = local_now + timedelta(days=offset)
        if day.isoweekday() not in window.days:
            continue
        opens, closes = _instant(day, start, zi), _instant(day, end, zi)
        if closes <= now or opens >= closes:
            continue
        candidate = max(opens, now)
        if in_window(candidate, tz, window):
            return candidate
    return None


# -------------------------------------------------------------------------------------- pacing
def next_dial_time(now: datetime, last_dial: datetime | None, calls_per_second: float) -> datetime:
    """Dials are spaced ``1 / calls_per_second`` apart: any ``k`` consecutive dials span at least ``k / cps``
    seconds, so no second ever holds more than the limit."""
    if last_dial is None:
        return now
    return max(now, last_dial + timedelta(seconds=1.0 / calls_per_second))


def current_rate(recent: list[datetime], now: datetime) -> float:
    since = now - RATE_SPAN
    return round(sum(1 for t in recent if t > since) / RATE_SPAN.total_seconds(), 3)


# ------------------------------------------------------------------------------------ outcomes
ANSWERED_STATES = frozenset({CallState.CONNECTED, CallState.ACTIVE, CallState.HOLD, CallState.TRANSFERRING})


def _was_answered(view: CallStateView) -> bool:
    return view.answered_by is not None or any(e.state in ANSWERED_STATES for e in view.timeline)


def classify(view: CallStateView, amd: AmdOptions | None) -> AttemptResult:
    """What one finished dial came to."""
    reason = view.end_reason
    if reason is EndReason.BUSY:
        return AttemptResult.BUSY
    if reason is EndReason.NO_ANSWER:
        return AttemptResult.NO_ANSWER
    if reason in (EndReason.FAILED, EndReason.REJECTED) or not _was_answered(view):
        return AttemptResult.CANCELLED if reason is EndReason.CANCELED else AttemptResult.FAILED
    if view.answered_by is AnsweredBy.MACHINE:
        if amd is not None and amd.policy is MachinePolicy.LEAVE_MESSAGE:
            return AttemptResult.VOICEMAIL_LEFT
        return AttemptResult.MACHINE
    return AttemptResult.ANSWERED


FINAL_OF_RESULT: dict[AttemptResult, ContactOutcome] = {
    AttemptResult.ANSWERED: ContactOutcome.ANSWERED,
    AttemptResult.VOICEMAIL_LEFT: ContactOutcome.VOICEMAIL_LEFT,
    AttemptResult.MACHINE: ContactOutcome.NO_ANSWER,  # only machines, no message left: no person was reached
    AttemptResult.NO_ANSWER: ContactOutcome.NO_ANSWER,
    AttemptResult.BUSY: ContactOutcome.BUSY,
    AttemptResult.FAILED: ContactOutcome.FAILED,
    AttemptResult.CANCELLED: ContactOutcome.CANCELLED,
}


def backoff(result: AttemptResult, attempts: int, limits: CampaignLimits) -> timedelta | None:
    """How long to wait after the ``attempts``-th dial came to ``result``; None: no retry for that result."""
    base = limits.backoff_seconds.get(result.value)
    if base is None or attempts >= limits.max_attempts:
        return None
    return timedelta(seconds=base * limits.backoff_multiplier ** max(0, attempts - 1))


def after_attempt(
    result: AttemptResult, attempts: int, limits: CampaignLimits, now: datetime
) -> tuple[ContactOutcome | None, datetime | None]:
    """``(final outcome, None)`` or ``(None, when to dial again)`` after the ``attempts``-th dial."""
    wait = backoff(result, attempts, limits)
    if wait is None:
        return FINAL_OF_RESULT[result], None
    due = now + wait
    if limits.ends_at is not None and due >= limits.ends_at:
        return FINAL_OF_RESULT[result], None
    return None, due


# ------------------------------------------------------------------------------ operator actions
def action_problem(action: str, status: CampaignStatus, limits: CampaignLimits | None = None) -> str | None:
    """Why an operator's action is refused in this status, or None (the update validators' rule book)."""
    if status in (CampaignStatus.COMPLETED, CampaignStatus.CANCELLED, CampaignStatus.CANCELLING):
        return f"the campaign is {status.value}"
    if action == UPDATE_PAUSE and status is CampaignStatus.PAUSED:
        return "the campaign is already paused"
    if action == UPDATE_RESUME and status is not CampaignStatus.PAUSED:
        return "the campaign is not paused"
    if action == UPDATE_UPDATE_LIMITS:
        return "no limits given" if limits is None else limits_problem(limits)
    return None


__all__ = ["limits_problem", "parse_hhmm", "valid_zone", "window_problem"]
