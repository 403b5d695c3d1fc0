"""Calls per second per carrier account: campaigns dialling through the same account share its limit (its dial
pacer), checked on the stand-in's own request timestamps; a campaign on another account is not held up."""

from __future__ import annotations

import asyncio
import uuid

from models.campaigns import CampaignLimits
from models.dial_pacing import ROUTE_CARRIER_ACCOUNT, STAGE_ADMIT, STAGE_CARRIER, DialPacerKey, dial_route
from models.enums import CampaignStatus
from tests.api.resources import create
from tests.campaigns.conftest import Line, contact, start_campaign
from tests.campaigns.test_campaign_calls import _dials
from tests.conftest import unique_e164
from tests.support.stack import temporal_client
from tests.twilio_standin import TwilioStandIn
from tests.twilio_standin.dialing import CallScript, max_in_one_second
from workflows.campaign_client import CampaignRef
from workflows.dial_pacer_client import DialPacerClient

ACCOUNT_CPS = 2.0
CAMPAIGN_CPS = 5.0  # each campaign alone would dial faster than the account allows


async def _number(line: Line, standin: TwilioStandIn, account: dict[str, str], agent_id: str) -> str:
    e164 = unique_e164()
    body = {"e164": e164, "carrier_account_id": account["id"], "agent_id": agent_id, "media_mode": "stream"}
    await create(line.stack.client, line.space, "phone-numbers", body)
    standin.add_incoming(account["account_sid"], e164)
    return e164


async def _campaign(line: Line, from_e164: str, callees: list[str]) -> CampaignRef:
    return await start_campaign(
        line.stack.sessions,
        line.campaigns,
        space_id=line.space_id,
        e164s=[from_e164],
        contacts=[contact(n) for n in callees],
        limits=CampaignLimits(max_concurrent=5, calls_per_second=CAMPAIGN_CPS, max_attempts=1),
    )


async def test_two_campaigns_on_one_account_share_its_cps_another_account_is_not_held_up(
    line: Line, twilio_standin: TwilioStandIn
) -> None:
    http, space = line.stack.client, line.space
    shared = (await http.get(space.path("/carrier-accounts"), headers=space.viewer)).json()["data"][0]
    numbers = (await http.get(space.path("/phone-numbers"), headers=space.viewer)).json()["data"]
    agent_id = next(n["agent_id"] for n in numbers if n["e164"] == line.e164)
    limited = await http.patch(
        space.path(f"/carrier-accounts/{shared['id']}"), json={"cps": ACCOUNT_CPS}, headers=space.admin
    )
    assert limited.status_code == 200, limited.text
    second_of_shared = await _number(line, twilio_standin, shared, agent_id)
    other_sid, other_token = "AC" + uuid.uuid4().hex, "tok-" + uuid.uuid4().hex
    twilio_standin.add_account(other_sid, other_token)
    other = await create(
        http, space, "carrier-accounts", {"name": "other", "account_sid": other_sid, "auth_token": other_token}
    )
    on_other = await _number(line, twilio_standin, other, agent_id)

    first, second, third = ([unique_e164() for _ in range(5)] for _ in range(3))
    for n in first + second + third:
        twilio_standin.dial_plan[n] = CallScript("answered", ring_seconds=0.1, talk_seconds=0.3)
    refs = await asyncio.gather(
        _campaign(line, line.e164, first), _campaign(line, second_of_shared, second), _campaign(line, on_other, third)
    )
    results = await asyncio.wait_for(asyncio.gather(*(r.result() for r in refs)), 120)
    assert all(r.status is CampaignStatus.COMPLETED and r.answered == 5 for r in results), results

    together = sorted(t for t, _ in _dials(twilio_standin, first + second))
    assert len(together) == 10
    # Slots are 1/cps apart at the pacer; each call then reaches the carrier through its child's start and routing
    # (a few hundred ms of jitter on a loaded machine): the long-run rate keeps the limit, and no one-second window
    # holds more than one extra dial (the same reading as the campaign's own pacing test).
    assert (len(together) - 1) / (together[-1] - together[0]) <= ACCOUNT_CPS * 1.1, together
    assert max_in_one_second(together) <= ACCOUNT_CPS + 1, together
    alone = sorted(t for t, _ in _dials(twilio_standin, third))
    assert len(alone) == 5 and alone[-1] < together[-1], (alone, together)  # no account limit: not in that line

    pacers = DialPacerClient(temporal_client(line.stack), line.stack.settings.task_queue)
    route = dial_route(ROUTE_CARRIER_ACCOUNT, shared["id"])
    admitted = await pacers.state(DialPacerKey(line.space_id, route, STAGE_ADMIT))
    # One slot per dial, and more when a campaign woke after its slot had passed (a busy machine) and asked again.
    assert admitted is not None and admitted.granted_total >= 10 and admitted.rate == ACCOUNT_CPS
    at_carrier = await pacers.state(DialPacerKey(line.space_id, route, STAGE_CARRIER))
    assert at_carrier is not None and at_carrier.granted_total >= 10
    for stage in (STAGE_ADMIT, STAGE_CARRIER):
        key = DialPacerKey(line.space_id, dial_route(ROUTE_CARRIER_ACCOUNT, other["id"]), stage)
        assert await pacers.state(key) is None
