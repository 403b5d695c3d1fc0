"""Self-tests of the Twilio REST stand-in, with httpx and with the official ``twilio`` package."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiohttp import web
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from activities.twilio_rest import TwilioError, TwilioRest
from tests.twilio_standin import (
    OTHER_ACCOUNT_SID,
    OTHER_AUTH_TOKEN,
    TEST_ACCOUNT_SID,
    TEST_AUTH_TOKEN,
    TwilioStandIn,
    error_body,
)

pytest_plugins = ["tests.twilio_standin.fixtures"]  # the ``twilio_standin`` fixture (conftest may load it too)
ROOT = f"/2010-04-01/Accounts/{TEST_ACCOUNT_SID}"
AUTH_FAILED = {
    "code": 20003,
    "message": "Authenticate",
    "more_info": "https://www.twilio.com/docs/errors/20003",
    "status": 401,
}


@pytest_asyncio.fixture(loop_scope="session")
async def api(twilio_standin: TwilioStandIn) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=twilio_standin.url, auth=(TEST_ACCOUNT_SID, TEST_AUTH_TOKEN)) as c:
        yield c


@dataclass
class Received:
    method: str
    url: str
    params: dict[str, str]
    headers: dict[str, str]


@dataclass
class Receiver:
    """Our side of the webhooks, as a real HTTP server: records requests, answers TwiML."""

    url: str = ""
    received: list[Received] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        params = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        self.received.append(Received(request.method, str(request.url), params, dict(request.headers)))
        return web.Response(text="<Response><Say>Hello</Say></Response>", content_type="text/xml")


@pytest_asyncio.fixture(loop_scope="session")
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recv.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    recv.url = f"http://{host}:{port}"
    yield recv
    await runner.cleanup()


def assert_signed(received: Received, token: str) -> None:
    signature = received.headers["X-Twilio-Signature"]
    assert RequestValidator(token).validate(received.url, received.params, signature)
    assert not RequestValidator("not-the-token").validate(received.url, received.params, signature)


async def test_authentication_and_account_scope(twilio_standin: TwilioStandIn) -> None:
    async with httpx.AsyncClient(base_url=twilio_standin.url) as anonymous:
        response = await anonymous.get(f"{ROOT}/IncomingPhoneNumbers.json")
        assert response.status_code == 401
        assert response.json() == AUTH_FAILED
        assert response.headers["WWW-Authenticate"].startswith("Basic")
        wrong = await anonymous.get(f"{ROOT}/Calls.json", auth=(TEST_ACCOUNT_SID, "wrong"))
        assert (wrong.status_code, wrong.json()) == (401, AUTH_FAILED)
        # Valid credentials of another account do not open this account's resources.
        other = await anonymous.get(f"{ROOT}/IncomingPhoneNumbers.json", auth=(OTHER_ACCOUNT_SID, OTHER_AUTH_TOKEN))
        assert other.status_code == 404 and other.json()["code"] == 20404
        # An API key authenticates as its account.
        twilio_standin.add_api_key(TEST_ACCOUNT_SID, "SK" + "1" * 32, "key-secret")
        keyed = await anonymous.get(f"{ROOT}/IncomingPhoneNumbers.json", auth=("SK" + "1" * 32, "key-secret"))
        assert keyed.status_code == 200
    assert [r.account_sid for r in twilio_standin.requests] == [
        None,
        None,
        OTHER_ACCOUNT_SID,
        TEST_ACCOUNT_SID,
    ]


async def test_search_available_numbers(twilio_standin: TwilioStandIn, api: httpx.AsyncClient) -> None:
    async def search(country: str = "US", kind: str = "Local", **params: str) -> list[str]:
        response = await api.get(f"{ROOT}/AvailablePhoneNumbers/{country}/{kind}.json", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["uri"].startswith(f"{ROOT}/AvailablePhoneNumbers/{country}/{kind}.json")
        return [n["phone_number"] for n in body["available_phone_numbers"]]

    assert await search(AreaCode="415") == ["+14155550100", "+14155550101", "+14155550102"]
    assert await search(AreaCode="415", PageSize="2") == ["+14155550100", "+14155550101"]
    assert await search(Contains="555010*", SmsEnabled="false") == ["+13125550100"]
    assert await search(Contains="212*******") == ["+12125550100"]
    assert await search(kind="TollFree") == ["+18885550100"]
    assert await search(country="GB", VoiceEnabled="true") == ["+442079460100"]
    assert await search(AreaCode="999") == []
    twilio_standin.add_available("+15035550123", region="OR", locality="Portland", sms=False)
    first = (await api.get(f"{ROOT}/AvailablePhoneNumbers/US/Local.json", params={"AreaCode": "503"})).json()
    assert first["available_phone_numbers"] == [
        {
            "friendly_name": "(503) 555-0123",
            "phone_number": "+15035550123",
            "lata": None,
            "locality": "Portland",
            "rate_center": None,
            "latitude": None,
            "longitude": None,
            "region": "OR",
            "postal_code": None,
            "iso_country": "US",
            "address_requirements": "none",
            "beta": False,
            "capabilities": {"voice": True, "SMS": False, "MMS": False},
        }
    ]
    recorded = twilio_standin.requests_for("search_available")[0]
    assert recorded.query == {"AreaCode": "415"} and recorded.account_sid == TEST_ACCOUNT_SID


async def test_purchase_update_release(twilio_standin: TwilioStandIn, api: httpx.AsyncClient) -> None:
    webhooks = {
        "VoiceUrl": "https://telephony.example/webhooks/twilio/voice",
        "VoiceMethod": "POST",
        "StatusCallback": "https://telephony.example/webhooks/twilio/status",
        "StatusCallbackMethod": "POST",
        "SmsUrl": "https://telephony.example/webhooks/twilio/sms",
        "SmsMethod": "post",
    }
    bought = await api.post(
        f"{ROOT}/IncomingPhoneNumbers.json",
        data={"PhoneNumber": "+14155550101", "FriendlyName": "front", **webhooks},
    )
    assert bought.status_code == 201, bought.text
    number = bought.json()
    assert re.fullmatch(r"PN[0-9a-f]{32}", number["sid"])
    assert parsedate_to_datetime(number["date_created"]).tzinfo is not None
    assert number["account_sid"] == TEST_ACCOUNT_SID and number["phone_number"] == "+14155550101"
    assert number["friendly_name"] == "front"
    assert number["voice_url"] == webhooks["VoiceUrl"] and number["sms_url"] == webhooks["SmsUrl"]
    assert number["status_callback"] == webhooks["StatusCallback"] and number["sms_method"] == "POST"
    assert number["capabilities"] == {"voice": True, "sms": True, "mms": True, "fax": False}
    assert number["uri"] == f"{ROOT}/IncomingPhoneNumbers/{number['sid']}.json"
    assert "+14155550101" not in twilio_standin.available

    listed = (await api.get(f"{ROOT}/IncomingPhoneNumbers.json", params={"PhoneNumber": "+14155550101"})).json()
    assert [n["sid"] for n in listed["incoming_phone_numbers"]] == [number["sid"]]
    assert listed["next_page_uri"] is None and listed["page"] == 0
    async with httpx.AsyncClient(base_url=twilio_standin.url, auth=(OTHER_ACCOUNT_SID, OTHER_AUTH_TOKEN)) as other:
        other_root = f"/2010-04-01/Accounts/{OTHER_ACCOUNT_SID}"
        assert (await other.get(f"{other_root}/IncomingPhoneNumbers.json")).json()["incoming_phone_numbers"] == []
        stolen = await other.get(f"{other_root}/IncomingPhoneNumbers/{number['sid']}.json")
        assert stolen.status_code == 404

    updated = await api.post(f"{ROOT}/IncomingPhoneNumbers/{number['sid']}.json", data={"VoiceUrl": "https://new/v"})
    assert updated.status_code == 200 and updated.json()["voice_url"] == "https://new/v"
    assert updated.json()["sms_url"] == webhooks["SmsUrl"]

    released = await api.delete(f"{ROOT}/IncomingPhoneNumbers/{number['sid']}.json")
    assert (released.status_code, released.content) == (204, b"")
    gone = await api.get(f"{ROOT}/IncomingPhoneNumbers/{number['sid']}.json")
    assert gone.status_code == 404
    assert gone.json() == error_body(
        404, 20404, f"The requested resource {ROOT}/IncomingPhoneNumbers/{number['sid']}.json was not found"
    )
    assert (await api.delete(f"{ROOT}/IncomingPhoneNumbers/{number['sid']}.json")).status_code == 404
    assert [n.phone_number for n in twilio_standin.released] == ["+14155550101"]


async def test_purchase_errors(api: httpx.AsyncClient) -> None:
    async def buy(**form: str) -> httpx.Response:
        return await api.post(f"{ROOT}/IncomingPhoneNumbers.json", data=form)

    unavailable = await buy(PhoneNumber="+14155559999")
    assert unavailable.status_code == 400 and unavailable.json()["code"] == 21422
    assert unavailable.json()["more_info"] == "https://www.twilio.com/docs/errors/21422"
    assert (await buy()).json()["code"] == 21421
    assert (await buy(PhoneNumber="0123")).json()["code"] == 21421
    assert (await buy(AreaCode="999")).json()["code"] == 21452
    by_area = await buy(AreaCode="212")
    assert by_area.status_code == 201 and by_area.json()["phone_number"] == "+12125550100"
    again = await buy(PhoneNumber="+12125550100")
    assert again.status_code == 400 and again.json()["code"] == 21422


async def test_call_create_redirect_hangup(twilio_standin: TwilioStandIn, api: httpx.AsyncClient) -> None:
    twilio_standin.add_incoming(TEST_ACCOUNT_SID, "+14155550100")
    form: dict[str, Any] = {
        "To": "+15105550111",
        "From": "+14155550100",
        "Url": "https://telephony.example/twiml/outbound",
        "StatusCallback": "https://telephony.example/webhooks/twilio/status",
        "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
        "Timeout": "25",
        "MachineDetection": "Enable",
    }
    created = await api.post(f"{ROOT}/Calls.json", data=form)
    assert created.status_code == 201, created.text
    call = created.json()
    assert re.fullmatch(r"CA[0-9a-f]{32}", call["sid"])
    assert (call["status"], call["direction"], call["to"], call["from"]) == (
        "queued", "outbound-api", "+15105550111", "+14155550100"
    )  # fmt: skip
    record = twilio_standin.calls[call["sid"]]
    assert record.status_callback_events == ["initiated", "ringing", "answered", "completed"]
    assert (record.timeout, record.machine_detection, record.url) == (25, "Enable", form["Url"])
    assert twilio_standin.requests_for("create_call")[0].multi["StatusCallbackEvent"] == form["StatusCallbackEvent"]

    twilio_standin.set_call_status(call["sid"], "in-progress")
    redirected = await api.post(f"{ROOT}/Calls/{call['sid']}.json", data={"Twiml": "<Response><Hangup/></Response>"})
    assert redirected.status_code == 200
    assert record.redirects == [{"Twiml": "<Response><Hangup/></Response>"}]
    hung_up = await api.post(f"{ROOT}/Calls/{call['sid']}.json", data={"Status": "completed"})
    assert hung_up.json()["status"] == "completed" and hung_up.json()["end_time"] is not None
    late = await api.post(f"{ROOT}/Calls/{call['sid']}.json", data={"Url": "https://x.example/t"})
    assert late.status_code == 400 and late.json()["code"] == 21220
    fetched = await api.get(f"{ROOT}/Calls/{call['sid']}.json")
    assert fetched.json()["status"] == "completed" and fetched.json()["duration"] == "0"

    second = (await api.post(f"{ROOT}/Calls.json", data={**form, "StatusCallbackEvent": []})).json()
    assert twilio_standin.calls[second["sid"]].status_callback_events == ["completed"]
    canceled = await api.post(f"{ROOT}/Calls/{second['sid']}.json", data={"Status": "canceled"})
    assert canceled.json()["status"] == "canceled"

    spoofed = await api.post(f"{ROOT}/Calls.json", data={**form, "From": "+14155550199"})
    assert spoofed.status_code == 400 and spoofed.json()["code"] == 21210
    assert (await api.post(f"{ROOT}/Calls.json", data={"From": "+14155550100"})).json()["code"] == 21201
    no_twiml = {k: v for k, v in form.items() if k != "Url"}
    assert (await api.post(f"{ROOT}/Calls.json", data=no_twiml)).json()["code"] == 21205


async def test_status_callbacks_are_signed(twilio_standin: TwilioStandIn, receiver: Receiver) -> None:
    twilio_standin.add_incoming(TEST_ACCOUNT_SID, "+14155550100")
    callback = f"{receiver.url}/webhooks/twilio/status?space=s1"
    async with httpx.AsyncClient(base_url=twilio_standin.url, auth=(TEST_ACCOUNT_SID, TEST_AUTH_TOKEN)) as api:
        created = await api.post(
            f"{ROOT}/Calls.json",
            data={
                "To": "+15105550111",
                "From": "+14155550100",
                "Twiml": "<Response/>",
                "StatusCallback": callback,
                "StatusCallbackEvent": ["ringing", "answered", "completed"],
            },
        )
    sid = created.json()["sid"]
    with pytest.raises(ValueError, match="initiated"):
        await twilio_standin.send_status_callback(sid, "initiated")
    assert (await twilio_standin.send_status_callback(sid, "ringing")).status_code == 200
    await twilio_standin.send_status_callback(sid, "in-progress")
    await twilio_standin.send_status_callback(sid, "completed", duration=42)

    assert [r.params["CallStatus"] for r in receiver.received] == ["ringing", "in-progress", "completed"]
    assert [r.params["SequenceNumber"] for r in receiver.received] == ["0", "1", "2"]
    for received in receiver.received:
        assert received.url == callback
        assert_signed(received, TEST_AUTH_TOKEN)
        params = received.params
        assert (params["CallSid"], params["AccountSid"], params["ApiVersion"]) == (
            sid,
            TEST_ACCOUNT_SID,
            "2010-04-01",
        )
        assert (params["From"], params["To"], params["Direction"]) == (
            "+14155550100",
            "+15105550111",
            "outbound-api",
        )
        assert parsedate_to_datetime(params["Timestamp"]).tzinfo is not None
    assert "CallDuration" not in receiver.received[0].params
    assert receiver.received[-1].params["CallDuration"] == "42"
    assert twilio_standin.calls[sid].status == "completed"


async def test_post_webhook_and_inbound_traffic(twilio_standin: TwilioStandIn, receiver: Receiver) -> None:
    url = f"{receiver.url}/webhooks/twilio/voice"
    response = await twilio_standin.post_webhook(url, {"CallSid": "CA" + "a" * 32, "Digits": "1#"}, "tok")
    assert response.status_code == 200 and "<Say>" in response.text
    assert_signed(receiver.received[-1], "tok")
    assert receiver.received[-1].headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    await twilio_standin.post_webhook(url, {"A": "1"}, "tok", method="GET")
    got = receiver.received[-1]
    assert got.method == "GET" and got.url == f"{url}?A=1" and got.params == {}
    assert_signed(got, "tok")

    number = twilio_standin.add_incoming(
        TEST_ACCOUNT_SID, "+14155550102", VoiceUrl=url, SmsUrl=f"{receiver.url}/webhooks/twilio/sms",
        StatusCallback=f"{receiver.url}/webhooks/twilio/status",
    )  # fmt: skip
    call, answer = await twilio_standin.incoming_call("+14155550102", "+15105550111")
    assert answer.status_code == 200
    voice = receiver.received[-1]
    assert_signed(voice, TEST_AUTH_TOKEN)
    assert (voice.params["CallSid"], voice.params["Direction"], voice.params["CallStatus"]) == (
        call.sid, "inbound", "ringing"
    )  # fmt: skip
    assert (voice.params["To"], voice.params["ToState"], call.phone_number_sid) == (
        "+14155550102",
        "CA",
        number.sid,
    )
    await twilio_standin.send_status_callback(call.sid, "completed")
    assert receiver.received[-1].params["CallStatus"] == "completed"

    message, _ = await twilio_standin.incoming_sms("+14155550102", "+15105550111", "hello there")
    sms = receiver.received[-1]
    assert_signed(sms, TEST_AUTH_TOKEN)
    assert (sms.params["Body"], sms.params["MessageSid"], sms.params["NumMedia"]) == (
        "hello there",
        message.sid,
        "0",
    )


async def test_outbound_sms_and_status(
    twilio_standin: TwilioStandIn, api: httpx.AsyncClient, receiver: Receiver
) -> None:
    twilio_standin.add_incoming(TEST_ACCOUNT_SID, "+14155550100")
    sent = await api.post(
        f"{ROOT}/Messages.json",
        data={
            "To": "+15105550111",
            "From": "+14155550100",
            "Body": "hi",
            "StatusCallback": f"{receiver.url}/s",
        },
    )
    assert sent.status_code == 201 and sent.json()["status"] == "queued"
    assert re.fullmatch(r"SM[0-9a-f]{32}", sent.json()["sid"])
    await twilio_standin.send_message_status(sent.json()["sid"], "delivered")
    assert receiver.received[-1].params["MessageStatus"] == "delivered"
    assert_signed(receiver.received[-1], TEST_AUTH_TOKEN)
    assert (await api.get(f"{ROOT}/Messages/{sent.json()['sid']}.json")).json()["status"] == "delivered"
    foreign = await api.post(f"{ROOT}/Messages.json", data={"To": "+15105550111", "From": "+1999", "Body": "x"})
    assert foreign.json()["code"] == 21606


async def test_failure_injection(twilio_standin: TwilioStandIn, api: httpx.AsyncClient) -> None:
    twilio_standin.fail("buy_number", 503, 20503, "Service is unavailable, please try again")
    failed = await api.post(f"{ROOT}/IncomingPhoneNumbers.json", data={"PhoneNumber": "+14155550100"})
    assert failed.status_code == 503
    assert failed.json() == error_body(503, 20503, "Service is unavailable, please try again")
    assert "+14155550100" in twilio_standin.available
    ok = await api.post(f"{ROOT}/IncomingPhoneNumbers.json", data={"PhoneNumber": "+14155550100"})
    assert ok.status_code == 201

    # The answer is lost but the purchase happened: a retry must find the number it owns.
    twilio_standin.fail("/IncomingPhoneNumbers.json", 500, 20500, "lost", method="POST", after=True)
    lost = await api.post(f"{ROOT}/IncomingPhoneNumbers.json", data={"PhoneNumber": "+14155550101"})
    assert lost.status_code == 500 and "+14155550101" not in twilio_standin.available
    assert len(twilio_standin.numbers_of(TEST_ACCOUNT_SID)) == 2

    twilio_standin.fail("search_available", 429, 20429, "Too Many Requests", times=None, headers={"Retry-After": "1"})
    for _ in range(3):
        limited = await api.get(f"{ROOT}/AvailablePhoneNumbers/US/Local.json")
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
    twilio_standin.clear_failures()
    assert (await api.get(f"{ROOT}/AvailablePhoneNumbers/US/Local.json")).status_code == 200
    assert [r.status for r in twilio_standin.requests_for("buy_number")] == [503, 201, 500]


async def test_our_carrier_client(twilio_standin: TwilioStandIn) -> None:
    async with httpx.AsyncClient() as http:
        twilio = TwilioRest(http, twilio_standin.url, TEST_ACCOUNT_SID, TEST_AUTH_TOKEN)
        candidates = await twilio.available_local_numbers("US", "415")
        assert candidates[0] == "+14155550100"
        bought = await twilio.buy_number(candidates[0], {"VoiceUrl": "https://t.example/v"})
        assert (await twilio.find_incoming_number(candidates[0]) or {})["sid"] == bought["sid"]
        await twilio.release_number(bought["sid"])
        assert await twilio.find_incoming_number(candidates[0]) is None
        with pytest.raises(TwilioError) as raised:
            await twilio.release_number(bought["sid"])
        assert (raised.value.status, raised.value.code) == (404, 20404)
        intruder = TwilioRest(http, twilio_standin.url, TEST_ACCOUNT_SID, "bad-token")
        with pytest.raises(TwilioError) as denied:
            await intruder.available_local_numbers("US", None)
        assert (denied.value.status, denied.value.code) == (401, 20003)


def official_client(standin: TwilioStandIn, account_sid: str, token: str, **kwargs: Any) -> Client:
    """The official client, pointed at the stand-in through its public ``Domain.base_url``."""
    client = Client(account_sid, token, **kwargs)
    client.api.base_url = standin.url
    return client


@pytest.mark.filterwarnings(  # the twilio package's own use of aiohttp's deprecated BasicAuth
    "ignore:BasicAuth is deprecated:DeprecationWarning", "ignore:The 'auth' parameter:DeprecationWarning"
)
async def test_official_async_client(twilio_standin: TwilioStandIn, receiver: Receiver) -> None:
    http_client = AsyncTwilioHttpClient()
    try:
        client = official_client(twilio_standin, TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, http_client=http_client)
        account = client.api.v2010.account
        found = await account.available_phone_numbers("US").local.list_async(area_code=415, limit=2)
        assert [n.phone_number for n in found] == ["+14155550100", "+14155550101"]
        assert found[0].capabilities == {"voice": True, "SMS": True, "MMS": True}

        number = await account.incoming_phone_numbers.create_async(
            phone_number=found[0].phone_number,
            voice_url=f"{receiver.url}/voice",
            sms_url=f"{receiver.url}/sms",
        )
        assert number.sid.startswith("PN") and number.voice_url == f"{receiver.url}/voice"
        assert number.date_created is not None and number.date_created.year >= 2024
        listed = await account.incoming_phone_numbers.list_async(phone_number=found[0].phone_number)
        assert [n.sid for n in listed] == [number.sid]

        call = await account.calls.create_async(
            to="+15105550111", from_=number.phone_number, url=f"{receiver.url}/twiml",
            status_callback=f"{receiver.url}/status", status_callback_event=["initiated", "completed"],
        )  # fmt: skip
        assert (call.status, call.direction) == ("queued", "outbound-api")
        assert twilio_standin.calls[call.sid].status_callback_events == ["initiated", "completed"]
        hung_up = await account.calls(call.sid).update_async(status="canceled")
        assert hung_up.status == "canceled"

        assert await account.incoming_phone_numbers(number.sid).delete_async() is True
        with pytest.raises(TwilioRestException) as missing:
            await account.incoming_phone_numbers(number.sid).fetch_async()
        assert (missing.value.status, missing.value.code) == (404, 20404)
        with pytest.raises(TwilioRestException) as unavailable:
            await account.incoming_phone_numbers.create_async(phone_number="+14155559999")
        assert (unavailable.value.status, unavailable.value.code) == (400, 21422)

        bad = official_client(twilio_standin, TEST_ACCOUNT_SID, "bad-token", http_client=http_client)
        with pytest.raises(TwilioRestException) as denied:
            await bad.api.v2010.account.incoming_phone_numbers.create_async(area_code="415")
        assert (denied.value.status, denied.value.code) == (401, 20003)
    finally:
        await http_client.close()


async def test_official_sync_client(twilio_standin: TwilioStandIn) -> None:
    """The default (requests-based) client works too, run off the event loop serving the stand-in."""
    client = official_client(twilio_standin, TEST_ACCOUNT_SID, TEST_AUTH_TOKEN)

    def buy() -> str:
        number = client.api.v2010.account.incoming_phone_numbers.create(area_code="312")
        sid: str = number.sid
        return sid

    sid = await asyncio.to_thread(buy)
    assert twilio_standin.incoming[sid].phone_number == "+13125550100"
