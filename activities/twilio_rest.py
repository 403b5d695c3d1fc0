"""A small client of Twilio's REST API (2010-04-01) over httpx: numbers, calls and messages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx


@dataclass
class TwilioError(Exception):
    status: int
    code: int | None
    message: str

    def __str__(self) -> str:
        return f"Twilio {self.status} (code {self.code}): {self.message}"

    @property
    def retryable(self) -> bool:
        return self.status >= 500 or self.status == 429


class TwilioRest:
    def __init__(self, http: httpx.AsyncClient, base_url: str, account_sid: str, auth_token: str) -> None:
        self._http = http
        self._root = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}"
        self._auth = httpx.BasicAuth(account_sid, auth_token)

    async def _request(self, method: str, path: str, *, params: Any = None, data: Any = None) -> dict[str, Any]:
        # Form bodies are encoded here: Twilio repeats some parameters (StatusCallbackEvent), which
        # httpx's dict-only ``data`` cannot express.
        content = urlencode(list(data.items()) if isinstance(data, dict) else data) if data is not None else None
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if content is not None else None
        response = await self._http.request(
            method, f"{self._root}{path}", params=params, content=content, headers=headers, auth=self._auth
        )
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {}
            raise TwilioError(response.status_code, body.get("code"), body.get("message") or response.text[:200])
        if response.status_code == 204 or not response.content:
            return {}
        result: dict[str, Any] = response.json()
        return result

    async def available_local_numbers(self, iso_country: str, area_code: str | None) -> list[str]:
        params = {"VoiceEnabled": "true", "PageSize": "20"}
        if area_code:
            params["AreaCode"] = area_code
        body = await self._request("GET", f"/AvailablePhoneNumbers/{iso_country}/Local.json", params=params)
        return [n["phone_number"] for n in body.get("available_phone_numbers", [])]

    async def find_incoming_number(self, e164: str) -> dict[str, Any] | None:
        body = await self._request("GET", "/IncomingPhoneNumbers.json", params={"PhoneNumber": e164})
        numbers = body.get("incoming_phone_numbers", [])
        return numbers[0] if numbers else None

    async def buy_number(self, e164: str, webhooks: dict[str, str]) -> dict[str, Any]:
        return await self._request("POST", "/IncomingPhoneNumbers.json", data={"PhoneNumber": e164, **webhooks})

    async def release_number(self, number_sid: str) -> None:
        await self._request("DELETE", f"/IncomingPhoneNumbers/{number_sid}.json")

    async def create_call(self, params: list[tuple[str, str]]) -> dict[str, Any]:
        """Place a call (``To``, ``From``, ``Url``, ``StatusCallback``, repeated ``StatusCallbackEvent``…)."""
        return await self._request("POST", "/Calls.json", data=params)

    async def redirect_call(self, call_sid: str, twiml: str) -> dict[str, Any]:
        return await self._request("POST", f"/Calls/{call_sid}.json", data={"Twiml": twiml})

    async def end_call(self, call_sid: str) -> dict[str, Any]:
        return await self._request("POST", f"/Calls/{call_sid}.json", data={"Status": "completed"})

    async def create_message(self, params: list[tuple[str, str]]) -> dict[str, Any]:
        """Send an SMS/MMS (``To``, ``From``, ``Body``, repeated ``MediaUrl``, ``StatusCallback``)."""
        return await self._request("POST", "/Messages.json", data=params)

    async def list_messages(self, to: str, sender: str, page_size: int = 50) -> list[dict[str, Any]]:
        """The account's latest messages from ``sender`` to ``to``, newest first (one page)."""
        params = {"To": to, "From": sender, "PageSize": str(page_size)}
        body = await self._request("GET", "/Messages.json", params=params)
        messages: list[dict[str, Any]] = body.get("messages", [])
        return messages
