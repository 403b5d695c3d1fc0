"""SIP trunks reach LiveKit through the provisioning workflow: protobuf over Twirp with real JWT grants."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from livekit import api as lk
from temporalio.testing import WorkflowEnvironment

from tests.api.resources import agent_body, create, sip_trunk_body
from tests.conftest import Platform, SpaceKeys, unique_e164
from tests.livekit_standin import LiveKitStandIn
from tests.support.stack import eventually, livekit_settings, running_stack


@pytest.fixture
async def stack(
    temporal_env: WorkflowEnvironment, livekit_standin: LiveKitStandIn, tmp_path: Path
) -> AsyncIterator[Platform]:
    async with running_stack(
        temporal_env,
        tmp_path,
        **livekit_settings(livekit_standin),
    ) as platform:
        yield platform


async def _settled(stack: Platform, space: SpaceKeys, trunk_id: str, status: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        response = await stack.client.get(space.path(f"/sip-trunks/{trunk_id}"), headers=space.viewer)
        trunk: dict[str, Any] = response.json()
        return trunk if trunk["provisioning"]["status"] == status else None

    return await eventually(probe)


async def test_new_trunk_becomes_inbound_outbound_trunks_and_a_dispatch_rule(
    stack: Platform, livekit_standin: LiveKitStandIn
) -> None:
    space = await stack.new_space()
    created = await create(stack.client, space, "sip-trunks", sip_trunk_body() | {"allowed_cidrs": ["203.0.113.0/24"]})
    assert created["provisioning"]["status"] == "provisioning"
    trunk = await _settled(stack, space, created["id"], "provisioned")
    ids = trunk["provisioning"]

    [inbound_req] = livekit_standin.calls("CreateSIPInboundTrunk")
    inbound = inbound_req.trunk
    assert inbound.auth_username == "bivariant" and inbound.auth_password == "s3cret-password"
    assert list(inbound.allowed_addresses) == ["203.0.113.0/24"]
    assert [c.name for c in inbound.media.codecs] == ["PCMA", "PCMU", "telephone-event"]
    assert json.loads(inbound.metadata) == {"space_id": space.id, "trunk_id": created["id"]}
    # LiveKit dials out from a trunk's numbers: none mapped yet, so no outbound trunk yet.
    assert livekit_standin.calls("CreateSIPOutboundTrunk") == [] and ids["livekit_outbound_trunk_id"] is None
    [rule_req] = livekit_standin.calls("CreateSIPDispatchRule")
    assert list(rule_req.dispatch_rule.trunk_ids) == [ids["livekit_inbound_trunk_id"]]
    assert rule_req.dispatch_rule.rule.dispatch_rule_individual.room_prefix == "call-"

    # What LiveKit now holds, read back through the official client.
    async with lk.LiveKitAPI(livekit_standin.url, livekit_standin.api_key, livekit_standin.api_secret) as client:
        inbound_list = await client.sip.list_inbound_trunk(lk.ListSIPInboundTrunkRequest())
        rules = await client.sip.list_dispatch_rule(lk.ListSIPDispatchRuleRequest())
    assert [t.sip_trunk_id for t in inbound_list.items] == [ids["livekit_inbound_trunk_id"]]
    assert [r.sip_dispatch_rule_id for r in rules.items] == [ids["livekit_dispatch_rule_id"]]


async def test_mapped_numbers_and_changes_update_the_same_livekit_trunks(
    stack: Platform, livekit_standin: LiveKitStandIn
) -> None:
    space = await stack.new_space()
    created = await create(stack.client, space, "sip-trunks", sip_trunk_body())
    first = (await _settled(stack, space, created["id"], "provisioned"))["provisioning"]
    agent = await create(stack.client, space, "agents", agent_body())
    e164 = unique_e164()
    ported = await stack.client.post(
        space.path("/phone-numbers/port"),
        json={"e164": e164, "sip_trunk_id": created["id"], "agent_id": agent["id"]},
        headers=space.admin,
    )
    assert ported.status_code == 201

    async def numbers_applied() -> bool:
        updates = livekit_standin.calls("UpdateSIPInboundTrunk")
        return bool(updates) and list(updates[-1].replace.numbers) == [e164]

    await eventually(numbers_applied)
    with_number = (await _settled(stack, space, created["id"], "provisioned"))["provisioning"]
    [outbound_req] = livekit_standin.calls("CreateSIPOutboundTrunk")
    assert outbound_req.trunk.address == "sip.carrier.example:5060"
    assert outbound_req.trunk.transport == lk.SIPTransport.SIP_TRANSPORT_TCP
    assert list(outbound_req.trunk.numbers) == [e164]
    assert with_number["livekit_outbound_trunk_id"]

    patched = await stack.client.patch(
        space.path(f"/sip-trunks/{created['id']}"), json={"codecs": ["G722", "PCMU"]}, headers=space.admin
    )
    assert patched.status_code == 200

    async def codecs_applied() -> bool:
        updates = livekit_standin.calls("UpdateSIPOutboundTrunk")
        return bool(updates) and [c.name for c in updates[-1].replace.media.codecs] == ["G722", "PCMU"]

    await eventually(codecs_applied)
    final = (await _settled(stack, space, created["id"], "provisioned"))["provisioning"]
    for key in ("livekit_inbound_trunk_id", "livekit_outbound_trunk_id", "livekit_dispatch_rule_id"):
        assert final[key] == with_number[key]
    assert final["livekit_inbound_trunk_id"] == first["livekit_inbound_trunk_id"]
    assert len(livekit_standin.calls("CreateSIPInboundTrunk")) == 1
    assert len(livekit_standin.calls("CreateSIPOutboundTrunk")) == 1


async def test_transient_livekit_errors_are_retried_without_duplicates(
    stack: Platform, livekit_standin: LiveKitStandIn
) -> None:
    livekit_standin.fail("CreateSIPDispatchRule", code="unavailable", msg="try later", times=2)
    space = await stack.new_space()
    created = await create(stack.client, space, "sip-trunks", sip_trunk_body())
    await _settled(stack, space, created["id"], "provisioned")
    assert len(livekit_standin.calls("CreateSIPInboundTrunk")) == 1
    assert len(livekit_standin.calls("CreateSIPDispatchRule")) == 3


async def test_refused_configuration_marks_the_trunk_failed_and_can_be_retried(
    stack: Platform, livekit_standin: LiveKitStandIn
) -> None:
    livekit_standin.fail("CreateSIPInboundTrunk", code="invalid_argument", msg="bad allowed address")
    space = await stack.new_space()
    created = await create(stack.client, space, "sip-trunks", sip_trunk_body())
    failed = await _settled(stack, space, created["id"], "failed")
    assert "bad allowed address" in failed["provisioning"]["error"]
    retried = await stack.client.post(space.path(f"/sip-trunks/{created['id']}/provision"), headers=space.admin)
    assert retried.status_code == 202
    await _settled(stack, space, created["id"], "provisioned")


async def test_deleting_a_trunk_removes_it_from_livekit(stack: Platform, livekit_standin: LiveKitStandIn) -> None:
    space = await stack.new_space()
    created = await create(stack.client, space, "sip-trunks", sip_trunk_body())
    ids = (await _settled(stack, space, created["id"], "provisioned"))["provisioning"]
    deleted = await stack.client.delete(space.path(f"/sip-trunks/{created['id']}"), headers=space.admin)
    assert deleted.status_code == 204

    async def gone() -> bool:
        deleted = {r.sip_trunk_id for r in livekit_standin.calls("DeleteSIPTrunk")}
        rules = {r.sip_dispatch_rule_id for r in livekit_standin.calls("DeleteSIPDispatchRule")}
        return deleted == {ids["livekit_inbound_trunk_id"]} and rules == {ids["livekit_dispatch_rule_id"]}

    await eventually(gone)


async def test_wrong_livekit_secret_fails_provisioning_with_the_reason(
    temporal_env: WorkflowEnvironment, livekit_standin: LiveKitStandIn, tmp_path: Path
) -> None:
    async with running_stack(
        temporal_env,
        tmp_path,
        livekit_url=livekit_standin.url,
        livekit_api_key=livekit_standin.api_key,
        livekit_api_secret="x" * 40,
    ) as stack:
        space = await stack.new_space()
        created = await create(stack.client, space, "sip-trunks", sip_trunk_body())
        failed = await _settled(stack, space, created["id"], "failed")
        assert "LiveKit refused" in failed["provisioning"]["error"]
    assert [r.auth_error is not None for r in livekit_standin.requests] == [True]  # refused once, not retried
    async with lk.LiveKitAPI(livekit_standin.url, livekit_standin.api_key, livekit_standin.api_secret) as client:
        assert list((await client.sip.list_inbound_trunk(lk.ListSIPInboundTrunkRequest())).items) == []
