"""Who sent a Twilio webhook: the signature over the public URL and the raw form proves which carrier account
(and so which space) it comes from. Every Twilio entry point (voice, status, SMS) starts here.

Verification is bounded whatever the sender does: only Twilio's content type is read, the body is bounded (the
body limit in front of the app, and again here), at most ``twilio_accounts_per_sid`` accounts are tried, and the
signature check is ``models.twilio_signature.first_signer`` (the one media-stream starts use). The accounts come
from the process's ``CarrierDirectory`` cache.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from fastapi import Depends, Header, HTTPException, Request, status

from api.carrier_directory import CarrierDirectory, SigningAccount
from api.deps import DirectoryDep, SettingsDep
from api.webhooks.twilio_form import MAX_PARAMS
from models.settings import Settings
from models.twilio_signature import first_signer, plausible

log = logging.getLogger(__name__)

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
SignatureHeader = Annotated[str | None, Header(alias="X-Twilio-Signature")]


@dataclass
class TwilioRequest:
    params: dict[str, str]
    account: SigningAccount


def _form_pairs(request: Request, raw: bytes, settings: Settings) -> list[tuple[str, str]]:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != FORM_CONTENT_TYPE:
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, f"Twilio webhooks are {FORM_CONTENT_TYPE}")
    if len(raw) > settings.webhook_body_limit:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE, f"request body larger than {settings.webhook_body_limit} bytes"
        )
    try:
        return parse_qsl(
            raw.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw), max_num_fields=MAX_PARAMS
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"body must be {FORM_CONTENT_TYPE} (UTF-8)") from exc


async def verified_twilio_request(
    request: Request, directory: CarrierDirectory, settings: Settings, signature: str | None
) -> TwilioRequest:
    """The form parameters, once the signature proves they come from the account they name."""
    pairs = _form_pairs(request, await request.body(), settings)
    params = dict(pairs)
    # The URL Twilio called, as the public URL says (the API may sit behind a proxy).
    public = urlsplit(settings.public_url)
    path = public.path.rstrip("/") + request.url.path
    url = urlunsplit((public.scheme, public.netloc, path, request.url.query, ""))
    account_sid = params.get("AccountSid", "")
    if signature is not None and plausible(account_sid, signature):
        accounts = await directory.twilio_accounts(account_sid, settings.twilio_accounts_per_sid)
        index = await first_signer([account.auth_token for account in accounts], url, pairs, signature)
        if index is not None:
            return TwilioRequest(params, accounts[index])
    log.warning("Twilio webhook refused: bad signature or unknown account", extra={"path": request.url.path})
    raise HTTPException(status.HTTP_403_FORBIDDEN, "invalid X-Twilio-Signature")


async def _verified(
    request: Request,
    directory: DirectoryDep,
    settings: SettingsDep,
    signature: SignatureHeader = None,
) -> TwilioRequest:
    return await verified_twilio_request(request, directory, settings, signature)


# A Twilio webhook's verified form and signing account: 403 before the endpoint runs when the signature fails.
VerifiedTwilio = Annotated[TwilioRequest, Depends(_verified)]
