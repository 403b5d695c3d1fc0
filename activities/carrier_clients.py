"""REST clients of a space's carrier accounts, built from the stored account (the token is decrypted here only)."""

from __future__ import annotations

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.twilio_rest import TwilioRest
from models.secret_box import SecretBox
from models.settings import Settings
from models.tables import CarrierAccount, PhoneNumber


class CarrierClients:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        secret_box: SecretBox,
        http: httpx.AsyncClient,
        settings: Settings,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.box = secret_box  # also signs the media-stream tokens of the TwiML we send
        self._http = http

    def _client(self, account: CarrierAccount) -> TwilioRest:
        token = self.box.decrypt(account.secret_encrypted)
        return TwilioRest(self._http, self.settings.twilio_api_base_url, account.account_sid, token)

    async def for_account(self, space_id: str, carrier_account_id: str) -> TwilioRest | None:
        """The client of this space's account, or None if the space has no such account."""
        async with self.sessions() as session:
            account = await session.get(CarrierAccount, carrier_account_id)
        if account is None or account.space_id != space_id:
            return None
        return self._client(account)

    async def account_cps(self, space_id: str, phone_number_id: str) -> tuple[str, float] | None:
        """The carrier account dialling from this number and its calls-per-second limit, when it has one."""
        async with self.sessions() as session:
            row = (
                await session.execute(
                    select(CarrierAccount.id, CarrierAccount.cps)
                    .join(PhoneNumber, PhoneNumber.carrier_account_id == CarrierAccount.id)
                    .where(PhoneNumber.id == phone_number_id, PhoneNumber.space_id == space_id)
                )
            ).first()
        if row is None or row.cps is None:
            return None
        return row.id, row.cps

    async def for_number(self, space_id: str, phone_number_id: str) -> TwilioRest | None:
        """The client of the account hosting this space's number, or None."""
        async with self.sessions() as session:
            number = await session.get(PhoneNumber, phone_number_id)
            if number is None or number.space_id != space_id or number.carrier_account_id is None:
                return None
            account = await session.get(CarrierAccount, number.carrier_account_id)
        if account is None or account.space_id != space_id:
            return None
        return self._client(account)
