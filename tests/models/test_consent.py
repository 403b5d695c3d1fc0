"""Recording consent as pure data: the caller's words, the default announcements, and the ledger's bookkeeping
(the first answer counts; a refusal declines the recording)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from models import calls as c
from models.consent import (
    DEFAULT_ANNOUNCEMENTS,
    ConsentOutcome,
    ConsentReport,
    RecordingConsent,
    announcement_for,
    spoken_answer,
)
from models.enums import CallDirection, CallState, RecordingPolicy
from workflows import recording_consent
from workflows.call_state import CallLedger

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("words", "answer"),
    [
        ("Yes.", True),
        ("yeah sure", True),
        ("Okay, go ahead.", True),
        ("No.", False),
        ("No thanks, I don't want that.", False),
        ("please do not record me", False),
        ("what are your opening hours?", None),
        ("", None),
    ],
)
def test_spoken_answers(words: str, answer: bool | None) -> None:
    assert spoken_answer(words) is answer


def test_announcements_default_per_mode() -> None:
    assert announcement_for(RecordingConsent.NONE, "ignored") == ""
    assert announcement_for(RecordingConsent.ANNOUNCE, None) == DEFAULT_ANNOUNCEMENTS[RecordingConsent.ANNOUNCE]
    assert announcement_for(RecordingConsent.REQUIRE, "  ") == DEFAULT_ANNOUNCEMENTS[RecordingConsent.REQUIRE]
    assert "press 1" in DEFAULT_ANNOUNCEMENTS[RecordingConsent.REQUIRE]
    assert announcement_for(RecordingConsent.ANNOUNCE, " Recorded. ") == "Recorded."


def _ledger(mode: RecordingConsent) -> CallLedger:
    start = c.StartCall("call_1", "wf", CallDirection.INBOUND, "+14155550100", "+14155550101", "CA1")
    k = CallLedger(start, recording=c.RECORDING_REQUESTED)
    route = c.CallRoute(True, recording_policy=RecordingPolicy.ALWAYS, recording_consent=mode)
    recording_consent.ask(k, route)
    return k


def test_no_consent_mode_asks_nothing() -> None:
    k = _ledger(RecordingConsent.NONE)
    assert k.consent is None and not recording_consent.awaiting(k) and recording_consent.pending_request(k) is None
    assert recording_consent.problem(k, ConsentReport(ConsentOutcome.GIVEN, "dtmf")) is not None


def test_the_first_answer_counts_and_a_refusal_declines() -> None:
    k = _ledger(RecordingConsent.REQUIRE)
    request = recording_consent.pending_request(k)
    assert request is not None and request.mode is RecordingConsent.REQUIRE and recording_consent.awaiting(k)
    assert recording_consent.problem(k, ConsentReport(ConsentOutcome.ANNOUNCED, "announcement")) is not None
    assert recording_consent.problem(k, ConsentReport(ConsentOutcome.PENDING, "dtmf")) is not None
    assert not recording_consent.settle(k, ConsentReport(ConsentOutcome.REFUSED, "timeout"), NOW)
    assert k.recording == "declined" and k.consent is not None and k.consent.by == "timeout"
    assert not recording_consent.settle(k, ConsentReport(ConsentOutcome.GIVEN, "dtmf"), NOW)  # too late
    assert k.consent.outcome is ConsentOutcome.REFUSED and not recording_consent.awaiting(k)
    assert [e.event for e in k.timeline] == ["recording_consent"]
    assert k.view().recording_consent == k.consent


def test_an_announcement_played_lets_the_recording_start() -> None:
    k = _ledger(RecordingConsent.ANNOUNCE)
    assert recording_consent.problem(k, ConsentReport(ConsentOutcome.GIVEN, "dtmf")) is not None
    assert recording_consent.settle(k, ConsentReport(ConsentOutcome.ANNOUNCED, "announcement"), NOW)
    assert recording_consent.pending_request(k) is None
    k.state = CallState.ENDED
    assert recording_consent.problem(k, ConsentReport(ConsentOutcome.ANNOUNCED, "announcement")) == "the call has ended"
