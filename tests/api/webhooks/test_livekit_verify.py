"""LiveKit webhook verification: a token whose body hash is not base64 is 401, a body that is not a JSON object
event is 400 with the reason; Hypothesis drives the verifier with arbitrary bodies and tokens: never a 500."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
from collections.abc import AsyncIterator

import pytest
from fastapi import HTTPException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from livekit import api as lk
from pydantic import SecretStr

from api.webhooks.livekit_verify import parse_event, verified_livekit_event
from models.settings import Settings
from tests.conftest import Platform, serve_api
from tests.livekit_standin.webhooks import sign

KEY, SECRET = "devkey", "s" * 40
HEADERS = {"content-type": "application/webhook+json"}


def _configured(base: Settings) -> Settings:
    update = {"livekit_url": "http://127.0.0.1:1", "livekit_api_key": KEY, "livekit_api_secret": SecretStr(SECRET)}
    return base.model_copy(update=update)


def _token_claiming(sha256: str) -> str:
    return lk.AccessToken(KEY, SECRET).with_sha256(sha256).with_ttl(datetime.timedelta(minutes=5)).to_jwt()


@pytest.fixture
async def livekit_api(api: Platform) -> AsyncIterator[Platform]:
    platform = Platform(_configured(api.settings), api.sessions, api.admin_key)
    async with serve_api(platform) as served:
        yield served


@pytest.mark.parametrize("claim", ["not base64!", "%%%%", "a" * 44, "é" * 44, "", "=" * 44])
async def test_a_body_hash_claim_that_is_not_base64_is_401(livekit_api: Platform, claim: str) -> None:
    body = json.dumps({"event": "room_started", "id": "EV_1"})
    response = await livekit_api.client.post(
        "/webhooks/livekit", content=body, headers=HEADERS | {"Authorization": _token_claiming(claim)}
    )
    assert response.status_code == 401, response.text
    assert "sha256" in response.json()["detail"] or "signature" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("[]", "not a JSON object"),
        ('"room_started"', "not a JSON object"),
        ("42", "not a JSON object"),
        ("null", "not a JSON object"),
        ("{not json", "not UTF-8 JSON"),
        ("", "not UTF-8 JSON"),
        ("{}", "names no event"),
        ('{"event": 5}', "names no event"),
        ('{"event": "participant_joined", "participant": "bob"}', "not a LiveKit event"),
        ('{"event": "room_finished", "room": {"name": ["a"]}}', "not a LiveKit event"),
        ('{"event": "room_finished", "createdAt": "yesterday"}', "not a LiveKit event"),
        (json.dumps({"event": "room_finished", "id": "E" * 129}), "event id longer than 128"),
    ],
)
async def test_a_body_that_is_not_an_event_is_400_with_the_reason(
    livekit_api: Platform, body: str, reason: str
) -> None:
    response = await livekit_api.client.post(
        "/webhooks/livekit", content=body, headers=HEADERS | {"Authorization": sign(body, KEY, SECRET)}
    )
    assert response.status_code == 400, response.text
    assert reason in response.json()["detail"]


SETTINGS = Settings(
    data_dir="/nonexistent", livekit_url="http://127.0.0.1:1", livekit_api_key=KEY, livekit_api_secret=SECRET
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
event_like = st.fixed_dictionaries(
    {"event": st.sampled_from(["participant_joined", "participant_left", "room_finished", "egress_ended", "x"])},
    optional={
        "id": st.text(max_size=20) | st.integers(),
        "room": json_values,
        "participant": json_values,
        "egressInfo": json_values,
        "createdAt": st.integers() | st.text(max_size=10),
    },
)
bodies = (
    st.binary(max_size=200)
    | json_values.map(lambda v: json.dumps(v).encode())
    | event_like.map(lambda v: json.dumps(v).encode())
)


@settings(max_examples=300, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(body=bodies)
def test_parsing_any_body_gives_an_event_or_a_400(body: bytes) -> None:
    try:
        event = parse_event(body)
    except HTTPException as exc:
        assert exc.status_code == 400
    else:
        assert isinstance(event, lk.WebhookEvent) and event.event


claims = st.text(max_size=60) | st.binary(min_size=32, max_size=32).map(lambda b: base64.b64encode(b).decode())


@settings(max_examples=200, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(body=bodies, claim=claims, signed_by_us=st.booleans(), authorization=st.none() | st.text(max_size=40))
def test_verifying_any_request_gives_an_event_a_400_or_a_401(
    body: bytes, claim: str, signed_by_us: bool, authorization: str | None
) -> None:
    if signed_by_us:
        authorization = _token_claiming(base64.b64encode(hashlib.sha256(body).digest()).decode())
    elif authorization is None:
        authorization = _token_claiming(claim)
    try:
        event = verified_livekit_event(SETTINGS, body, authorization)
    except HTTPException as exc:
        assert exc.status_code in (400, 401)
        assert signed_by_us or exc.status_code == 401
    else:
        assert signed_by_us and isinstance(event, lk.WebhookEvent)
