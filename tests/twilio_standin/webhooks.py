"""The carrier's side of webhooks: requests signed exactly as Twilio signs them."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
from twilio.request_validator import RequestValidator

from tests.twilio_standin.resources import (
    API_VERSION,
    TERMINAL_CALL_STATUSES,
    IncomingNumber,
    new_sid,
    now,
    rfc2822,
)
from tests.twilio_standin.traffic import CallRecord, MessageRecord

WEBHOOK_TIMEOUT = 15.0  # Twilio waits 15 s for a webhook's answer
_EVENT_OF_STATUS = {
    "queued": "initiated",
    "initiated": "initiated",
    "ringing": "ringing",
    "in-progress": "answered",
}


def twilio_signature(url: str, params: dict[str, str], auth_token: str) -> str:
    """``X-Twilio-Signature`` for a request to ``url`` with these POST parameters (official algorithm)."""
    signature: str = RequestValidator(auth_token).compute_signature(url, params)
    return signature


def _country_of(number: str) -> str:
    return "US" if number.startswith("+1") else ""


@dataclass
class SentWebhook:
    """One webhook request the stand-in sent, and the answer it got."""

    url: str
    method: str
    params: dict[str, str]
    signature: str
    status: int | None = None
    body: str | None = None


class WebhookSender:
    """Mixin of ``TwilioStandIn``: posts signed webhooks and keeps what it sent in ``webhooks``."""

    accounts: dict[str, str]
    incoming: dict[str, IncomingNumber]
    calls: dict[str, CallRecord]
    messages: dict[str, MessageRecord]
    webhooks: list[SentWebhook]
    amd_answers: dict[str, tuple[str, int]]  # callee -> (AnsweredBy, MachineDetectionDuration ms)
    webhook_transport: httpx.AsyncBaseTransport | None

    def _token(self, account_sid: str) -> str:
        try:
            return self.accounts[account_sid]
        except KeyError:
            raise ValueError(f"unknown account {account_sid}") from None

    async def post_webhook(
        self,
        url: str,
        params: dict[str, str],
        auth_token: str,
        *,
        method: str = "POST",
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Send ``params`` to ``url`` as Twilio does (form body for POST, query for GET), signed."""
        method = method.upper()
        if method == "GET":
            target = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}" if params else url
            signature = twilio_signature(target, {}, auth_token)
        else:
            target = url
            signature = twilio_signature(url, params, auth_token)
        sent = SentWebhook(url=url, method=method, params=dict(params), signature=signature)
        self.webhooks.append(sent)
        request_headers = {
            "X-Twilio-Signature": signature,
            "User-Agent": "TwilioProxy/1.1",
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
            **(headers or {}),
        }
        async with httpx.AsyncClient(transport=self.webhook_transport, timeout=WEBHOOK_TIMEOUT) as client:
            if method == "GET":
                response = await client.get(target, headers=request_headers)
            else:
                request_headers["Content-Type"] = "application/x-www-form-urlencoded; charset=UTF-8"
                response = await client.post(target, data=params, headers=request_headers)
        sent.status, sent.body = response.status_code, response.text
        return response

    async def send_status_callback(
        self,
        call_sid: str,
        status: str,
        *,
        force: bool = False,
        duration: int | None = None,
        extra: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Move the call to ``status`` and post Twilio's status callback to the call's StatusCallback.

        Twilio sends only the events the call subscribed to (``StatusCallbackEvent``, default
        ``completed``): asking for another raises ``ValueError`` unless ``force`` is set.
        """
        call = self.calls[call_sid]
        event = "completed" if status in TERMINAL_CALL_STATUSES else _EVENT_OF_STATUS.get(status)
        if event is None:
            raise ValueError(f"not a call status: {status}")
        if not call.status_callback:
            raise ValueError(f"call {call_sid} has no StatusCallback")
        if event not in call.status_callback_events and not force:
            raise ValueError(f"Twilio would not send {event!r}: the call subscribed to {call.status_callback_events}")
        call.set_status(status, duration)
        params = {
            "AccountSid": call.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": call.sid,
            "CallStatus": status,
            "CallbackSource": "call-progress-events",
            "Called": call.to,
            "Caller": call.from_,
            "Direction": call.direction,
            "From": call.from_,
            "SequenceNumber": str(call.sequence_number),
            "Timestamp": rfc2822(now()) or "",
            "To": call.to,
        }
        if status in TERMINAL_CALL_STATUSES:
            params["CallDuration"] = str(call.duration or 0)
        params.update(extra or {})
        call.sequence_number += 1
        return await self.post_webhook(
            call.status_callback,
            params,
            self._token(call.account_sid),
            method=call.status_callback_method,
        )

    async def send_amd_callback(
        self, call_sid: str, answered_by: str | None = None, duration_ms: int | None = None
    ) -> httpx.Response:
        """Post the call's asynchronous AMD result to its ``AsyncAmdStatusCallback`` (``AsyncAmd=true``), as
        Twilio does once detection ends: ``answered_by``/``duration_ms`` default to the answer configured for the
        callee in ``amd_answers`` (else a person, after 1.8 s)."""
        call = self.calls[call_sid]
        if not (call.async_amd and call.async_amd_status_callback):
            raise ValueError(f"call {call_sid} did not ask for asynchronous AMD")
        configured = self.amd_answers.get(call.to, ("human", 1800))
        verdict = answered_by or configured[0]
        call.answered_by = verdict
        params = {
            "AccountSid": call.account_sid,
            "AnsweredBy": verdict,
            "CallSid": call.sid,
            "MachineDetectionDuration": str(configured[1] if duration_ms is None else duration_ms),
        }
        return await self.post_webhook(
            call.async_amd_status_callback,
            params,
            self._token(call.account_sid),
            method=call.async_amd_status_callback_method,
        )

    def _number(self, phone_number: str) -> IncomingNumber:
        for number in self.incoming.values():
            if number.phone_number == phone_number:
                return number
        raise LookupError(f"no account owns {phone_number}")

    def _place_params(self, number: IncomingNumber, sender: str) -> dict[str, str]:
        return {
            "AccountSid": number.account_sid,
            "ApiVersion": API_VERSION,
            "From": sender,
            "FromCity": "",
            "FromCountry": _country_of(sender),
            "FromState": "",
            "FromZip": "",
            "To": number.phone_number,
            "ToCity": (number.locality or "").upper(),
            "ToCountry": number.iso_country,
            "ToState": number.region or "",
            "ToZip": number.postal_code or "",
        }

    async def incoming_call(
        self, to: str, from_: str, *, extra: dict[str, str] | None = None
    ) -> tuple[CallRecord, httpx.Response]:
        """A caller dials ``to`` (a number some account owns): Twilio posts to the number's VoiceUrl."""
        number = self._number(to)
        if not number.voice_url:
            raise ValueError(f"{to} has no VoiceUrl")
        call = CallRecord(
            sid=new_sid("CA"),
            account_sid=number.account_sid,
            to=to,
            from_=from_,
            direction="inbound",
            status="ringing",
            url=number.voice_url,
            method=number.voice_method,
            status_callback=number.status_callback,
            status_callback_method=number.status_callback_method,
            phone_number_sid=number.sid,
        )
        self.calls[call.sid] = call
        params = self._place_params(number, from_)
        params.update(
            {
                "CallSid": call.sid,
                "CallStatus": "ringing",
                "Called": to,
                "CalledCity": params["ToCity"],
                "CalledCountry": params["ToCountry"],
                "CalledState": params["ToState"],
                "CalledZip": params["ToZip"],
                "Caller": from_,
                "CallerCity": "",
                "CallerCountry": params["FromCountry"],
                "CallerState": "",
                "CallerZip": "",
                "Direction": "inbound",
            }
        )
        params.update(extra or {})
        response = await self.post_webhook(
            number.voice_url, params, self._token(number.account_sid), method=number.voice_method
        )
        return call, response

    async def incoming_sms(
        self,
        to: str,
        from_: str,
        body: str,
        *,
        media_urls: Iterable[str] = (),
        extra: dict[str, str] | None = None,
    ) -> tuple[MessageRecord, httpx.Response]:
        """A message arrives for ``to``: Twilio posts to the number's SmsUrl."""
        number = self._number(to)
        if not number.sms_url:
            raise ValueError(f"{to} has no SmsUrl")
        media = list(media_urls)
        message = MessageRecord(
            sid=new_sid("MM" if media else "SM"),
            account_sid=number.account_sid,
            to=to,
            from_=from_,
            body=body,
            direction="inbound",
            status="received",
            media_urls=media,
        )
        self.messages[message.sid] = message
        params = self._place_params(number, from_)
        params.update(
            {
                "Body": body,
                "MessageSid": message.sid,
                "NumMedia": str(len(media)),
                "NumSegments": message.to_json()["num_segments"],
                "SmsMessageSid": message.sid,
                "SmsSid": message.sid,
                "SmsStatus": "received",
            }
        )
        for index, media_url in enumerate(media):
            params[f"MediaUrl{index}"] = media_url
            params[f"MediaContentType{index}"] = "image/jpeg"
        params.update(extra or {})
        response = await self.post_webhook(
            number.sms_url, params, self._token(number.account_sid), method=number.sms_method
        )
        return message, response

    async def send_message_status(
        self, message_sid: str, status: str, *, error_code: int | None = None
    ) -> httpx.Response:
        """Move an outbound message to ``status`` (sent, delivered, failed…) and post its callback."""
        message = self.messages[message_sid]
        if not message.status_callback:
            raise ValueError(f"message {message_sid} has no StatusCallback")
        message.status, message.error_code, message.date_updated = status, error_code, now()
        if status in ("sent", "delivered") and message.date_sent is None:
            message.date_sent = message.date_updated
        params = {
            "AccountSid": message.account_sid,
            "ApiVersion": API_VERSION,
            "From": message.from_ or "",
            "MessageSid": message.sid,
            "MessageStatus": status,
            "SmsSid": message.sid,
            "SmsStatus": status,
            "To": message.to,
        }
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        return await self.post_webhook(message.status_callback, params, self._token(message.account_sid))
