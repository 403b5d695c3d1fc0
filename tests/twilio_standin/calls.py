"""Handlers for ``Calls`` and ``Messages``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from tests.twilio_standin.dialing import start_script
from tests.twilio_standin.numbers import account_of, form_of, page_body
from tests.twilio_standin.resources import (
    E164,
    FORM_MULTI,
    TwilioFault,
    new_sid,
    not_found,
)
from tests.twilio_standin.traffic import CallRecord, MessageRecord

if TYPE_CHECKING:
    from tests.twilio_standin.server import TwilioStandIn

CALLBACK_EVENTS = frozenset({"initiated", "ringing", "answered", "completed"})
MACHINE_DETECTION = frozenset({"Enable", "DetectMessageEnd"})


def _amd_options(form: dict[str, str]) -> tuple[str | None, bool, str | None, str]:
    """``MachineDetection``, ``AsyncAmd``, ``AsyncAmdStatusCallback`` and its method, checked as Twilio does."""
    detection = form.get("MachineDetection")
    if detection is not None and detection not in MACHINE_DETECTION:
        raise TwilioFault(400, 21220, f"Invalid MachineDetection: {detection}. Use Enable or DetectMessageEnd.")
    async_amd = form.get("AsyncAmd", "false").lower()
    if async_amd not in ("true", "false"):
        raise TwilioFault(400, 21220, f"Invalid AsyncAmd: {form['AsyncAmd']}")
    callback = form.get("AsyncAmdStatusCallback")
    method = form.get("AsyncAmdStatusCallbackMethod", "POST").upper()
    if method not in ("GET", "POST"):
        raise TwilioFault(400, 21220, f"Invalid AsyncAmdStatusCallbackMethod: {method}")
    return detection, async_amd == "true" and detection is not None, callback, method


def _multi(request: web.Request) -> dict[str, list[str]]:
    return request[FORM_MULTI]


def _check_from(st: TwilioStandIn, account_sid: str, sender: str) -> str | None:
    """The owning IncomingPhoneNumber's sid; raises when the number is neither owned nor verified."""
    for number in st.incoming.values():
        if number.account_sid == account_sid and number.phone_number == sender:
            return number.sid
    if sender in st.verified_caller_ids.get(account_sid, set()):
        return None
    raise TwilioFault(
        400,
        21210,
        f"The source phone number provided, {sender}, is not yet verified for your account. "
        "You may only make calls from phone numbers that you've verified or purchased from Twilio.",
    )


async def create_call(st: TwilioStandIn, request: web.Request) -> web.Response:
    account_sid = account_of(request)
    form, multi = form_of(request), _multi(request)
    to, sender = form.get("To"), form.get("From")
    if not to:
        raise TwilioFault(400, 21201, "No 'To' number is specified")
    if not sender:
        raise TwilioFault(400, 21213, "No 'From' number is specified")
    if not (E164.match(to) or to.startswith(("sip:", "client:"))):
        raise TwilioFault(400, 21211, f"Invalid 'To' Phone Number: {to}")
    if not (E164.match(sender) or sender.startswith("client:")):
        raise TwilioFault(400, 21212, f"Invalid From Number (caller ID): {sender}")
    if not (form.get("Url") or form.get("Twiml") or form.get("ApplicationSid")):
        raise TwilioFault(400, 21205, "Url parameter is required. Please provide a Url, Twiml or ApplicationSid.")
    number_sid = _check_from(st, account_sid, sender) if E164.match(sender) else None
    events = [e.strip().lower() for value in multi.get("StatusCallbackEvent", []) for e in value.split(" ")]
    events = [e for e in events if e]
    if bad := [e for e in events if e not in CALLBACK_EVENTS]:
        raise TwilioFault(400, 21626, f"Invalid StatusCallbackEvent: {bad[0]}")
    try:
        timeout = int(form.get("Timeout", "60"))
    except ValueError:
        raise TwilioFault(400, 21216, f"Invalid Timeout: {form['Timeout']}") from None
    detection, async_amd, amd_callback, amd_method = _amd_options(form)
    call = CallRecord(
        sid=new_sid("CA"),
        account_sid=account_sid,
        to=to,
        from_=sender,
        url=form.get("Url"),
        method=form.get("Method", "POST").upper(),
        twiml=form.get("Twiml"),
        application_sid=form.get("ApplicationSid"),
        status_callback=form.get("StatusCallback"),
        status_callback_method=form.get("StatusCallbackMethod", "POST").upper(),
        status_callback_events=events or ["completed"],
        timeout=timeout,
        machine_detection=detection,
        async_amd=async_amd,
        async_amd_status_callback=amd_callback,
        async_amd_status_callback_method=amd_method,
        phone_number_sid=number_sid,
        params={k: list(v) for k, v in multi.items()},
    )
    st.calls[call.sid] = call
    start_script(st, call)
    return web.json_response(call.to_json(), status=201)


