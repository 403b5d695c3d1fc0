"""Whether a number may join a space, answered so that no space learns what another one holds.

A number has one owner across the platform. A space adding a number another space owns gets exactly the answer a
number that can never be ported gets (premium-rate, shared-cost, voicemail-access or personal numbers): the same
status and body. Only the owner learns that the number is already there.
"""

from __future__ import annotations

import logging

import phonenumbers
from fastapi import HTTPException, status
from phonenumbers import PhoneNumberType
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import PhoneNumber

log = logging.getLogger(__name__)

NOT_PORTABLE = {
    PhoneNumberType.PREMIUM_RATE,
    PhoneNumberType.SHARED_COST,
    PhoneNumberType.VOICEMAIL,
    PhoneNumberType.PERSONAL_NUMBER,
    PhoneNumberType.UAN,
    PhoneNumberType.PAGER,
}
REFUSED = "this number cannot be added to this space"
ALREADY_HERE = "this number is already in this space"


def refused() -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, REFUSED)


def portable(e164: str) -> bool:
    try:
        return phonenumbers.number_type(phonenumbers.parse(e164, None)) not in NOT_PORTABLE
    except phonenumbers.NumberParseException:
        return False


async def ensure_number_can_join(session: AsyncSession, space_id: str, e164: str) -> None:
    owner = await session.scalar(select(PhoneNumber.space_id).where(PhoneNumber.e164 == e164))
    if owner == space_id:
        raise HTTPException(status.HTTP_409_CONFLICT, ALREADY_HERE)
    if owner is not None or not portable(e164):
        log.info("number refused for a space", extra={"space_id": space_id})
        raise refused()
