"""Recording consent in ``CallWorkflow`` (see ``models/consent.py``): asked when a recorded call is routed,
settled by the voice runtime's report, and on the call's timeline and state. Pure functions over the ledger
(the caller passes the time in), kept apart so the workflow's module stays about the state machine."""

from __future__ import annotations

from datetime import datetime

from temporalio.exceptions import ApplicationError

import models.calls as c
from models.consent import (
    RECORDING_DECLINED,
    ConsentOutcome,
    ConsentReport,
    ConsentRequest,
    ConsentView,
    RecordingConsent,
    announcement_for,
)
from models.enums import CallState
from workflows.call_state import CallLedger


def ask(k: CallLedger, route: c.CallRoute) -> None:
    """The call is to be recorded: when its space wants consent first, the recording waits for it."""
    mode = route.recording_consent
    if mode is RecordingConsent.NONE or k.consent is not None:
        return
    k.consent = ConsentView(mode, ConsentOutcome.PENDING, announcement_for(mode, route.recording_announcement))


def awaiting(k: CallLedger) -> bool:
    """True while the recording may not start (the consent is asked and not answered yet)."""
    return k.consent is not None and k.consent.outcome is ConsentOutcome.PENDING


def pending_request(k: CallLedger) -> ConsentRequest | None:
    """What the voice runtime must do before it records (None: record right away, or not at all)."""
    if k.consent is None or k.consent.outcome is not ConsentOutcome.PENDING:
        return None
    return ConsentRequest(k.consent.mode, k.consent.announcement)


def problem(k: CallLedger, report: ConsentReport) -> str | None:
    """Why the report cannot be taken (the update's validator), or None."""
    if k.state is CallState.ENDED:
        return "the call has ended"
    if k.consent is None:
        return "this call asks no recording consent"
    if report.outcome is ConsentOutcome.PENDING:
        return "report an outcome: announced, given or refused"
    if k.consent.mode is RecordingConsent.ANNOUNCE and report.outcome is ConsentOutcome.GIVEN:
        return "an announcement is not answered: report announced"
    if k.consent.mode is RecordingConsent.REQUIRE and report.outcome is ConsentOutcome.ANNOUNCED:
        return "this call needs the caller's consent: report given or refused"
    return None


def settle(k: CallLedger, report: ConsentReport, now: datetime) -> bool:
    """Take the first outcome (a repeated report changes nothing); True when the recording may start now."""
    consent = k.consent
    if consent is None or consent.outcome is not ConsentOutcome.PENDING:
        return False
    consent.outcome, consent.by = report.outcome, report.by
    k.note("recording_consent", now, f"{report.outcome.value} ({report.by})")
    if not report.outcome.allows_recording:
        if k.recording == c.RECORDING_REQUESTED:
            k.recording = RECORDING_DECLINED
        return False
    return k.recording == c.RECORDING_REQUESTED


def validate(k: CallLedger, report: ConsentReport) -> None:
    reason = problem(k, report)
    if reason is not None:
        raise ApplicationError(reason, type=c.ILLEGAL_TRANSITION, non_retryable=True)
