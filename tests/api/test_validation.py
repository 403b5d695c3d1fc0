"""Bad requests are 422 with the field and the reason, never a 500, and write nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.resources import agent_body, carrier_account_body, create, phone_number_body, sip_trunk_body
from tests.conftest import Platform


def _errors(response: Any) -> list[tuple[str, str]]:
    assert response.status_code == 422, response.text
    return [(str(e["loc"][-1]) if len(e["loc"]) > 1 else "", e["msg"]) for e in response.json()["errors"]]


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"allowed_cidrs": ["10.0.0.0/33"]}, "0", "not a CIDR block"),
        ({"allowed_cidrs": ["10.0.0.1/24"]}, "0", "host bits set"),
        ({"codecs": ["PCMU", "G729"]}, "1", "PCMU"),
        ({"codecs": ["PCMU", "PCMU"]}, "codecs", "must not repeat"),
        ({"sip_address": "not a host!"}, "sip_address", "host name or IP"),
        ({"sip_address": "sip.example.com:70000"}, "sip_address", "port"),
        ({"transport": "sctp"}, "transport", "udp"),
        ({"auth_username": None, "auth_password": None}, "", "credentials"),
        ({"auth_password": None}, "", "go together"),
    ],
)
async def test_bad_sip_trunks_are_rejected(api: Platform, change: dict[str, Any], field: str, reason: str) -> None:
    space = await api.new_space()
    body = {**sip_trunk_body(), **change}
    body = {k: v for k, v in body.items() if v is not None}
    response = await api.client.post(space.path("/sip-trunks"), json=body, headers=space.admin)
    errors = _errors(response)
    assert any(f == field and reason in msg for f, msg in errors), errors
    listed = await api.client.get(space.path("/sip-trunks"), headers=space.admin)
    assert listed.json()["data"] == []


async def test_allowlist_trunk_needs_no_credentials(api: Platform) -> None:
    space = await api.new_space()
    body = {"name": "ip auth", "sip_address": "203.0.113.10", "allowed_cidrs": ["203.0.113.0/24", "2001:db8::/32"]}
    trunk = await create(api.client, space, "sip-trunks", body)
    assert trunk["allowed_cidrs"] == ["203.0.113.0/24", "2001:db8::/32"]
    assert trunk["codecs"] == ["PCMU", "PCMA", "telephone-event"]
    # Dropping the allowlist without adding credentials would leave the trunk open: refused.
    patched = await api.client.patch(
        space.path(f"/sip-trunks/{trunk['id']}"), json={"allowed_cidrs": []}, headers=space.admin
    )
    assert any("credentials" in msg for _, msg in _errors(patched))


@pytest.mark.parametrize("e164", ["14155550100", "+0123456", "+1415555010", "+1 415 555 0100", "+999123456789", "+"])
async def test_bad_e164_numbers_are_rejected(api: Platform, e164: str) -> None:
    space = await api.new_space()
    body = {**await phone_number_body(api.client, space), "e164": e164}
    errors = _errors(await api.client.post(space.path("/phone-numbers"), json=body, headers=space.admin))
    assert any(field == "e164" for field, _ in errors), errors


async def test_phone_number_rules(api: Platform) -> None:
    space = await api.new_space()
    body = await phone_number_body(api.client, space)
    no_target = {**body, "agent_id": None}
    assert any(
        "agent_id" in m
        for _, m in _errors(await api.client.post(space.path("/phone-numbers"), json=no_target, headers=space.admin))
    )
    unknown_agent = {**body, "agent_id": "ag_nope"}
    errors = _errors(await api.client.post(space.path("/phone-numbers"), json=unknown_agent, headers=space.admin))
    assert ("agent_id", "Value error, no agent 'ag_nope' in this space") in errors or any(
        f == "agent_id" for f, _ in errors
    )
    both = {**body, "carrier_account_id": "ca_x"}
    assert any(
        "exactly one" in m
        for _, m in _errors(await api.client.post(space.path("/phone-numbers"), json=both, headers=space.admin))
    )
    stream_on_trunk = {**body, "media_mode": "stream"}
    assert any(
        "stream" in m
        for _, m in _errors(
            await api.client.post(space.path("/phone-numbers"), json=stream_on_trunk, headers=space.admin)
        )
    )


@pytest.mark.parametrize(
    ("kind", "body", "field"),
    [
        ("carrier-accounts", {**carrier_account_body(), "account_sid": "XX123"}, ""),
        ("carrier-accounts", {**carrier_account_body(), "provider": "carrier-pigeon"}, "provider"),
        ("agents", {**agent_body(), "llm_provider": "openai-compatible"}, ""),
        ("agents", {**agent_body(), "knowledge_base": [{"title": "", "content": "x"}]}, "title"),
        ("agents", {**agent_body(), "stt_provider": "magic"}, "stt_provider"),
        ("agents", {**agent_body(), "transfer_target": "the front desk"}, "transfer_target"),
        ("agents", {**agent_body(), "transfer_target": "sip:no-host"}, "transfer_target"),
        ("agents", {**agent_body(), "unknown_field": 1}, "unknown_field"),
        ("api-keys", {"name": "x", "role": "god"}, "role"),
    ],
)
async def test_bad_bodies_name_the_field(api: Platform, kind: str, body: dict[str, Any], field: str) -> None:
    space = await api.new_space()
    errors = _errors(await api.client.post(space.path(f"/{kind}"), json=body, headers=space.admin))
    assert any(f == field for f, _ in errors), errors


async def test_malformed_json_is_a_4xx(api: Platform) -> None:
    space = await api.new_space()
    for content in (b"{not json", b"[]", b"null", b'{"name": 5}'):
        response = await api.client.post(
            space.path("/agents"), content=content, headers={**space.admin, "content-type": "application/json"}
        )
        assert response.status_code == 422, (content, response.text)


async def test_agents_naming_a_provider_the_runtime_cannot_load_are_refused(
    api: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Validated where they are written: a plugin that is not installed or a key that is not set is a 422 naming
    the field and what to do, on create and on update; what the runtime can load is accepted."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    space = await api.new_space()
    missing_plugin = {**agent_body(), "stt_provider": "deepgram"}
    errors = _errors(await api.client.post(space.path("/agents"), json=missing_plugin, headers=space.admin))
    assert any(f == "stt_provider" and "livekit-plugins-deepgram" in m for f, m in errors), errors
    missing_key = {**agent_body(), "tts_provider": "openai"}
    errors = _errors(await api.client.post(space.path("/agents"), json=missing_key, headers=space.admin))
    assert any(f == "tts_provider" and "OPENAI_API_KEY" in m for f, m in errors), errors

    created = await api.client.post(space.path("/agents"), json=agent_body(), headers=space.admin)
    assert created.status_code == 201
    path = space.path(f"/agents/{created.json()['id']}")
    errors = _errors(await api.client.patch(path, json={"tts_provider": "cartesia"}, headers=space.admin))
    assert any(f == "tts_provider" and "bivariant-telephony[cartesia]" in m for f, m in errors), errors
    assert (await api.client.get(path, headers=space.admin)).json()["tts_provider"] == "local-hibari"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")  # installed (dev extra) and keyed: the runtime can load it
    assert (await api.client.patch(path, json={"tts_provider": "openai"}, headers=space.admin)).status_code == 200
