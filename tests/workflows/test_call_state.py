"""The pure call state machine: the transition table, the actions each state allows, targets and digits."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from models.calls import (
    UPDATE_HANGUP,
    UPDATE_HOLD,
    UPDATE_RESUME,
    UPDATE_TRANSFER,
    DtmfRequest,
    StartCall,
    TransferMode,
    TransferRequest,
)
from models.enums import CallDirection, CallState, EndReason
from workflows import call_state as sm

S = CallState
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_every_state_but_ended_can_end_and_ended_is_final() -> None:
    assert set(sm.TRANSITIONS) == set(CallState)
    assert all(sm.can_transition(s, S.ENDED) for s in CallState if s is not S.ENDED)
    assert not any(sm.can_transition(S.ENDED, s) for s in CallState)
    assert not sm.can_transition(S.ACTIVE, S.RINGING) and not sm.can_transition(S.RINGING, S.HOLD)


def test_actions_follow_the_state() -> None:
    assert sm.action_allowed(UPDATE_HOLD, S.ACTIVE) and not sm.action_allowed(UPDATE_HOLD, S.HOLD)
    assert sm.action_allowed(UPDATE_TRANSFER, S.HOLD) and not sm.action_allowed(UPDATE_TRANSFER, S.RINGING)
    assert not sm.action_allowed(UPDATE_HANGUP, S.ENDED)
    assert "ringing" in sm.illegal_action_message(UPDATE_HOLD, S.RINGING)


@pytest.mark.parametrize(
    ("target", "mode", "expected"),
    [
        ("+14155550100", TransferMode.COLD, "tel:+14155550100"),
        ("tel:+14155550100", TransferMode.WARM, "tel:+14155550100"),
        ("sip:desk@pbx.example.com", TransferMode.COLD, "sip:desk@pbx.example.com"),
    ],
)
def test_transfer_targets(target: str, mode: TransferMode, expected: str) -> None:
    assert sm.transfer_destination(target, mode) == expected


@pytest.mark.parametrize(
    ("target", "mode"),
    [("4155550100", TransferMode.COLD), ("sip:desk@pbx.example.com", TransferMode.WARM), ("", TransferMode.COLD)],
)
def test_bad_transfer_targets(target: str, mode: TransferMode) -> None:
    with pytest.raises(ValueError):
        sm.transfer_destination(target, mode)


def test_action_problems() -> None:
    def problem(action: str, state: CallState, request: object, **kw: bool) -> str | None:
        flags = {"busy": False, "has_room_and_caller": True, "has_outbound_trunk": False} | kw
        return sm.action_problem(action, state, request, **flags)

    assert problem(UPDATE_HOLD, S.ACTIVE, None) is None
    assert problem(UPDATE_HOLD, S.ACTIVE, None, busy=True) is not None
    assert problem(UPDATE_HOLD, S.ACTIVE, None, has_room_and_caller=False) is not None
    assert problem(UPDATE_HANGUP, S.HOLD, None, busy=True, has_room_and_caller=False) is None
    # A media stream's process holds its caller: hold and resume, but nothing else needing a room.
    stream = {"has_room_and_caller": False, "has_carrier_leg": True, "can_hold": True}
    assert problem(UPDATE_HOLD, S.ACTIVE, None, **stream) is None
    assert problem(UPDATE_RESUME, S.HOLD, None, **stream) is None
    assert problem("send_dtmf", S.ACTIVE, DtmfRequest("1"), **stream) is not None
    assert problem("send_dtmf", S.ACTIVE, DtmfRequest("12#*Aw")) is None
    assert problem("send_dtmf", S.ACTIVE, DtmfRequest("12e")) is not None
    warm = TransferRequest("+14155550100", TransferMode.WARM)
    assert problem(UPDATE_TRANSFER, S.ACTIVE, warm) is not None
    assert problem(UPDATE_TRANSFER, S.ACTIVE, warm, has_outbound_trunk=True) is None


def test_dial_failures_and_hangup_reasons() -> None:
    assert sm.dial_failure_reason(486, False) is EndReason.BUSY
    assert sm.dial_failure_reason(None, True) is EndReason.NO_ANSWER
    assert sm.dial_failure_reason(404, False) is EndReason.FAILED
    assert sm.operator_hangup_reason(S.RINGING) is EndReason.CANCELED
    assert sm.operator_hangup_reason(S.ACTIVE) is EndReason.COMPLETED


def test_ledger_records_transitions_and_ignores_illegal_ones() -> None:
    start = StartCall("call_1", "call-CA1", CallDirection.INBOUND, "+14155550101", "+14155550100", "CA1")
    ledger = sm.CallLedger(start)
    assert ledger.transition(S.ACTIVE, "active", NOW)
    assert not ledger.transition(S.CONNECTED, "connected", NOW)  # late: ignored
    assert ledger.connected_at == NOW and ledger.version == 1
    assert ledger.end(EndReason.COMPLETED, "hangup", NOW)
    assert not ledger.end(EndReason.FAILED, "hangup", NOW)
    view = ledger.view()
    assert (view.state, view.end_reason) == (S.ENDED, EndReason.COMPLETED)
    assert [(e.previous, e.state) for e in view.timeline] == [(S.RINGING, S.ACTIVE), (S.ACTIVE, S.ENDED)]
