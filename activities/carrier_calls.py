"""Activities placing and ending calls through the carrier's REST API (media-stream calls)."""

from __future__ import annotations

import logging
import time
import xml.etree.ElementTree as ET
from urllib.parse import urlencode

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.carrier_clients import CarrierClients
from activities.dial_pacing import DialSlots
from activities.twilio_rest import TwilioError, TwilioRest
from models.amd import TWILIO_MACHINE_DETECTION
from models.call_contract import STREAM_WORKFLOW_PARAMETER, media_stream_twiml, stream_ended_url
from models.carrier_calls import (
    CARRIER_CALL_REFUSED,
    CarrierCallEnded,
    CarrierCallPlaced,
    CarrierCallRedirected,
    EndCarrierCallInput,
    PlaceCarrierCallInput,
    ReconnectStreamInput,
    RedirectCarrierCallInput,
    StreamReconnected,
)
from models.dial_pacing import ROUTE_CARRIER_ACCOUNT, dial_route

log = logging.getLogger(__name__)

STATUS_EVENTS = ("initiated", "ringing", "answered", "completed")


class CarrierCallActivities:
    def __init__(self, carriers: CarrierClients, dial_slots: DialSlots | None = None) -> None:
        self._carriers = carriers
        self._dial_slots = dial_slots  # None: no account's calls-per-second limit is kept (no Temporal client)

    async def _client(self, space_id: str, phone_number_id: str) -> TwilioRest:
        twilio = await self._carriers.for_number(space_id, phone_number_id)
        if twilio is None:
            raise ApplicationError("the number has no carrier account", type=CARRIER_CALL_REFUSED, non_retryable=True)
        return twilio

    def _url(self, path: str, request: PlaceCarrierCallInput) -> str:
        # The carrier's requests name the call's workflow; the signature covers this query string.
        query = urlencode({STREAM_WORKFLOW_PARAMETER: request.workflow_id})
        return f"{self._carriers.settings.public_url.rstrip('/')}{path}?{query}"

    @activity.defn
    async def place_carrier_call(self, request: PlaceCarrierCallInput) -> CarrierCallPlaced:
        """Ask the carrier to dial; its webhooks then answer with a media stream and report progress."""
        twilio = await self._client(request.space_id, request.phone_number_id)
        params = [
            ("To", request.to_number),
            ("From", request.from_number),
            ("Url", self._url("/webhooks/twilio/voice", request)),
            ("Method", "POST"),
            ("StatusCallback", self._url("/webhooks/twilio/status", request)),
            ("StatusCallbackMethod", "POST"),
            ("Timeout", str(request.ringing_timeout_seconds)),
            *(("StatusCallbackEvent", event) for event in STATUS_EVENTS),
        ]
        if request.amd:  # the carrier's AMD, asynchronous: the call connects at once, the verdict follows
            params += [
                ("MachineDetection", TWILIO_MACHINE_DETECTION),
                ("AsyncAmd", "true"),
                ("AsyncAmdStatusCallback", self._url("/webhooks/twilio/amd", request)),
                ("AsyncAmdStatusCallbackMethod", "POST"),
            ]
        await self._turn(request)
        try:
            created = await twilio.create_call(params)
        except TwilioError as exc:
            if exc.retryable:
                raise
            raise ApplicationError(
                f"carrier refused the call: {exc.message}",
                {"code": exc.code},
                type=CARRIER_CALL_REFUSED,
                non_retryable=True,
            ) from exc
        log.info("carrier call placed", extra={"call_id": request.call_id, "carrier_call_id": created["sid"]})
        return CarrierCallPlaced(carrier_call_id=created["sid"])

    async def _turn(self, request: PlaceCarrierCallInput) -> None:
        """The account's calls-per-second limit, kept where the carrier counts it (``models/dial_pacing.py``)."""
        if self._dial_slots is None:
            return
        limited = await self._carriers.account_cps(request.space_id, request.phone_number_id)
        if limited is not None:
            account_id, cps = limited
            route = dial_route(ROUTE_CARRIER_ACCOUNT, account_id)
            await self._dial_slots.carrier_turn(request.space_id, route, cps, request.call_id)

    @activity.defn
    async def redirect_carrier_call(self, request: RedirectCarrierCallInput) -> CarrierCallRedirected:
        """Cold transfer of a media-stream call: the carrier dials the target and bridges the caller."""
        twilio = await self._client(request.space_id, request.phone_number_id)
        response = ET.Element("Response")
        dial = ET.SubElement(response, "Dial")
        if request.target.startswith(("sip:", "sips:")):
            ET.SubElement(dial, "Sip").text = request.target
        else:
            ET.SubElement(dial, "Number").text = request.target.removeprefix("tel:")
        try:
            await twilio.redirect_call(request.carrier_call_id, ET.tostring(response, encoding="unicode"))
        except TwilioError as exc:
            if exc.retryable:
                raise
            return CarrierCallRedirected(ok=False, error=f"carrier refused the transfer: {exc.message}")
        return CarrierCallRedirected(ok=True)

    @activity.defn
    async def reconnect_stream(self, request: ReconnectStreamInput) -> StreamReconnected:
        """Redirect the live carrier leg to a new media stream (TwiML ``<Connect><Stream>`` again): the process that
        carried its agent died, another one takes the call where it was."""
        twilio = await self._client(request.space_id, request.phone_number_id)
        settings = self._carriers.settings
        action = stream_ended_url(settings.public_url, request.workflow_id, request.stream_no)
        twiml = media_stream_twiml(
            settings.stream_public_url, self._carriers.box, request.workflow_id, time.time(), action_url=action
        )
        try:
            await twilio.redirect_call(request.carrier_call_id, twiml)
        except TwilioError as exc:
            if exc.retryable:
                raise
            return StreamReconnected(ok=False, error=f"carrier refused the redirect: {exc.message}")
        log.info("call redirected to a new media stream", extra={"workflow_id": request.workflow_id})
        return StreamReconnected(ok=True)

    @activity.defn
    async def end_carrier_call(self, request: EndCarrierCallInput) -> CarrierCallEnded:
        """Hang up the carrier's leg (we ended the call: operator, agent or a timer)."""
        twilio = await self._client(request.space_id, request.phone_number_id)
        try:
            await twilio.end_call(request.carrier_call_id)
        except TwilioError as exc:
            if exc.retryable:
                raise
            return CarrierCallEnded(ended=False)  # already over (or unknown): nothing left to end
        return CarrierCallEnded(ended=True)
