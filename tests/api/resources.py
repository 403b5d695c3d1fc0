"""Valid request bodies for each resource, for tests that exercise every resource alike."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.conftest import SpaceKeys, unique_e164


def carrier_account_body() -> dict[str, Any]:
    return {"name": "twilio main", "account_sid": "AC" + uuid.uuid4().hex, "auth_token": "tok-" + uuid.uuid4().hex}


def sip_trunk_body() -> dict[str, Any]:
    return {
        "name": "carrier trunk",
        "sip_address": "sip.carrier.example:5060",
        "transport": "tcp",
        "auth_username": "bivariant",
        "auth_password": "s3cret-password",
        "codecs": ["PCMA", "PCMU", "telephone-event"],
    }


def agent_body() -> dict[str, Any]:
    return {
        "name": "front desk",
        "instructions": "Answer questions about opening hours.",
        "greeting": "Hello, how can I help?",
        "knowledge_base": [{"title": "Opening hours", "content": "We open at nine and close at five."}],
    }


def flow_body() -> dict[str, Any]:
    return {
        "name": "main menu",
        "steps": [
            {"id": "menu", "type": "gather", "prompt": "Press 1 for sales.", "choices": ["1"], "next": "bye"},
            {"id": "bye", "type": "say", "text": "Goodbye."},
            {"id": "end", "type": "hangup"},
        ],
    }


async def create(client: httpx.AsyncClient, space: SpaceKeys, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(space.path(f"/{kind}"), json=body, headers=space.admin)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def phone_number_body(client: httpx.AsyncClient, space: SpaceKeys) -> dict[str, Any]:
    trunk = await create(client, space, "sip-trunks", sip_trunk_body())
    agent = await create(client, space, "agents", agent_body())
    return {"e164": unique_e164(), "sip_trunk_id": trunk["id"], "route_type": "agent", "agent_id": agent["id"]}


async def body_for(client: httpx.AsyncClient, space: SpaceKeys, kind: str) -> dict[str, Any]:
    if kind == "phone-numbers":
        return await phone_number_body(client, space)
    if kind == "api-keys":
        return {"name": "ci", "role": "viewer"}
    bodies = {
        "carrier-accounts": carrier_account_body,
        "sip-trunks": sip_trunk_body,
        "agents": agent_body,
        "flows": flow_body,
    }
    return bodies[kind]()


KINDS = ["carrier-accounts", "sip-trunks", "agents", "phone-numbers", "api-keys", "flows"]
PATCHES = {
    "carrier-accounts": {"name": "renamed"},
    "sip-trunks": {"name": "renamed"},
    "agents": {"name": "renamed"},
    "phone-numbers": {"friendly_name": "renamed"},
    "api-keys": {"name": "renamed"},
    "flows": {"name": "renamed"},
}


async def twilio_number(
    client: httpx.AsyncClient,
    space: SpaceKeys,
    *,
    media_mode: str,
    agent: dict[str, Any] | None = None,
    account_sid: str,
    auth_token: str,
) -> str:
    """A Twilio account, an agent (``agent`` overrides its fields) and a new number routed to it: the number."""
    account = await create(
        client, space, "carrier-accounts", {"name": "twilio", "account_sid": account_sid, "auth_token": auth_token}
    )
    created = await create(client, space, "agents", agent_body() | (agent or {}))
    e164 = unique_e164()
    number = {"e164": e164, "carrier_account_id": account["id"], "agent_id": created["id"], "media_mode": media_mode}
    await create(client, space, "phone-numbers", number)
    return e164
