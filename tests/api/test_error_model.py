"""One error model: every non-2xx answer is an ``ErrorBody`` (``detail`` + ``errors``), whatever raised it; odd
values (trailing newlines, other scripts' digits, forged cursors, unbounded ids) are 4xx with a reason."""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from models.schemas.errors import ErrorBody
from tests.api.resources import carrier_account_body, create, phone_number_body
from tests.conftest import Platform, serve_api

ARABIC_INDIC_ZERO = 0x0660
FULLWIDTH_ZERO = 0xFF10


def _in_script(zero: int, digits: str) -> str:
    """``digits`` written with another script's digits (``str.isdigit`` and ``int`` accept them all)."""
    return "".join(chr(zero + int(d)) for d in digits)


def _error(response: httpx.Response, status: int) -> ErrorBody:
    assert response.status_code == status, response.text
    assert set(response.json()) == {"detail", "errors"}, response.text
    return ErrorBody.model_validate(response.json())


async def test_every_kind_of_error_has_the_same_shape(api: Platform) -> None:
    space = await api.new_space()
    assert "Authorization" in _error(await api.client.get(space.path()), 401).detail
    denied = await api.client.post(space.path("/agents"), json={"name": "x"}, headers=space.viewer)
    assert "role 'admin'" in _error(denied, 403).detail
    missing = await api.client.get(space.path(f"/agents/ag_{uuid.uuid4().hex}"), headers=space.viewer)
    assert _error(missing, 404).detail == "agent not found"
    account = carrier_account_body()
    await create(api.client, space, "carrier-accounts", account)
    again = await api.client.post(space.path("/carrier-accounts"), json=account, headers=space.admin)
    assert "already connected" in _error(again, 409).detail

    # Validation by pydantic, and validation raised by hand in a route: the same shape, the field named.
    bad = await api.client.post(space.path("/agents"), json={"name": ""}, headers=space.admin)
    body = _error(bad, 422)
    assert body.errors[0].loc == ["body", "name"] and "name" in body.detail
    unknown_agent = {**await phone_number_body(api.client, space), "agent_id": "ag_" + uuid.uuid4().hex}
    by_hand = _error(await api.client.post(space.path("/phone-numbers"), json=unknown_agent, headers=space.admin), 422)
    assert by_hand.errors[0].loc == ["body", "agent_id"] and "in this space" in by_hand.errors[0].msg
    cursor = await api.client.get(space.path("/agents"), params={"cursor": "nonsense"}, headers=space.viewer)
    assert _error(cursor, 422).detail.startswith("cursor")
    unparseable = await api.client.post(
        space.path("/agents"), content=b"\xff\xfe", headers={**space.admin, "content-type": "application/json"}
    )
    assert unparseable.status_code in (400, 422) and set(unparseable.json()) == {"detail", "errors"}
    assert _error(await api.client.get("/no/such/route"), 404).detail == "Not Found"


class _Failing:
    """A part composed into the app (as the voice runtime is) whose route fails with an unexpected error."""

    router = APIRouter()

    @staticmethod
    @router.get("/fails")
    async def fails() -> None:
        raise RuntimeError("caller +14155550123 pressed 1234")

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        yield


async def test_an_unexpected_failure_is_a_500_error_body_logged_without_personal_data(
    api: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    async with serve_api(api, extensions=[_Failing()]) as served:
        with caplog.at_level(logging.DEBUG):
            response = await served.client.get("/fails")
    body = _error(response, 500)
    assert "+1415" not in body.detail and "1234" not in body.detail
    logged = [r for r in caplog.records if r.name == "api.errors"]
    assert logged and logged[0].getMessage() == "request failed with an unhandled error"
    assert logged[0].__dict__["error_type"] == "RuntimeError" and logged[0].__dict__["path"] == "/fails"
    for record in caplog.records:
        text = record.getMessage() + repr(record.__dict__.get("raised_at")) + str(record.exc_info or "")
        assert "+14155550123" not in text and "1234" not in text


def _cursor(created: str, row_id: str = "sp_" + "0" * 32) -> str:
    return base64.urlsafe_b64encode(f"{created}|{row_id}".encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        _cursor("2026-01-01T00:00:00"),  # naive
        _cursor("0001-01-01T00:00:00+00:00"),  # year 1
        _cursor("0001-01-01T00:00:00+23:59"),  # overflows when moved to UTC
        _cursor("9999-12-31T23:59:59-23:59"),
        _cursor("2026-01-01T00:00:00+00:00", "sp_x\n"),
        _cursor("2026-01-01T00:00:00+00:00", "x" * 100),
        _cursor(_in_script(ARABIC_INDIC_ZERO, "2026") + "-01-01T00:00:00+00:00"),
        base64.urlsafe_b64encode(b"\xff\xfe|x").decode(),
    ],
)
async def test_odd_cursors_are_422(api: Platform, cursor: str) -> None:
    space = await api.new_space()
    for kind in ("agents", "phone-numbers", "calls", "conversations"):
        response = await api.client.get(space.path(f"/{kind}"), params={"cursor": cursor}, headers=space.viewer)
        assert _error(response, 422).detail == "cursor: not a cursor from this API"
    assert (await api.client.get("/v1/spaces", params={"cursor": cursor}, headers=api.admin)).status_code == 422


