"""SMS threads end to end: signed webhooks from the Twilio stand-in, the API, SmsThreadWorkflow on the real dev
server, the agent's text reply and the carrier's Messages API."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select
from temporalio.api.enums.v1 import EventType

from models import sms as m
from models.enums import Channel, ConversationStatus, MessageRole
from models.tables import Conversation, Message, SmsOptOut, SmsThread
from tests.sms.conftest import PUBLIC, LineFactory, SmsLine, new_sid, party
from tests.support.stack import eventually, temporal_client
from tests.twilio_standin import OTHER_ACCOUNT_SID, OTHER_AUTH_TOKEN, TEST_ACCOUNT_SID, TEST_AUTH_TOKEN
from workflows.sms_thread import SmsThreadWorkflow

HOURS = "We open at nine and close at five. Closed on Sundays."


async def _carrier(line: SmsLine, to: str, count: int, within: float = 20.0) -> list[str]:
    async def probe() -> list[str] | None:
        bodies = [x.body for x in line.carrier_messages(to)]
        return bodies if len(bodies) >= count else None

    return await eventually(probe, within)


async def _settled(line: SmsLine, to: str) -> None:
    """Every outbound row of the thread has its carrier SID (nothing queued or in flight)."""

    async def probe() -> bool:
        rows = [r for r in await line.rows() if r.direction == "outbound"]
        return bool(rows) and all(r.carrier_message_sid or r.delivery_status == "failed" for r in rows)

    await eventually(probe, 20.0)


async def test_inbound_message_is_answered_by_the_agent(line_factory: LineFactory) -> None:
    line = await line_factory()
    caller = party()
    record, response = await line.text_in(caller, "What are your opening hours?")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/xml")
    assert response.text.endswith("<Response/>")
    assert await _carrier(line, caller, 1) == [HOURS]
    await _settled(line, caller)
    rows = await line.rows()
    assert [(r.role, r.direction, r.text) for r in rows] == [
        (MessageRole.CALLER, "inbound", "What are your opening hours?"),
        (MessageRole.AGENT, "outbound", HOURS),
    ]
    assert rows[0].carrier_message_sid == record.sid and rows[0].delivery_status == "received"
    sent = line.carrier_messages(caller)[0]
    assert rows[1].carrier_message_sid == sent.sid and rows[1].segments == 1
    assert sent.status_callback is not None and sent.status_callback.startswith(f"{PUBLIC}/webhooks/twilio/sms-status?")
    async with line.platform.sessions() as session:
        conversation = await session.get(Conversation, rows[0].conversation_id)
        assert conversation is not None and conversation.channel is Channel.SMS
        assert conversation.external_party == caller and conversation.status is ConversationStatus.OPEN
    view = await line.view(caller)
    assert view.state is m.SmsThreadState.OPEN and view.total_messages == 2 and view.agent_id
    # The workflow id and search attributes carry no phone number of the party.
    described = await temporal_client(line.platform).get_workflow_handle(line.thread_id(caller)).describe()
    assert caller[2:] not in described.id
    attributes = described.typed_search_attributes
    assert attributes.get(m.SA_SMS_SPACE_ID) == line.space.id and attributes.get(m.SA_SMS_PHONE_NUMBER) == line.number


async def test_same_message_sid_three_times_is_one_message(line_factory: LineFactory) -> None:
    line = await line_factory()
    caller, sid = party(), new_sid()
    for _ in range(3):
        _, response = await line.text_in(caller, "What are your opening hours?", extra={"MessageSid": sid})
        assert response.status_code == 200
    await _carrier(line, caller, 1)
    await _settled(line, caller)
    await asyncio.sleep(0.5)
    rows = await line.rows()
    assert [r.role for r in rows] == [MessageRole.CALLER, MessageRole.AGENT]
    assert len(line.carrier_messages(caller)) == 1


async def test_forged_signature_is_refused_and_writes_nothing(line_factory: LineFactory) -> None:
    line = await line_factory()
    params = {"AccountSid": TEST_ACCOUNT_SID, "MessageSid": new_sid(), "From": party(), "To": line.number, "Body": "hi"}
    url = f"{PUBLIC}{m.WEBHOOK_SMS_PATH}"
    forged = await line.standin.post_webhook(url, params, "not-the-auth-token")
    assert forged.status_code == 403
    tampered = await line.standin.post_webhook(url, params, TEST_AUTH_TOKEN, headers={"X-Twilio-Signature": "AAAA"})
    assert tampered.status_code == 403
    assert await line.rows() == []
    async with line.platform.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(SmsThread)) == 0


async def test_another_spaces_account_cannot_reach_this_number(line_factory: LineFactory) -> None:
    victim = await line_factory()
    attacker = await line_factory(account_sid=OTHER_ACCOUNT_SID, auth_token=OTHER_AUTH_TOKEN)
    caller = party()
    params = {
        "AccountSid": OTHER_ACCOUNT_SID,
        "MessageSid": new_sid(),
        "From": caller,
        "To": victim.number,
        "Body": "x",
    }
    response = await victim.standin.post_webhook(f"{PUBLIC}{m.WEBHOOK_SMS_PATH}", params, OTHER_AUTH_TOKEN)
    assert response.status_code == 200 and response.text.endswith("<Response/>")  # as for an unknown number
    assert await victim.rows() == [] and await attacker.rows() == []
    assert await victim.sms().snapshot(victim.thread_id(caller)) is None
    # Nor can it report delivery for another space's message.
    sent = await victim.send(caller, "hello")
    assert sent.status_code == 202, sent.text
    message_id = sent.json()["id"]
    await _settled(victim, caller)
    thread = victim.thread_id(caller)
    url = f"{PUBLIC}{m.WEBHOOK_SMS_STATUS_PATH}?thread={thread}&message_id={message_id}"
    status = {"AccountSid": OTHER_ACCOUNT_SID, "MessageSid": new_sid(), "MessageStatus": "failed", "ErrorCode": "1"}
    assert (await victim.standin.post_webhook(url, status, OTHER_AUTH_TOKEN)).status_code == 204
    rows = await victim.rows()
    assert rows[-1].delivery_status == "sending" and rows[-1].error_code is None


async def test_stop_start_help_in_several_spellings(line_factory: LineFactory) -> None:
    line = await line_factory(sms_settings={"help_text": "Acme support: reply STOP to opt out."})
    caller = party()
    await line.text_in(caller, "  Stop. ")
    assert await _carrier(line, caller, 1) == [m.STOP_REPLY]
    refused = await line.send(caller, "are you there?")
    assert refused.status_code == 409 and "opted out" in refused.json()["detail"]
    await line.text_in(caller, "What are your opening hours?")  # no agent reply while opted out
    await line.text_in(caller, "help")
    assert await _carrier(line, caller, 2) == [m.STOP_REPLY, "Acme support: reply STOP to opt out."]
    async with line.platform.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(SmsOptOut)) == 1
    await line.text_in(caller, "unstop")
    assert (await _carrier(line, caller, 3))[-1] == m.START_REPLY
    accepted = await line.send(caller, "welcome back")
    assert accepted.status_code == 202, accepted.text
    await _carrier(line, caller, 4)  # sent before the next STOP (a STOP also drops what is still queued)
    await line.text_in(caller, "UNSUBSCRIBE")
    await _carrier(line, caller, 5)
    assert (await line.send(caller, "again?")).status_code == 409
    await line.text_in(caller, "yes")
    assert (await _carrier(line, caller, 6))[-1] == m.START_REPLY
    await _settled(line, caller)
    async with line.platform.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(SmsOptOut)) == 0
    view = await line.view(caller)
    assert not view.opted_out and view.state is m.SmsThreadState.OPEN


async def test_outbound_validation(line_factory: LineFactory) -> None:
    line = await line_factory()
    too_long = await line.send(party(), "x" * 1601)
    assert too_long.status_code == 422 and "body" in str(too_long.json()["errors"][0]["loc"])
    unknown = await line.client.post(
        line.space.path("/messages"),
        json={"from_number": "+14155550000", "to_number": party(), "body": "hi"},
        headers=line.space.owner,
    )
    assert unknown.status_code == 422 and "from_number" in str(unknown.json()["errors"][0]["loc"])
    viewer = await line.client.post(
        line.space.path("/messages"),
        json={"from_number": line.number, "to_number": party(), "body": "hi"},
        headers=line.space.viewer,
    )
    assert viewer.status_code == 403
    unicode = await line.send(party(), "Привет! " * 10)
    assert unicode.status_code == 202 and unicode.json()["encoding"] == "UCS-2" and unicode.json()["segments"] == 2


async def test_carrier_429_and_500_are_retried_without_a_second_message(line_factory: LineFactory) -> None:
    line = await line_factory()
    callee = party()
    line.standin.fail("create_message", status=429, code=20429, message="Too Many Requests", times=1)
    # The 500 comes after the message was created (its answer is lost): the retry must not post it again.
    line.standin.fail("create_message", status=500, times=1, after=True)
    response = await line.send(callee, "your order shipped")
    assert response.status_code == 202, response.text
    await _settled(line, callee)
    assert [x.body for x in line.carrier_messages(callee)] == ["your order shipped"]
    posts = [r for r in line.standin.requests_for("create_message") if r.form.get("To") == callee]
    assert [r.status for r in posts] == [429, 500]  # the third attempt found the message instead of posting
    row = (await line.rows())[-1]
    assert row.carrier_message_sid == line.carrier_messages(callee)[0].sid


async def test_carrier_4xx_is_final_with_its_error_code(line_factory: LineFactory) -> None:
    line = await line_factory()
    callee = party()
    line.standin.fail("create_message", status=400, code=21610, message="unsubscribed recipient", times=1)
    assert (await line.send(callee, "hello")).status_code == 202
    await _settled(line, callee)
    row = (await line.rows())[-1]
    assert (row.delivery_status, row.error_code) == ("failed", 21610)
    view = await line.view(callee)
    assert [(f.message_id, f.error_code) for f in view.failures] == [(row.id, 21610)]
    assert len([r for r in line.standin.requests_for("create_message") if r.form.get("To") == callee]) == 1


async def test_status_callbacks_in_any_order(line_factory: LineFactory) -> None:
    line = await line_factory()
    callee = party()
    first = await line.send(callee, "one")
    second = await line.send(callee, "two")
    assert first.status_code == second.status_code == 202
    await _settled(line, callee)
    one, two = line.carrier_messages(callee)
    reports: list[tuple[str, str, int | None]] = [
        (one.sid, "delivered", None),
        (one.sid, "sent", None),  # late: changes nothing
        (one.sid, "queued", None),
        (two.sid, "sent", None),
        (two.sid, "undelivered", 30003),
        (two.sid, "delivered", None),  # after a final status: changes nothing
    ]
    for sid, status, code in reports:
        response = await line.standin.send_message_status(sid, status, error_code=code)
        assert response.status_code == 204, response.text

    async def final() -> list[Message] | None:
        rows = [r for r in await line.rows() if r.direction == "outbound"]
        done = [r.delivery_status for r in rows] == ["delivered", "undelivered"]
        return rows if done else None

    rows = await eventually(final)
    assert rows[1].error_code == 30003
    view = await line.view(callee)
    assert [(x.status, x.error_code) for x in view.messages] == [
        (m.DeliveryStatus.DELIVERED, None),
        (m.DeliveryStatus.UNDELIVERED, 30003),
    ]
    assert [f.message_id for f in view.failures] == [second.json()["id"]]


async def test_a_burst_leaves_at_the_configured_pace(line_factory: LineFactory) -> None:
    line = await line_factory(sms_settings={"messages_per_second": 5, "burst": 2})
    callee = party()
    for n in range(10):
        assert (await line.send(callee, f"update {n}")).status_code == 202
    await _carrier(line, callee, 10)
    sent = line.carrier_messages(callee)
    assert [x.body for x in sent] == [f"update {n}" for n in range(10)]
    posts = sorted(
        (r for r in line.standin.requests_for("create_message") if r.form.get("To") == callee),
        key=lambda r: r.form["Body"],
    )
    assert len(posts) == 10
    # Two leave at once, the other eight one per 0.2 s: at least 1.6 s from the first to the last.
    spread = (sent[-1].date_created - sent[0].date_created).total_seconds()
    assert spread >= 1.0, spread


async def test_continue_as_new_keeps_every_message_and_the_opt_out(line_factory: LineFactory) -> None:
    line = await line_factory(sms_settings={"max_messages_per_run": 4, "messages_per_second": 50, "burst": 50})
    callee = party()
    for n in range(7):
        assert (await line.send(callee, f"note {n}")).status_code == 202
    await _carrier(line, callee, 7)

    async def handed_over() -> bool:
        return (await line.view(callee)).runs >= 2

    # The first run, past its bound with 7 messages, continues as new once its delivery reports stop coming; the
    # STOP must reach the second run (had it reached the first, the second would hold only 3 messages and rest).
    await eventually(handed_over, within=30.0)
    await line.text_in(callee, "STOP")
    await _carrier(line, callee, 8)
    for n in range(3):
        await line.text_in(callee, f"question {n}")
    assert (await line.send(callee, "still there?")).status_code == 409

    async def runs() -> int | None:
        view = await line.view(callee)
        return view.runs if view.runs >= 3 and view.total_messages == 12 else None

    await eventually(runs, within=45.0)  # three runs handing over on a loaded CI machine
    rows = await line.rows()
    assert len(rows) == 12 and len({r.id for r in rows}) == 12
    assert [x.body for x in line.carrier_messages(callee)] == [f"note {n}" for n in range(7)] + [m.STOP_REPLY]
    view = await line.view(callee)
    assert view.opted_out and view.state is m.SmsThreadState.OPTED_OUT
    assert len({r.conversation_id for r in rows}) == 1
    history = await temporal_client(line.platform).get_workflow_handle(line.thread_id(callee)).fetch_history()
    assert history.events[0].workflow_execution_started_event_attributes.continued_execution_run_id


async def test_idle_thread_pauses_and_the_next_message_resumes_it(line_factory: LineFactory) -> None:
    line = await line_factory(sms_settings={"idle_timeout_seconds": 2})
    caller = party()
    await line.text_in(caller, "What are your opening hours?")
    await _carrier(line, caller, 1)
    handle = temporal_client(line.platform).get_workflow_handle_for(SmsThreadWorkflow.run, line.thread_id(caller))
    first_run = (await handle.describe()).run_id
    view = await asyncio.wait_for(handle.result(), timeout=30)
    assert view.state is m.SmsThreadState.PAUSED
    rows = await line.rows()
    async with line.platform.sessions() as session:
        conversation = await session.get(Conversation, rows[0].conversation_id)
        assert conversation is not None and conversation.status is ConversationStatus.PAUSED
    # A delivery report after the run completed still reaches the message (with the same ordering rule).
    reply_sid = line.carrier_messages(caller)[0].sid
    assert (await line.standin.send_message_status(reply_sid, "delivered")).status_code == 204
    assert (await line.standin.send_message_status(reply_sid, "sent")).status_code == 204
    assert [r.delivery_status for r in await line.rows()] == ["received", "delivered"]
    await line.text_in(caller, "Are you open on Sunday?")
    await _carrier(line, caller, 2)
    assert (await handle.describe()).run_id != first_run
    rows = await line.rows()
    assert len(rows) == 4 and len({r.conversation_id for r in rows}) == 1
    async with line.platform.sessions() as session:
        conversation = await session.get(Conversation, rows[0].conversation_id)
        assert conversation is not None and conversation.status is ConversationStatus.OPEN
    history = await handle.fetch_history()
    completed = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED]
    assert completed == []  # the second run is still open


async def test_number_routed_to_no_agent_keeps_messages_in_the_inbox(line_factory: LineFactory) -> None:
    line = await line_factory(agent=False)
    caller = party()
    await line.text_in(caller, "What are your opening hours?")

    async def stored() -> list[Message] | None:
        rows = await line.rows()
        return rows or None

    rows = await eventually(stored)
    await asyncio.sleep(0.5)
    assert [r.role for r in await line.rows()] == [MessageRole.CALLER] and line.carrier_messages(caller) == []
    reply = await line.send(caller, "A person will answer shortly.")
    assert reply.status_code == 202 and reply.json()["conversation_id"] == rows[0].conversation_id


async def test_threads_over_rest(line_factory: LineFactory) -> None:
    line = await line_factory()
    other = await line_factory()
    caller = party()
    await line.text_in(caller, "What are your opening hours?", media_urls=["https://media.example.com/a.jpg"])
    await _carrier(line, caller, 1)
    await _settled(line, caller)
    listed = await line.client.get(line.space.path("/sms-threads"), headers=line.space.viewer)
    assert listed.status_code == 200
    [thread] = listed.json()["data"]
    assert thread["id"] == line.thread_id(caller) and thread["party"] == caller and thread["our_number"] == line.number
    detail = await line.client.get(line.space.path(f"/sms-threads/{thread['id']}"), headers=line.space.viewer)
    assert detail.status_code == 200, detail.text
    assert detail.json()["state"] == "open" and detail.json()["running"] and detail.json()["total_messages"] == 2
    messages = await line.client.get(
        line.space.path(f"/sms-threads/{thread['id']}/messages"), headers=line.space.viewer
    )
    data = messages.json()["data"]
    assert [(x["direction"], x["role"]) for x in data] == [("inbound", "caller"), ("outbound", "agent")]
    assert data[0]["media_urls"] == ["https://media.example.com/a.jpg"] and data[1]["delivery_status"] == "sending"
    # another space sees none of it
    assert (
        await other.client.get(other.space.path(f"/sms-threads/{thread['id']}"), headers=other.space.owner)
    ).status_code == 404
    assert (await other.client.get(other.space.path("/sms-threads"), headers=other.space.owner)).json()["data"] == []
    async with line.platform.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(SmsThread)) == 1


async def test_a_retried_send_with_the_same_idempotency_key_is_one_message(line_factory: LineFactory) -> None:
    line = await line_factory()
    callee = party()
    headers = line.space.owner | {"Idempotency-Key": "order-42-shipped"}
    payload = {"from_number": line.number, "to_number": callee, "body": "Your order shipped."}
    first = await line.client.post(line.space.path("/messages"), json=payload, headers=headers)
    second = await line.client.post(line.space.path("/messages"), json=payload, headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    await _settled(line, callee)
    await asyncio.sleep(0.5)
    assert [x.body for x in line.carrier_messages(callee)] == ["Your order shipped."]
    assert len(await line.rows()) == 1
