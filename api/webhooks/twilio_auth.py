"""Who sent a Twilio webhook: the signature over the public URL and the raw form proves which carrier account
(and so which space) it comes from. Every Twilio entry point (voice, status, SMS) starts here."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from fastapi import HTTPException, Request, status
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.enums import CarrierProvider
from models.secret_box import SecretBox
from models.settings import Settings
from models.tables import CarrierAccount
from models.twilio_signature import signature_valid

log = logging.getLogger(__name__)


@dataclass
class TwilioRequest:
    params: dict[str, str]
    account: CarrierAccount


async def verified_twilio_request(
    request: Request, session: AsyncSession, box: SecretBox, settings: Settings, signature: str | None
) -> TwilioRequest:
    """The form parameters, once the signature proves they come from the account they name."""
    raw = await request.body()
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw))
    except (UnicodeDecodeError, ValueError) as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "body must be application/x-www-form-urlencoded") from exc
    params = dict(pairs)
    # The URL Twilio called, as the public URL says (the API may sit behind a proxy).
    public = urlsplit(settings.public_url)
    url = urlunsplit((public.scheme, public.netloc, public.path.rstrip("/") + request.url.path, request.url.query, ""))
    accounts = await session.scalars(
        select(CarrierAccount).where(
            CarrierAccount.provider == CarrierProvider.TWILIO,
            CarrierAccount.account_sid == params.get("AccountSid", ""),
        )
    )
    for account in accounts:
        if signature_valid(box.decrypt(account.secret_encrypted), url, pairs, signature or ""):
            return TwilioRequest(params, account)
    log.warning("Twilio webhook refused: bad signature or unknown account", extra={"path": request.url.path})
    raise HTTPException(status.HTTP_403_FORBIDDEN, "invalid X-Twilio-Signature")