async def test_a_cursor_this_api_issued_still_pages(api: Platform) -> None:
    space = await api.new_space()
    for _ in range(3):
        await create(api.client, space, "carrier-accounts", carrier_account_body())
    first = (await api.client.get(space.path("/carrier-accounts"), params={"limit": 2}, headers=space.viewer)).json()
    rest = await api.client.get(
        space.path("/carrier-accounts"), params={"limit": 2, "cursor": first["next_cursor"]}, headers=space.viewer
    )
    assert len(first["data"]) == 2 and len(rest.json()["data"]) == 1


@pytest.mark.parametrize(
    "path",
    [
        "/agents/ag_{hex}%0A",
        "/agents/{long}",
        "/agents/ag_{hex}x",
        "/agents/AG_{hex}",
        "/agents/ag_{arabic_zero}{hex31}",
    ],
)
async def test_path_ids_are_bounded_and_patterned(api: Platform, path: str) -> None:
    space = await api.new_space()
    hex_ = uuid.uuid4().hex
    url = space.path(path.format(hex=hex_, hex31=hex_[:31], long="a" * 5000, arabic_zero=chr(ARABIC_INDIC_ZERO)))
    response = await api.client.get(url, headers=space.viewer)
    assert _error(response, 422).errors[0].loc[:2] == ["path", "agent_id"]
    newline_space = await api.client.get(f"/v1/spaces/{space.id}%0A", headers=space.viewer)
    assert _error(newline_space, 422).errors[0].loc == ["path", "space_id"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("e164", "+" + _in_script(ARABIC_INDIC_ZERO, "14155550100")),  # phonenumbers reads them as ASCII
        ("e164", "+1" + _in_script(FULLWIDTH_ZERO, "4155550100")),
        ("e164", "+1415\n5550100"),  # a newline inside (a trailing one is stripped, like all whitespace)
    ],
)
async def test_phone_numbers_are_ascii_e164(api: Platform, field: str, value: str) -> None:
    space = await api.new_space()
    body = {**await phone_number_body(api.client, space), field: value}
    response = await api.client.post(space.path("/phone-numbers"), json=body, headers=space.admin)
    assert _error(response, 422).errors[0].loc[-1] == field


async def test_other_unicode_digits_and_trailing_newlines_are_refused(api: Platform) -> None:
    space = await api.new_space()
    trunk: dict[str, Any] = {
        "name": "t",
        "sip_address": "sip.example.com:" + _in_script(ARABIC_INDIC_ZERO, "5060"),
        "allowed_cidrs": ["203.0.113.0/24"],
    }
    bad_port = await api.client.post(space.path("/sip-trunks"), json=trunk, headers=space.admin)
    assert _error(bad_port, 422).errors[0].loc[-1] == "sip_address"
    target = {"name": "a", "transfer_target": "sip:desk@pbx.example.com\r\nX-Injected: 1"}
    injected = await api.client.post(space.path("/agents"), json=target, headers=space.admin)
    assert _error(injected, 422).errors[0].loc[-1] == "transfer_target"


async def test_porting_another_spaces_number_answers_as_any_refusal(api: Platform) -> None:
    owner, other = await api.new_space("owner"), await api.new_space("other")
    held = await phone_number_body(api.client, owner)
    await create(api.client, owner, "phone-numbers", held)

    async def port(space: Any, e164: str) -> httpx.Response:
        body = {k: v for k, v in (await phone_number_body(api.client, space)).items() if k != "e164"}
        return await api.client.post(
            space.path("/phone-numbers/port"), json={**body, "e164": e164}, headers=space.admin
        )

    taken = await port(other, held["e164"])
    premium = await port(other, "+19002345678")  # a premium-rate number is never portable
    assert taken.status_code == premium.status_code == 409
    assert taken.json() == premium.json() == {"detail": "this number cannot be added to this space", "errors": []}
    again = await port(owner, held["e164"])
    assert _error(again, 409).detail == "this number is already in this space"
    listed = await api.client.get(other.path("/phone-numbers"), headers=other.viewer)
    assert listed.json()["data"] == []
