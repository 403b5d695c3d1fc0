"""The campaign's rule book without a server: windows in each contact's zone (daylight-saving changes included),
pacing, outcomes of a finished call, backoff and the operator-action rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from models.calls import AmdOptions, CallStateView, TimelineEntry
from models.campaigns import UPDATE_PAUSE, UPDATE_RESUME, UPDATE_UPDATE_LIMITS, CallingWindow, CampaignLimits
from models.enums import (
    AnsweredBy,
    AttemptResult,
    CallDirection,
    CallState,
    CampaignStatus,
    ContactOutcome,
    EndReason,
    MachinePolicy,
    MediaMode,
)
from workflows import campaign_schedule as rules

WEEKDAYS = CallingWindow("09:00", "18:00", [1, 2, 3, 4, 5])


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_zone_given_derived_from_the_number_or_the_default() -> None:
    assert rules.contact_time_zone("+12125550100", None) == "America/New_York"
    assert rules.contact_time_zone("+81312345678", None) == "Asia/Tokyo"
    assert rules.contact_time_zone("+442071234567", None) == "Europe/London"
    assert rules.contact_time_zone("+12125550100", "Europe/Paris") == "Europe/Paris"
    assert rules.contact_time_zone("+999", None, "Europe/Berlin") == "Europe/Berlin"  # not a number


def test_the_same_instant_is_inside_for_one_zone_and_outside_for_another() -> None:
    monday_14_utc = utc(2026, 11, 30, 14, 0)  # 09:00 in New York, 23:00 in Tokyo
    assert rules.in_window(monday_14_utc, "America/New_York", WEEKDAYS)
    assert not rules.in_window(monday_14_utc, "Asia/Tokyo", WEEKDAYS)
    assert not rules.in_window(monday_14_utc - timedelta(seconds=1), "America/New_York", WEEKDAYS)
    # Tokyo opens the next morning at 09:00 JST = 00:00 UTC Tuesday
    assert rules.next_window_open(monday_14_utc, "Asia/Tokyo", WEEKDAYS) == utc(2026, 12, 1, 0, 0)
    assert rules.next_window_open(monday_14_utc, "America/New_York", WEEKDAYS) == monday_14_utc


def test_days_are_respected_in_local_time() -> None:
    friday_evening_ny = utc(2026, 12, 4, 23, 30)  # Fri 18:30 New York → next is Monday 09:00 EST
    assert rules.next_window_open(friday_evening_ny, "America/New_York", WEEKDAYS) == utc(2026, 12, 7, 14, 0)
    saturday = CallingWindow("10:00", "12:00", [6])
    assert rules.next_window_open(friday_evening_ny, "America/New_York", saturday) == utc(2026, 12, 5, 15, 0)


def test_windows_follow_daylight_saving_changes() -> None:
    # New York springs forward on Sunday 2027-03-14: 09:00 is 14:00 UTC on Friday, 13:00 UTC on Monday.
    friday_close = utc(2027, 3, 12, 23, 0)
    assert rules.next_window_open(friday_close, "America/New_York", WEEKDAYS) == utc(2027, 3, 15, 13, 0)
    # Europe/Berlin falls back on 2026-10-25: 09:00 is 07:00 UTC before, 08:00 UTC after.
    assert rules.next_window_open(utc(2026, 10, 23, 17, 0), "Europe/Berlin", WEEKDAYS) == utc(2026, 10, 26, 8, 0)


def test_a_window_opening_in_the_skipped_hour_opens_when_the_clocks_jump() -> None:
    night = CallingWindow("02:30", "04:00", [7])  # Sunday 02:30 does not exist on 2027-03-14 in New York
    opens = rules.next_window_open(utc(2027, 3, 14, 5, 0), "America/New_York", night)
    assert opens == utc(2027, 3, 14, 7, 0)  # 03:00 EDT, the first instant after the jump
    assert rules.in_window(opens, "America/New_York", night)
    # and a repeated hour (fall back, 2026-11-01 01:30 happens twice) opens at its first occurrence
    repeated = CallingWindow("01:30", "03:00", [7])
    assert rules.next_window_open(utc(2026, 11, 1, 4, 0), "America/New_York", repeated) == utc(2026, 11, 1, 5, 30)


def test_pacing_spaces_dials_by_the_rate() -> None:
    t0 = utc(2026, 11, 30, 12, 0)
    assert rules.next_dial_time(t0, None, 2.0) == t0
    assert rules.next_dial_time(t0, t0, 2.0) == t0 + timedelta(milliseconds=500)
    assert rules.next_dial_time(t0 + timedelta(seconds=3), t0, 2.0) == t0 + timedelta(seconds=3)
    dials = [t0]
    for _ in range(20):
        dials.append(rules.next_dial_time(dials[-1], dials[-1], 4.0))
    assert all(dials[i + 4] - dials[i] >= timedelta(seconds=1) for i in range(len(dials) - 4))
    assert rules.current_rate(dials[-10:], dials[-1]) == 1.0  # 10 dials in the last 10 s


def _view(reason: EndReason, *, answered: bool, by: AnsweredBy | None = None) -> CallStateView:
    at = utc(2026, 11, 30, 12, 0)
    timeline = [TimelineEntry(at, "ringing", CallState.RINGING)]
    if answered:
        timeline.append(TimelineEntry(at, "connected", CallState.CONNECTED, CallState.RINGING))
    timeline.append(TimelineEntry(at, "hangup", CallState.ENDED, CallState.CONNECTED))
    return CallStateView(
        "call_x", "call-sp-x", "sp", CallDirection.OUTBOUND, MediaMode.STREAM, "+1", "+2", CallState.ENDED,
        reason, timeline, [], None, None, None, "off", answered_by=by,
    )  # fmt: skip


def test_what_a_finished_call_came_to() -> None:
    hangup, message = AmdOptions(MachinePolicy.HANGUP), AmdOptions(MachinePolicy.LEAVE_MESSAGE)
    assert rules.classify(_view(EndReason.BUSY, answered=False), None) is AttemptResult.BUSY
    assert rules.classify(_view(EndReason.NO_ANSWER, answered=False), None) is AttemptResult.NO_ANSWER
    assert rules.classify(_view(EndReason.FAILED, answered=False), None) is AttemptResult.FAILED
    assert rules.classify(_view(EndReason.COMPLETED, answered=True), None) is AttemptResult.ANSWERED
    machine = _view(EndReason.COMPLETED, answered=True, by=AnsweredBy.MACHINE)
    assert rules.classify(machine, hangup) is AttemptResult.MACHINE
    assert rules.classify(machine, message) is AttemptResult.VOICEMAIL_LEFT
    human = _view(EndReason.COMPLETED, answered=True, by=AnsweredBy.HUMAN)
    assert rules.classify(human, hangup) is AttemptResult.ANSWERED
    assert rules.classify(_view(EndReason.CANCELED, answered=False), None) is AttemptResult.CANCELLED


def test_backoff_per_result_until_attempts_run_out() -> None:
    limits = CampaignLimits(max_attempts=3, backoff_seconds={"busy": 60, "no-answer": 600}, backoff_multiplier=2)
    now = utc(2026, 11, 30, 12, 0)
    assert rules.after_attempt(AttemptResult.BUSY, 1, limits, now) == (None, now + timedelta(seconds=60))
    assert rules.after_attempt(AttemptResult.BUSY, 2, limits, now) == (None, now + timedelta(seconds=120))
    assert rules.after_attempt(AttemptResult.BUSY, 3, limits, now) == (ContactOutcome.BUSY, None)
    assert rules.after_attempt(AttemptResult.NO_ANSWER, 1, limits, now) == (None, now + timedelta(seconds=600))
    assert rules.after_attempt(AttemptResult.FAILED, 1, limits, now) == (ContactOutcome.FAILED, None)  # no rule
    assert rules.after_attempt(AttemptResult.ANSWERED, 1, limits, now) == (ContactOutcome.ANSWERED, None)
    ending = CampaignLimits(max_attempts=3, backoff_seconds={"busy": 60}, ends_at=now + timedelta(seconds=30))
    assert rules.after_attempt(AttemptResult.BUSY, 1, ending, now) == (ContactOutcome.BUSY, None)


@pytest.mark.parametrize(
    ("limits", "problem"),
    [
        (CampaignLimits(max_concurrent=0), "max_concurrent"),
        (CampaignLimits(calls_per_second=0), "calls_per_second"),
        (CampaignLimits(backoff_seconds={"answered": 5}), "backoff_seconds"),
        (CampaignLimits(window=CallingWindow("18:00", "09:00")), "start before"),
        (CampaignLimits(window=CallingWindow("9am", "18:00")), "HH:MM"),
        (CampaignLimits(window=CallingWindow("09:00", "18:00", [0])), "ISO weekdays"),
        (CampaignLimits(default_time_zone="Mars/Olympus"), "time zone"),
    ],
)
def test_limits_that_cannot_be_used_say_why(limits: CampaignLimits, problem: str) -> None:
    found = rules.limits_problem(limits)
    assert found is not None and problem in found
    assert rules.limits_problem(CampaignLimits(window=CallingWindow("00:00", "24:00", [1, 7]))) is None


def test_operator_actions_by_status() -> None:
    running, paused = CampaignStatus.RUNNING, CampaignStatus.PAUSED
    assert rules.action_problem(UPDATE_PAUSE, running) is None
    assert rules.action_problem(UPDATE_PAUSE, paused) == "the campaign is already paused"
    assert rules.action_problem(UPDATE_RESUME, running) == "the campaign is not paused"
    assert rules.action_problem(UPDATE_RESUME, paused) is None
    assert rules.action_problem(UPDATE_UPDATE_LIMITS, running, CampaignLimits(max_attempts=0)) is not None
    assert rules.action_problem(UPDATE_PAUSE, CampaignStatus.CANCELLED) == "the campaign is cancelled"
