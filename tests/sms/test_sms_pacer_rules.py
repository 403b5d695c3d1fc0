"""The pacer's token bucket (GCRA) without a server: burst from idle, one slot per interval after it, first asked
first served, a refill while idle, settings that change, and what continue-as-new carries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from models import sms_pacing as p
from tests.sms.pacing import over_pace
from workflows.pacer_state import PacerLedger

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_a_burst_of_requests_gets_burst_slots_at_once_then_one_per_interval() -> None:
    ledger = PacerLedger()
    slots = [ledger.reserve(T0, 2.0, 3) for _ in range(7)]
    assert [(at - T0).total_seconds() for at, _, _ in slots] == [0, 0, 0, 0.5, 1.0, 1.5, 2.0]
    assert [waiting for _, _, waiting in slots] == [0, 0, 0, 0, 1, 2, 3]
    assert all(until - at == timedelta(seconds=1) for at, until, _ in slots)
    assert over_pace([at for at, _, _ in slots], 2.0, 3, slack=0) == []


def test_requests_spread_over_time_are_granted_at_once_and_the_bucket_refills() -> None:
    ledger = PacerLedger()
    assert ledger.reserve(T0, 1.0, 1)[0] == T0
    assert ledger.reserve(T0 + timedelta(seconds=0.4), 1.0, 1)[0] == T0 + timedelta(seconds=1)  # waits its turn
    later = T0 + timedelta(seconds=10)
    assert ledger.idle_since() == T0 + timedelta(seconds=2)
    assert ledger.reserve(later, 1.0, 1)[0] == later  # idle long enough: no debt carried
    assert ledger.reserve(later, 1.0, 1)[0] == later + timedelta(seconds=1)


def test_many_threads_asking_in_any_pattern_never_exceed_the_pace() -> None:
    ledger = PacerLedger()
    asks = [T0 + timedelta(milliseconds=137 * n % 900 + 100 * (n // 3)) for n in range(60)]
    granted = [ledger.reserve(t, 5.0, 2)[0] for t in sorted(asks)]
    assert all(g >= t for g, t in zip(granted, sorted(asks), strict=True))  # never before it was asked
    assert granted == sorted(granted)  # first asked, first served
    assert over_pace(granted, 5.0, 2, slack=0) == []
    assert len(granted) == ledger.granted_total == ledger.granted_in_run == 60


def test_the_latest_settings_apply_and_a_slot_is_valid_for_one_interval() -> None:
    ledger = PacerLedger()
    ledger.reserve(T0, 1.0, 1)
    at, until, _ = ledger.reserve(T0, 10.0, 1)  # the space sped its numbers up
    assert at == T0 + timedelta(seconds=1) and until - at == timedelta(seconds=1)  # at least a second
    assert (ledger.rate, ledger.burst) == (10.0, 1)
    assert p.slot_validity(0.5) == timedelta(seconds=2)


def test_continue_as_new_carries_the_pace() -> None:
    ledger = PacerLedger()
    for _ in range(4):
        ledger.reserve(T0, 2.0, 1)
    carried = PacerLedger.begin(ledger.carry())
    assert (carried.runs, carried.granted_total, carried.granted_in_run) == (2, 4, 0)
    assert carried.reserve(T0, 2.0, 1)[0] == T0 + timedelta(seconds=2)  # after the four granted before


def test_pacer_ids_are_per_space_and_number_without_the_number_in_clear() -> None:
    one = p.sms_pacer_workflow_id("sp_1", "+14155550123")
    assert one == p.PacerKey("sp_1", "+14155550123").workflow_id == p.sms_pacer_workflow_id("sp_1", "+14155550123")
    assert one != p.sms_pacer_workflow_id("sp_2", "+14155550123")
    assert one != p.sms_pacer_workflow_id("sp_1", "+14155550124")
    assert "4155550123" not in one and one.startswith(p.SMS_PACER_PREFIX + "sp_1-")
