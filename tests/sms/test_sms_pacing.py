"""Pacing per number, end to end (real dev server, the Twilio stand-in): threads of one number share its pace,
whoever queued first leaves first, and the pacer keeps its pace across continue-as-new."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from models import sms_pacing as p
from tests.sms.conftest import LineFactory, SmsLine, party
from tests.sms.pacing import over_pace
from tests.support.stack import eventually, temporal_client
from workflows.sms_pacer_client import SmsPacerClient


def _pacers(line: SmsLine, **kwargs: int) -> SmsPacerClient:
    return SmsPacerClient(temporal_client(line.platform), line.platform.settings.task_queue, **kwargs)


async def test_threads_of_one_number_share_its_pace(line_factory: LineFactory) -> None:
    line = await line_factory(sms_settings={"messages_per_second": 2, "burst": 1})
    parties = [party() for _ in range(3)]
    bodies = {to: [f"notice {n} for {k}" for n in range(5)] for k, to in enumerate(parties)}

    async def queue(to: str) -> None:
        for body in bodies[to]:
            response = await line.send(to, body)
            assert response.status_code == 202, response.text

    await asyncio.gather(*(queue(to) for to in parties))  # three threads queue at the same time

    async def all_sent() -> bool:
        return sum(len(line.carrier_messages(to)) for to in parties) >= 15

    await eventually(all_sent, within=60.0)
    await asyncio.sleep(1.0)
    for to in parties:  # each message once, in its thread's order
        assert [x.body for x in line.carrier_messages(to)] == bodies[to]
    posts = [r for r in line.standin.messages.values() if r.from_ == line.number]
    times = [x.date_created for x in posts]
    # Three threads with a bucket each would have sent three at once and six a second.
    assert over_pace(times, rate=2.0, burst=1, slack=2) == [], sorted(times)  # slack: a slot is valid 1 s
    assert (max(times) - min(times)).total_seconds() >= 14 / 2 - 1.0  # one number, 2 a second: 15 take 7 s
    pacer = await _pacers(line).state(p.PacerKey(line.space.id, line.number))
    assert pacer is not None and pacer.granted_total >= 15 and (pacer.rate, pacer.burst) == (2.0, 1)
    assert "".join(c for c in line.number if c.isdigit()) not in pacer.workflow_id


async def test_another_number_is_not_held_up_by_a_busy_one(line_factory: LineFactory) -> None:
    busy = await line_factory(sms_settings={"messages_per_second": 1, "burst": 1})
    other = await line_factory(sms_settings={"messages_per_second": 1, "burst": 1})
    for n in range(12):
        assert (await busy.send(party(), f"busy {n}")).status_code == 202
    callee = party()
    assert (await other.send(callee, "right away")).status_code == 202

    async def sent() -> bool:
        return len(other.carrier_messages(callee)) == 1

    await eventually(sent, within=8.0)  # not behind the busy number's twelve (which take eleven seconds)
    assert sum(1 for x in busy.standin.messages.values() if x.from_ == busy.number) < 12


async def test_the_pacer_keeps_its_pace_across_continue_as_new(line_factory: LineFactory) -> None:
    line = await line_factory()
    pacers = _pacers(line, max_grants_per_run=4)
    key = p.PacerKey(line.space.id, line.number)
    grants: list[p.SlotGrant] = []
    for n in range(5):  # nine slots asked for in batches of one to three, across continue-as-new
        tickets = [f"t{n}-{k}-{uuid.uuid4().hex[:6]}" for k in range(1 + n % 3)]
        request = p.SlotRequest(f"r{n}-{uuid.uuid4().hex[:6]}", tickets, 5.0, 2)
        granted = (await pacers.reserve(key, request)).grants
        assert [g.ticket for g in granted] == tickets
        grants += granted
    again = await pacers.reserve(key, request)
    assert again.grants == granted  # the same request in the same run is the same slots
    openings = [g.at for g in grants]
    assert openings == sorted(openings) and over_pace(openings, 5.0, 2, slack=0) == []
    assert len(grants) == 9
    assert openings[-1] - openings[0] >= timedelta(seconds=(9 - 2) / 5.0) - timedelta(milliseconds=300)
    state = await pacers.state(key)
    assert state is not None and state.runs >= 2 and state.granted_total == 9
