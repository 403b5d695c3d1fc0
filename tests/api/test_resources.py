"""Create, read, update and delete each resource; secrets never come back and are encrypted at rest."""

from __future__ import annotations

from sqlalchemy import select

from models.tables import Agent, CarrierAccount, SipTrunk
from tests.api.resources import agent_body, carrier_account_body, create, phone_number_body, sip_trunk_body
from tests.conftest import Platform, unique_e164


def _no_secret_in(response_text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in response_text


async def test_carrier_account_secret_is_encrypted_and_never_returned(api: Platform) -> None:
    space = await api.new_space()
    body = carrier_account_body()
    created = await api.client.post(space.path("/carrier-accounts"), json=body, headers=space.admin)
    assert created.status_code == 201
    _no_secret_in(created.text, body["auth_token"])
    account = created.json()
    assert account["has_auth_token"] is True and "auth_token" not in account
    for response in (
        await api.client.get(space.path("/carrier-accounts"), headers=space.viewer),
        await api.client.get(space.path(f"/carrier-accounts/{account['id']}"), headers=space.viewer),
        await api.client.get("/openapi.json"),
    ):
        _no_secret_in(response.text, body["auth_token"])
    async with api.sessions() as session:
        row = await session.scalar(select(CarrierAccount).where(CarrierAccount.id == account["id"]))
        assert row is not None and body["auth_token"] not in row.secret_encrypted
    duplicate = await api.client.post(space.path("/carrier-accounts"), json=body, headers=space.admin)
    assert duplicate.status_code == 409
    rotated = await api.client.patch(
        space.path(f"/carrier-accounts/{account['id']}"), json={"auth_token": "new-token-123"}, headers=space.admin
    )
    assert rotated.status_code == 200
    _no_secret_in(rotated.text, "new-token-123")


async def test_sip_trunk_lifecycle(api: Platform) -> None:
    space = await api.new_space()
    body = sip_trunk_body()
    trunk = await create(api.client, space, "sip-trunks", body)
    _no_secret_in(str(trunk), body["auth_password"])
    assert trunk["has_auth_password"] is True
    assert trunk["codecs"] == ["PCMA", "PCMU", "telephone-event"]
    assert trunk["provisioning"]["status"] == "pending"
    assert "not configured" in trunk["provisioning"]["error"]
    path = space.path(f"/sip-trunks/{trunk['id']}")

    # Switching to an IP allowlist and dropping credentials is one coherent change.
    patched = await api.client.patch(
        path,
        json={"allowed_cidrs": ["198.51.100.0/24"], "auth_username": None, "auth_password": None},
        headers=space.admin,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["has_auth_password"] is False and patched.json()["auth_username"] is None
    # A rename keeps the stored password untouched.
    back = await api.client.patch(path, json={"auth_username": "u2", "auth_password": "p2-secret"}, headers=space.admin)
    renamed = await api.client.patch(path, json={"name": "renamed"}, headers=space.admin)
    assert back.status_code == 200 and renamed.json()["has_auth_password"] is True
    async with api.sessions() as session:
        row = await session.scalar(select(SipTrunk).where(SipTrunk.id == trunk["id"]))
        assert row is not None and row.auth_password_encrypted and "p2-secret" not in row.auth_password_encrypted

    # Numbers mapped to the trunk show on it, and keep it from being deleted.
    agent = await create(api.client, space, "agents", agent_body())
    e164 = unique_e164()
    ported = await api.client.post(
        space.path("/phone-numbers/port"),
        json={"e164": e164, "sip_trunk_id": trunk["id"], "agent_id": agent["id"]},
        headers=space.admin,
    )
    assert ported.status_code == 201, ported.text
    assert (await api.client.get(path, headers=space.viewer)).json()["numbers"] == [e164]
    assert (await api.client.delete(path, headers=space.admin)).status_code == 409
    assert (await api.client.delete(space.path(f"/agents/{agent['id']}"), headers=space.admin)).status_code == 409
    assert (
        await api.client.delete(space.path(f"/phone-numbers/{ported.json()['id']}"), headers=space.admin)
    ).status_code == 204
    assert (await api.client.delete(path, headers=space.admin)).status_code == 204
    assert (await api.client.get(path, headers=space.admin)).status_code == 404


async def test_phone_number_lifecycle(api: Platform) -> None:
    space = await api.new_space()
    body = await phone_number_body(api.client, space)
    number = await create(api.client, space, "phone-numbers", body)
    assert number["media_mode"] == "livekit" and number["recording_policy"] == "off" and number["enabled"]
    duplicate = await api.client.post(space.path("/phone-numbers"), json=body, headers=space.admin)
    assert duplicate.status_code == 409
    other_space = await api.new_space()
    elsewhere = await api.client.post(
        other_space.path("/phone-numbers"),
        json=await phone_number_body(api.client, other_space) | {"e164": body["e164"]},
        headers=other_space.admin,
    )
    assert elsewhere.status_code == 409

    path = space.path(f"/phone-numbers/{number['id']}")
    to_flow = await api.client.patch(path, json={"route_type": "flow", "flow_id": "flow-42"}, headers=space.admin)
    assert to_flow.status_code == 200, to_flow.text
    assert to_flow.json()["agent_id"] is None and to_flow.json()["flow_id"] == "flow-42"
    bad = await api.client.patch(path, json={"route_type": "agent"}, headers=space.admin)
    assert bad.status_code == 422
    settings = await api.client.patch(
        path, json={"recording_policy": "always", "sms_enabled": True, "enabled": False}, headers=space.admin
    )
    assert settings.json()["recording_policy"] == "always" and settings.json()["enabled"] is False
    found = await api.client.get(space.path("/phone-numbers"), params={"e164": body["e164"]}, headers=space.viewer)
    assert [n["id"] for n in found.json()["data"]] == [number["id"]]


async def test_agent_lifecycle(api: Platform) -> None:
    space = await api.new_space()
    agent = await create(
        api.client,
        space,
        "agents",
        agent_body()
        | {
            "llm_provider": "openai-compatible",
            "llm_base_url": "http://llm.internal:8080/v1",
            "llm_model": "qwen",
            "llm_api_key": "sk-secret-value",
        },
    )
    assert agent["has_llm_api_key"] is True and "sk-secret-value" not in str(agent)
    assert agent["knowledge_base"][0]["title"] == "Opening hours"
    path = space.path(f"/agents/{agent['id']}")
    desk = await api.client.patch(path, json={"transfer_target": "sip:desk@pbx.example.com"}, headers=space.admin)
    assert desk.status_code == 200 and desk.json()["transfer_target"] == "sip:desk@pbx.example.com"
    updated = await api.client.patch(
        path,
        json={"greeting": "Hi!", "knowledge_base": [{"title": "Parking", "content": "Free parking at the back."}]},
        headers=space.admin,
    )
    assert updated.status_code == 200 and updated.json()["greeting"] == "Hi!"
    assert updated.json()["has_llm_api_key"] is True
    async with api.sessions() as session:
        row = await session.scalar(select(Agent).where(Agent.id == agent["id"]))
        assert row is not None and row.llm_api_key_encrypted and "sk-secret" not in row.llm_api_key_encrypted
    back_to_local = await api.client.patch(path, json={"llm_provider": "local-kb"}, headers=space.admin)
    assert back_to_local.status_code == 200
    listed = await api.client.get(space.path("/agents"), headers=space.viewer)
    assert [a["id"] for a in listed.json()["data"]] == [agent["id"]]


async def test_openapi_docs_are_served(api: Platform) -> None:
    assert (await api.client.get("/docs")).status_code == 200
    spec = (await api.client.get("/openapi.json")).json()
    assert "/v1/spaces/{space_id}/sip-trunks" in spec["paths"]
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}


async def test_carrier_accounts_and_trunks_take_a_calls_per_second_limit(api: Platform) -> None:
    space = await api.new_space()
    account = await create(api.client, space, "carrier-accounts", carrier_account_body())
    assert account["cps"] is None  # no limit of ours unless set
    trunk = await create(api.client, space, "sip-trunks", sip_trunk_body() | {"cps": 5})
    assert trunk["cps"] == 5
    for kind, resource in (("carrier-accounts", account), ("sip-trunks", trunk)):
        path = space.path(f"/{kind}/{resource['id']}")
        for bad in (0, -1, 1001, "fast"):
            refused = await api.client.patch(path, json={"cps": bad}, headers=space.admin)
            assert refused.status_code == 422, refused.text
        set_ = await api.client.patch(path, json={"cps": 1.5}, headers=space.admin)
        assert set_.status_code == 200 and set_.json()["cps"] == 1.5
        renamed = await api.client.patch(path, json={"name": "renamed"}, headers=space.admin)
        assert renamed.json()["cps"] == 1.5  # left out: unchanged
        cleared = await api.client.patch(path, json={"cps": None}, headers=space.admin)
        assert cleared.json()["cps"] is None
