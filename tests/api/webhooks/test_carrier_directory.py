"""The webhooks' cache of carrier accounts and numbers: what this process changes through the REST API applies to
the very next webhook; what another process changes (a worker releasing a number) applies within the TTL."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from api.carrier_directory import CarrierDirectory, _TtlCache
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


async def test_a_burst_missing_together_makes_one_lookup_and_a_change_starts_a_fresh_one(api: Platform) -> None:
    """Fifty webhooks arriving as an entry expires wait for one lookup (they used to queue fifty queries); a
    request that goes away does not end it for the others; a lookup begun before forget() caches nothing."""
    assert api.app is not None
    space = await api.new_space()
    account_sid, token = "AC" + uuid.uuid4().hex, "tok-" + uuid.uuid4().hex
    await create(api.client, space, "carrier-accounts", {"name": "t", "account_sid": account_sid, "auth_token": token})
    now = [0.0]
    state = api.app.state
    directory = CarrierDirectory(state.secret_box, state.sessions, ttl=5.0, clock=lambda: now[0])

    burst = await asyncio.gather(*(directory.twilio_accounts(account_sid, 3) for _ in range(50)))
    assert {accounts[0].auth_token for accounts in burst} == {token} and directory.lookups_made == 1
    now[0] = 5.1  # expired: the next burst looks up once again
    await asyncio.gather(*(directory.twilio_accounts(account_sid, 3) for _ in range(50)))
    assert directory.lookups_made == 2

    now[0] = 10.2
    gone = asyncio.create_task(directory.twilio_accounts(account_sid, 3))
    stays = asyncio.create_task(directory.twilio_accounts(account_sid, 3))
    await asyncio.sleep(0)  # both wait on the one lookup
    gone.cancel()
    assert (await stays)[0].auth_token == token and directory.lookups_made == 3

    now[0] = 15.3
    before = asyncio.create_task(directory.twilio_accounts(account_sid, 3))
    await asyncio.sleep(0)  # its lookup has begun
    directory.forget()  # this process changed an account meanwhile
    after = asyncio.create_task(directory.twilio_accounts(account_sid, 3))
    await asyncio.gather(before, after)
    assert directory.lookups_made == 5  # the request after the change did not join the lookup from before it
    await directory.twilio_accounts(account_sid, 3)
    assert directory.lookups_made == 5  # the fresh lookup's answer is the one cached
