"""Activities buying and releasing numbers through a space's carrier account."""

from __future__ import annotations

import logging

from sqlalchemy import select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.carrier_clients import CarrierClients
from activities.twilio_rest import TwilioError, TwilioRest
from models.schemas.phone_numbers import Routing
from models.sms import WEBHOOK_SMS_PATH
from models.tables import PhoneNumber
from models.workflow_io import (
    CARRIER_AUTH_FAILED,
    CARRIER_REJECTED,
    PurchasedNumber,
    PurchaseNumberInput,
    PurchaseNumberResult,
    ReleaseNumberInput,
)

log = logging.getLogger(__name__)


def carrier_failure(exc: TwilioError) -> Exception:
    """Carrier errors a retry cannot fix fail the activity for good; the rest are retried."""
    if exc.retryable:
        return exc
    kind = CARRIER_AUTH_FAILED if exc.status in (401, 403) else CARRIER_REJECTED
    return ApplicationError(exc.message, {"status": exc.status, "code": exc.code}, type=kind, non_retryable=True)


class CarrierNumberActivities:
    def __init__(self, carriers: CarrierClients) -> None:
        self._carriers = carriers
        self._sessions = carriers.sessions
        self._settings = carriers.settings

    async def _client(self, space_id: str, carrier_account_id: str) -> TwilioRest:
        twilio = await self._carriers.for_account(space_id, carrier_account_id)
        if twilio is None:
            raise ApplicationError("carrier account not found", type=CARRIER_REJECTED, non_retryable=True)
        return twilio

    def _webhooks(self) -> dict[str, str]:
        base = self._settings.public_url.rstrip("/")
        return {
            "VoiceUrl": f"{base}/webhooks/twilio/voice",
            "VoiceMethod": "POST",
            "StatusCallback": f"{base}/webhooks/twilio/status",
            "StatusCallbackMethod": "POST",
            "SmsUrl": f"{base}{WEBHOOK_SMS_PATH}",
            "SmsMethod": "POST",
        }

    @activity.defn
    async def buy_number(self, request: PurchaseNumberInput) -> PurchasedNumber:
        twilio = await self._client(request.space_id, request.carrier_account_id)
        try:
            e164 = request.e164
            if e164 is None:
                candidates = await twilio.available_local_numbers(request.iso_country, request.area_code)
                if not candidates:
                    raise ApplicationError(
                        f"no numbers available in area code {request.area_code}",
                        type=CARRIER_REJECTED,
                        non_retryable=True,
                    )
                e164 = candidates[0]
            if activity.info().attempt > 1:
                # An earlier attempt may have bought it before its answer was lost.
                owned = await twilio.find_incoming_number(e164)
                if owned is not None:
                    return PurchasedNumber(e164=e164, carrier_number_sid=owned["sid"])
            bought = await twilio.buy_number(e164, self._webhooks())
        except TwilioError as exc:
            raise carrier_failure(exc) from exc
        log.info("number bought", extra={"space_id": request.space_id, "number_sid": bought["sid"]})
        return PurchasedNumber(e164=bought["phone_number"], carrier_number_sid=bought["sid"])

    @activity.defn
    async def record_purchased_number(
        self, request: PurchaseNumberInput, bought: PurchasedNumber
    ) -> PurchaseNumberResult:
        async with self._sessions() as session:
            existing = await session.scalar(select(PhoneNumber).where(PhoneNumber.e164 == bought.e164))
            if existing is not None:
                if existing.space_id == request.space_id and existing.carrier_number_sid == bought.carrier_number_sid:
                    return PurchaseNumberResult(existing.id, existing.e164, bought.carrier_number_sid)
                raise ApplicationError("number already registered", type=CARRIER_REJECTED, non_retryable=True)
            number = PhoneNumber(
                space_id=request.space_id,
                e164=bought.e164,
                carrier_account_id=request.carrier_account_id,
                carrier_number_sid=bought.carrier_number_sid,
                **Routing.model_validate(request.routing).model_dump(),
            )
            session.add(number)
            await session.commit()
            return PurchaseNumberResult(number.id, number.e164, bought.carrier_number_sid)

    @activity.defn
    async def release_number(self, request: ReleaseNumberInput) -> None:
        twilio = await self._client(request.space_id, request.carrier_account_id)
        try:
            await twilio.release_number(request.carrier_number_sid)
        except TwilioError as exc:
            if exc.status == 404:
                return  # already released
            raise carrier_failure(exc) from exc