def _call(st: TwilioStandIn, request: web.Request) -> CallRecord:
    call = st.calls.get(request.match_info["sid"])
    if call is None or call.account_sid != account_of(request):
        raise not_found(request.path)
    return call


async def list_calls(st: TwilioStandIn, request: web.Request) -> web.Response:
    account_sid = account_of(request)
    calls = [c for c in st.calls.values() if c.account_sid == account_sid]
    for param, attr in (("To", "to"), ("From", "from_"), ("Status", "status")):
        if (wanted := request.query.get(param)) is not None:
            calls = [c for c in calls if getattr(c, attr) == wanted]
    calls.sort(key=lambda c: c.date_created, reverse=True)
    return web.json_response(page_body(request, "calls", [c.to_json() for c in calls]))


async def get_call(st: TwilioStandIn, request: web.Request) -> web.Response:
    return web.json_response(_call(st, request).to_json())


async def update_call(st: TwilioStandIn, request: web.Request) -> web.Response:
    """Hang up (``Status=completed|canceled``) or redirect (``Url``/``Twiml``) a call."""
    call = _call(st, request)
    form = form_of(request)
    status = form.get("Status")
    if status is not None and status not in ("completed", "canceled"):
        raise TwilioFault(400, 21218, f"Invalid Status: {status}. Use completed or canceled.")
    if "Url" in form or "Twiml" in form:
        if not call.active:
            raise TwilioFault(400, 21220, "Call is not in-progress. Cannot redirect.")
        redirect: dict[str, str] = {k: form[k] for k in ("Url", "Method", "Twiml") if k in form}
        call.redirects.append(redirect)
        call.url, call.twiml = form.get("Url"), form.get("Twiml")
        call.method = form.get("Method", call.method).upper()
        if "Twiml" in form:
            st.follow_redirect(call, form["Twiml"])
    if "StatusCallback" in form:
        call.status_callback = form["StatusCallback"]
        call.status_callback_method = form.get("StatusCallbackMethod", call.status_callback_method).upper()
    if status is not None and call.active:
        answered = call.status == "in-progress"
        if status == "completed":
            call.set_status("completed" if answered else "canceled")
        elif not answered:  # canceling a call in progress has no effect
            call.set_status("canceled")
    return web.json_response(call.to_json())


async def create_message(st: TwilioStandIn, request: web.Request) -> web.Response:
    account_sid = account_of(request)
    form, multi = form_of(request), _multi(request)
    to, sender, service = form.get("To"), form.get("From"), form.get("MessagingServiceSid")
    media = multi.get("MediaUrl", [])
    if not to:
        raise TwilioFault(400, 21604, "A 'To' phone number is required.")
    if not E164.match(to):
        raise TwilioFault(400, 21211, f"The 'To' number {to} is not a valid phone number.")
    if not sender and not service:
        raise TwilioFault(400, 21603, "A 'From' phone number is required.")
    if not form.get("Body") and not media:
        raise TwilioFault(400, 21602, "Message body is required.")
    if sender and not any(
        n.account_sid == account_sid and n.phone_number == sender and n.capabilities.get("sms")
        for n in st.incoming.values()
    ):
        raise TwilioFault(
            400,
            21606,
            f"The From phone number {sender} is not a valid, SMS-capable inbound phone number "
            "or short code for your account.",
        )
    message = MessageRecord(
        sid=new_sid("MM" if media else "SM"),
        account_sid=account_sid,
        to=to,
        from_=sender,
        body=form.get("Body", ""),
        status="accepted" if service and not sender else "queued",
        media_urls=list(media),
        messaging_service_sid=service,
        status_callback=form.get("StatusCallback"),
    )
    st.messages[message.sid] = message
    return web.json_response(message.to_json(), status=201)


async def list_messages(st: TwilioStandIn, request: web.Request) -> web.Response:
    """The account's messages, newest first, filtered by ``To``/``From`` as Twilio does."""
    account_sid = account_of(request)
    found = [msg for msg in st.messages.values() if msg.account_sid == account_sid]
    for param, attr in (("To", "to"), ("From", "from_")):
        if (wanted := request.query.get(param)) is not None:
            found = [msg for msg in found if getattr(msg, attr) == wanted]
    found.sort(key=lambda msg: msg.date_created, reverse=True)
    return web.json_response(page_body(request, "messages", [msg.to_json() for msg in found]))


async def get_message(st: TwilioStandIn, request: web.Request) -> web.Response:
    message = st.messages.get(request.match_info["sid"])
    if message is None or message.account_sid != account_of(request):
        raise not_found(request.path)
    return web.json_response(message.to_json())
