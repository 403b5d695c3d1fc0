"""The webhooks' cache of carrier accounts and numbers: what this process changes through the REST API applies to
the very next webhook; what another process changes (a worker releasing a number) applies within the TTL."""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from api.carrier_directory import _TtlCache
from tests.api.resources import create
from tests.conftest import Platform

STATUS = "/webhooks/twilio/status"
FORM = "application/x-www-form-urlencoded"


def _post(api: Platform, params: dict[str, str], token: str) -> tuple[str, dict[str, str]]:
    url = api.settings.public_url.rstrip("/") + STATUS
    headers = {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, params), "content-type": FORM}
    return urlencode(params), headers


async def _status(api: Platform, params: dict[str, str], token: str) -> int:
    body, headers = _post(api, params, token)
    return (await api.client.post(STATUS, content=body, headers=headers)).status_code


async def test_a_rotated_or_deleted_account_token_applies_to_the_next_webhook(api: Platform) -> None:
    space = await api.new_space()
    account_sid = "AC" + uuid.uuid4().hex
    old, new = "tok-" + uuid.uuid4().hex, "tok-" + uuid.uuid4().hex
    account = await create(
        api.client, space, "carrier-accounts", {"name": "t", "account_sid": account_sid, "auth_token": old}
    )
    # No CallStatus: a verified request stops at the form (400) before any workflow; a refused one is 403.
    params = {"CallSid": "CA" + uuid.uuid4().hex, "AccountSid": account_sid, "From": "+14155550199"}
    assert await _status(api, params, old) == 400  # verified, and now cached
    assert await _status(api, params, old) == 400

    path = space.path(f"/carrier-accounts/{account['id']}")
    assert (await api.client.patch(path, json={"auth_token": new}, headers=space.admin)).status_code == 200
    assert await _status(api, params, old) == 403
    assert await _status(api, params, new) == 400

    assert (await api.client.delete(path, headers=space.admin)).status_code == 204
    assert await _status(api, params, new) == 403


def test_entries_expire_and_the_oldest_go_first_when_full() -> None:
    now = [0.0]
    cache: _TtlCache[str, int] = _TtlCache(ttl=5.0, size=2, clock=lambda: now[0])
    cache.put("a", 1)
    now[0] = 4.9
    assert cache.get("a") == 1
    now[0] = 5.1
    assert cache.get("a") is None  # expired: looked up afresh
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (None, 2, 3)
    off: _TtlCache[str, int] = _TtlCache(ttl=0, size=2, clock=lambda: 0.0)
    off.put("a", 1)
    assert off.get("a") is None  # TELEPHONY_DIRECTORY_CACHE_SECONDS=0: no cache
