"""Buying and releasing numbers through the carrier's REST API (a Twilio stand-in), as workflows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.api.resources import agent_body, create
from tests.conftest import Platform, SpaceKeys
from tests.support.stack import running_stack
from tests.twilio_standin import OTHER_ACCOUNT_SID, TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TwilioStandIn


@pytest.fixture
async def stack(
    temporal_env: WorkflowEnvironment, twilio_standin: TwilioStandIn, tmp_path: Path
) -> AsyncIterator[Platform]:
    async with running_stack(temporal_env, tmp_path, twilio_api_base_url=twilio_standin.url) as platform:
        yield platform


async def _account_and_agent(stack: Platform, space: SpaceKeys, token: str = TEST_AUTH_TOKEN) -> tuple[str, str]:
    account = await create(
        stack.client,
        space,
        "carrier-accounts",
        {"name": "twilio", "account_sid": TEST_ACCOUNT_SID, "auth_token": token},
    )
    agent = await create(stack.client, space, "agents", agent_body())
    return account["id"], agent["id"]


async def test_buy_the_first_number_in_an_area_code(stack: Platform, twilio_standin: TwilioStandIn) -> None:
    space = await stack.new_space()
    account_id, agent_id = await _account_and_agent(stack, space)
    bought = await stack.client.post(
        space.path("/phone-numbers/purchase"),
        json={"carrier_account_id": account_id, "area_code": "415", "agent_id": agent_id, "media_mode": "stream"},
        headers=space.admin,
    )
    assert bought.status_code == 201, bought.text
    number = bought.json()
    assert number["e164"].startswith("+1415") and number["carrier_number_sid"].startswith("PN")
    assert number["media_mode"] == "stream" and number["agent_id"] == agent_id
    [owned] = twilio_standin.numbers_of(TEST_ACCOUNT_SID)
    assert owned.phone_number == number["e164"] and owned.sid == number["carrier_number_sid"]
    assert owned.voice_url == "https://telephony.example.com/webhooks/twilio/voice"
    assert owned.status_callback == "https://telephony.example.com/webhooks/twilio/status"
    assert owned.sms_url == "https://telephony.example.com/webhooks/twilio/sms"
    listed = await stack.client.get(space.path("/phone-numbers"), headers=space.viewer)
    assert [n["id"] for n in listed.json()["data"]] == [number["id"]]

    released = await stack.client.delete(
        space.path(f"/phone-numbers/{number['id']}"), params={"release": "true"}, headers=space.admin
    )
    assert released.status_code == 204
    assert twilio_standin.numbers_of(TEST_ACCOUNT_SID) == []
    assert [n.sid for n in twilio_standin.released] == [number["carrier_number_sid"]]


async def test_a_number_that_is_gone_is_a_409_and_records_nothing(
    stack: Platform, twilio_standin: TwilioStandIn
) -> None:
    space = await stack.new_space()
    account_id, agent_id = await _account_and_agent(stack, space)
    twilio_standin.add_incoming(OTHER_ACCOUNT_SID, "+12125550100")  # someone else bought it
    response = await stack.client.post(
        space.path("/phone-numbers/purchase"),
        json={"carrier_account_id": account_id, "e164": "+12125550100", "agent_id": agent_id},
        headers=space.admin,
    )
    assert response.status_code == 409, response.text
    assert "carrier refused" in response.json()["detail"]
    assert (await stack.client.get(space.path("/phone-numbers"), headers=space.viewer)).json()["data"] == []


async def test_wrong_carrier_credentials_are_a_502(stack: Platform, twilio_standin: TwilioStandIn) -> None:
    space = await stack.new_space()
    account_id, agent_id = await _account_and_agent(stack, space, token="not-the-right-token")
    response = await stack.client.post(
        space.path("/phone-numbers/purchase"),
        json={"carrier_account_id": account_id, "area_code": "415", "agent_id": agent_id},
        headers=space.admin,
    )
    assert response.status_code == 502 and "credentials" in response.json()["detail"]
    assert twilio_standin.numbers_of(TEST_ACCOUNT_SID) == []


async def test_a_lost_answer_does_not_buy_twice(stack: Platform, twilio_standin: TwilioStandIn) -> None:
    space = await stack.new_space()
    account_id, agent_id = await _account_and_agent(stack, space)
    # The carrier buys the number but its answer never arrives: the retry must find it, not buy again.
    twilio_standin.fail("buy_number", status=503, code=20503, message="Service unavailable", after=True)
    response = await stack.client.post(
        space.path("/phone-numbers/purchase"),
        json={"carrier_account_id": account_id, "e164": "+14155550102", "agent_id": agent_id},
        headers=space.admin,
    )
    assert response.status_code == 201, response.text
    assert [n.phone_number for n in twilio_standin.numbers_of(TEST_ACCOUNT_SID)] == ["+14155550102"]
    assert response.json()["carrier_number_sid"] == twilio_standin.numbers_of(TEST_ACCOUNT_SID)[0].sid


async def test_purchase_refuses_references_outside_the_space(stack: Platform) -> None:
    space = await stack.new_space()
    other = await stack.new_space()
    account_id, _ = await _account_and_agent(stack, other)
    agent = await create(stack.client, space, "agents", agent_body())
    response = await stack.client.post(
        space.path("/phone-numbers/purchase"),
        json={"carrier_account_id": account_id, "area_code": "415", "agent_id": agent["id"]},
        headers=space.admin,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "carrier_account_id"]
