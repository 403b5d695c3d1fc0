"""Twilio's request signature: HMAC-SHA1, keyed by the auth token, over the URL and the sorted POST params; and
which of our stored accounts signed a request."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.enums import CarrierProvider
from models.secret_box import SecretBox
from models.tables import CarrierAccount


def compute_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    grouped: dict[str, set[str]] = {}
    for name, value in params:
        grouped.setdefault(name, set()).add(value)
    payload = url + "".join(name + value for name in sorted(grouped) for value in sorted(grouped[name]))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _url_variants(url: str) -> list[str]:
    """Twilio signs the URL it called; with a default port it may or may not have included it."""
    parts = urlsplit(url)
    default_port = {"https": 443, "http": 80}.get(parts.scheme)
    variants = [url]
    if parts.port is None and default_port and parts.hostname:
        variants.append(urlunsplit(parts._replace(netloc=f"{parts.netloc}:{default_port}")))
    elif parts.port == default_port and parts.hostname:
        variants.append(urlunsplit(parts._replace(netloc=parts.netloc.rsplit(":", 1)[0])))
    return variants


def signature_valid(auth_token: str, url: str, params: list[tuple[str, str]], signature: str) -> bool:
    if not signature:
        return False
    return any(
        hmac.compare_digest(compute_signature(auth_token, candidate, params), signature)
        for candidate in _url_variants(url)
    )


ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
SIGNATURE = re.compile(r"[A-Za-z0-9+/]{27}=")  # base64 of a 20-byte HMAC-SHA1


INLINE_PAYLOAD_BYTES = 16_384  # a real webhook's form is ~1 KB: hashing it costs less than a thread hop


def _signed_by(tokens: Sequence[str], url: str, params: list[tuple[str, str]], signature: str) -> int | None:
    for index, token in enumerate(tokens):
        if signature_valid(token, url, params, signature):
            return index
    return None


def plausible(account_sid: str, signature: str | None) -> bool:
    """A signature and AccountSid of the right shape: anything else is refused without hashing."""
    return bool(signature) and bool(SIGNATURE.fullmatch(signature or "")) and bool(ACCOUNT_SID.fullmatch(account_sid))


async def first_signer(tokens: Sequence[str], url: str, params: list[tuple[str, str]], signature: str) -> int | None:
    """Index of the auth token that signed the request. A large form (forged, most likely) is hashed in a worker
    thread so it never holds the event loop; a usual one is hashed in place."""
    if not tokens:
        return None
    if sum(len(name) + len(value) for name, value in params) <= INLINE_PAYLOAD_BYTES:
        return _signed_by(tokens, url, params, signature)
    return await asyncio.to_thread(_signed_by, tokens, url, params, signature)


async def signing_account(
    session: AsyncSession,
    box: SecretBox,
    *,
    account_sid: str,
    url: str,
    params: list[tuple[str, str]],
    signature: str | None,
    limit: int,
    space_id: str | None = None,
) -> CarrierAccount | None:
    """The Twilio account whose auth token signed ``url`` + ``params`` (of ``space_id``, when given), or None.

    Bounded whatever the sender does: a signature or AccountSid of the wrong shape is refused without hashing, at
    most ``limit`` accounts sharing the AccountSid are tried (the API's webhooks do the same through
    ``api.carrier_directory``, cached)."""
    if signature is None or not plausible(account_sid, signature):
        return None
    query = select(CarrierAccount).where(
        CarrierAccount.provider == CarrierProvider.TWILIO, CarrierAccount.account_sid == account_sid
    )
    if space_id is not None:
        query = query.where(CarrierAccount.space_id == space_id)
    accounts = list(await session.scalars(query.order_by(CarrierAccount.created_at, CarrierAccount.id).limit(limit)))
    tokens = [box.decrypt(account.secret_encrypted) for account in accounts]
    index = await first_signer(tokens, url, params, signature)
    return accounts[index] if index is not None else None
