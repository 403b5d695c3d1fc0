"""The SMS contract and the thread's pure rules, without a server: keywords, segments, ids, pacing, ordering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from models import sms as m
from models.enums import MessageRole
from workflows import sms_state as st

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "keyword"),
    [
        ("STOP", m.Keyword.STOP),
        ("  stop \n", m.Keyword.STOP),
        ("Stop.", m.Keyword.STOP),
        ("StopAll", m.Keyword.STOP),
        ("unsubscribe", m.Keyword.STOP),
        ("CANCEL", m.Keyword.STOP),
        ("end", m.Keyword.STOP),
        ("Quit!", m.Keyword.STOP),
        ("start", m.Keyword.START),
        (" UNSTOP ", m.Keyword.START),
        ("Yes", m.Keyword.START),
        ("help", m.Keyword.HELP),
        ("HELP?", m.Keyword.HELP),
        ("info", m.Keyword.HELP),
        ("please stop texting me", None),
        ("stop it", None),
        ("", None),
        ("yes please", None),
    ],
)
def test_keywords_are_the_whole_message_in_any_case_and_spacing(body: str, keyword: m.Keyword | None) -> None:
    assert m.keyword_of(body) is keyword


@pytest.mark.parametrize(
    ("body", "encoding", "units", "count"),
    [
        ("", m.Encoding.GSM7, 0, 1),
        ("a" * 160, m.Encoding.GSM7, 160, 1),
        ("a" * 161, m.Encoding.GSM7, 161, 2),
        ("a" * 306, m.Encoding.GSM7, 306, 2),
        ("a" * 307, m.Encoding.GSM7, 307, 3),
        ("€" * 80, m.Encoding.GSM7, 160, 1),  # an extension character takes two septets
        ("€" * 81, m.Encoding.GSM7, 162, 2),
        ("Ça coûte 5 €, ok?", m.Encoding.UCS2, 17, 1),  # û is not in GSM-7
        ("é" * 160, m.Encoding.GSM7, 160, 1),  # é is
        ("ж" * 70, m.Encoding.UCS2, 70, 1),
        ("ж" * 71, m.Encoding.UCS2, 71, 2),
        ("ж" * 134, m.Encoding.UCS2, 134, 2),
        ("ж" * 135, m.Encoding.UCS2, 135, 3),
        ("😀" * 35, m.Encoding.UCS2, 70, 1),  # an emoji is two UTF-16 units
        ("😀" * 36, m.Encoding.UCS2, 72, 2),
        ("hi 😀", m.Encoding.UCS2, 5, 1),
    ],
)
def test_segments_gsm7_and_ucs2(body: str, encoding: m.Encoding, units: int, count: int) -> None:
    assert m.count_segments(body) == m.Segments(encoding, units, count)


def test_thread_id_is_stable_and_holds_no_phone_number() -> None:
    wid = m.sms_thread_workflow_id("sp_abc", "+14155550100", "+14155550199")
    assert wid == m.sms_thread_workflow_id("sp_abc", "+14155550100", "+14155550199")
    assert "4155550" not in wid and wid.startswith("sms-sp_abc-")
    assert wid != m.sms_thread_workflow_id("sp_abc", "+14155550199", "+14155550100")
    assert wid != m.sms_thread_workflow_id("sp_other", "+14155550100", "+14155550199")
    assert m.space_of_thread(wid) == "sp_abc"
    assert m.space_of_thread("call-CA123") is None and m.space_of_thread("sms-sp_abc-short") is None


def test_delivery_reports_in_any_order_first_final_wins() -> None:
    S = m.DeliveryStatus
    assert m.status_advances(S.QUEUED, S.SENT) and m.status_advances(S.SENDING, S.DELIVERED)
    assert not m.status_advances(S.DELIVERED, S.SENT)  # a late "sent" changes nothing
    assert not m.status_advances(S.SENT, S.SENDING)
    assert not m.status_advances(S.DELIVERED, S.FAILED) and not m.status_advances(S.FAILED, S.DELIVERED)
    assert m.status_advances(None, S.SENT)


def test_token_bucket_paces_a_burst() -> None:
    bucket = st.TokenBucket(rate=2.0, burst=3, tokens=3.0)
    assert [bucket.take(T0) for _ in range(4)] == [True, True, True, False]
    assert bucket.wait(T0) == timedelta(seconds=0.5)
    assert not bucket.take(T0 + timedelta(seconds=0.4))
    assert bucket.take(T0 + timedelta(seconds=0.5))
    # 100 queued messages leave at the rate: the last one 48.5 s after the first three
    times: list[datetime] = []
    bucket = st.TokenBucket(rate=2.0, burst=3, tokens=3.0, at=T0)
    now = T0
    while len(times) < 100:
        if bucket.take(now):
            times.append(now)
        else:
            now += bucket.wait(now)
    assert times[2] == T0 and times[99] - T0 == timedelta(seconds=48.5)
    # idle time refills only up to the burst
    bucket.refill(now + timedelta(hours=1))
    assert bucket.tokens == 3.0


def test_send_rules() -> None:
    ok = m.SendSms("msg_1", "hello")
    assert st.send_problem(ok, opted_out=False) is None
    assert st.send_problem(ok, opted_out=True) is not None and st.send_problem(ok, True)[0] == m.OPTED_OUT  # type: ignore[index]
    confirmation = m.SendSms("msg_2", m.STOP_REPLY, role=MessageRole.SYSTEM)
    assert st.send_problem(confirmation, opted_out=True) is None
    too_long = st.send_problem(m.SendSms("msg_3", "x" * 1601), opted_out=False)
    assert too_long is not None and too_long[0] == m.INVALID_MESSAGE and too_long[1].startswith("body:")
    assert st.send_problem(m.SendSms("msg_4", "x" * 1600), opted_out=False) is None
    assert st.send_problem(m.SendSms("msg_5", "  "), opted_out=False) is not None
    assert st.send_problem(m.SendSms("msg_6", "", media_urls=["https://x.example/a.jpg"]), opted_out=False) is None


def _message(message_id: str, status: m.DeliveryStatus) -> m.ThreadMessage:
    return m.ThreadMessage(message_id, m.SmsDirection.OUTBOUND, MessageRole.STAFF, status, 1, T0)


def test_ledger_carries_queue_opt_out_and_conversation_across_continue_as_new() -> None:
    start = m.StartSmsThread("sp_1", "pn_1", "+14155550100", "+14155550199")
    ledger = st.ThreadLedger.begin(start, "sms-sp_1-x")
    ledger.conversation_id, ledger.opted_out = "cv_1", True
    for n in range(3):
        ledger.add(_message(f"msg_{n}", m.DeliveryStatus.SENDING))
    ledger.pending.append(m.OutboundSms("msg_9", "later", queued_at=T0))
    ledger.remember_inbound("SM1")
    assert ledger.report(m.DeliveryReport("msg_0", m.DeliveryStatus.FAILED, "SMx", 30003)) is not None
    assert ledger.report(m.DeliveryReport("msg_0", m.DeliveryStatus.SENT)) is None  # late
    carried = ledger.carry(st.TokenBucket(1.0, 1, 0.25, T0))
    following = st.ThreadLedger.begin(m.StartSmsThread("sp_1", "pn_1", "+14155550100", "+14155550199", carried), "w")
    assert (following.conversation_id, following.opted_out, following.runs) == ("cv_1", True, 2)
    assert [p.message_id for p in following.pending] == ["msg_9"]
    assert following.seen("SM1") and following.total_messages == 3 and following.run_messages == 0
    assert following.state is m.SmsThreadState.OPTED_OUT
    assert [f.error_code for f in following.failures] == [30003]
    # a report for a message of the previous run still applies
    assert following.report(m.DeliveryReport("msg_1", m.DeliveryStatus.DELIVERED)) is not None
