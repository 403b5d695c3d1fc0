"""LiveKit webhook verification: the JWT in ``Authorization`` is signed with our API secret and carries the body's
sha256; only then is the body read, and only a JSON object that is a LiveKit event is accepted.

Every way a request can be wrong has its answer: no or bad token, a hash claim that is not base64 or does not
match → 401; a body that is not a JSON object event (``[]``, a bare string, garbage, fields of the wrong type)
→ 400 with the reason. Nothing here answers 500.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from fastapi import HTTPException, status
from google.protobuf.json_format import ParseDict, ParseError
from livekit import api as lk

from models.settings import Settings

SHA256_B64_LENGTH = 44  # base64 of 32 bytes
MAX_EVENT_ID = 128  # ids are remembered to process each event once (webhook_events.id)


def _claimed_digest(claim: str | None) -> bytes:
    if not claim or len(claim) != SHA256_B64_LENGTH:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "webhook token carries no body sha256")
    try:
        return base64.b64decode(claim, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "webhook token's body sha256 is not base64") from exc


def _misplaced_field(document: dict[str, Any], descriptor: Any) -> str | None:
    """The first field holding a non-object where the event has a message (protobuf's parser lets some through)."""
    for name, value in document.items():
        field = descriptor.fields_by_camelcase_name.get(name) or descriptor.fields_by_name.get(name)
        if field is None or value is None or field.message_type is None:
            continue
        if field.is_repeated or field.message_type.full_name.startswith("google.protobuf."):
            continue
        if not isinstance(value, dict):
            return name
        inner = _misplaced_field(value, field.message_type)
        if inner is not None:
            return f"{name}.{inner}"
    return None


def parse_event(body: bytes) -> lk.WebhookEvent:
    """A LiveKit event from its JSON body (400 with the reason for anything else)."""
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "webhook body is not UTF-8 JSON") from exc
    if not isinstance(document, dict):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "webhook body is not a JSON object")
    if not isinstance(document.get("event"), str) or not document["event"]:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "webhook body names no event")
    misplaced = _misplaced_field(document, lk.WebhookEvent.DESCRIPTOR)
    if misplaced is not None:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"webhook body is not a LiveKit event: {misplaced} is not an object"
        )
    try:
        event = ParseDict(document, lk.WebhookEvent(), ignore_unknown_fields=True)
    except (ParseError, ValueError, TypeError, AttributeError, RecursionError) as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "webhook body is not a LiveKit event") from exc
    if len(event.id) > MAX_EVENT_ID:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"webhook event id longer than {MAX_EVENT_ID} characters")
    return event


def verified_livekit_event(settings: Settings, body: bytes, authorization: str | None) -> lk.WebhookEvent:
    """The event, once the token proves LiveKit sent exactly this body."""
    if not settings.livekit_configured:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "LiveKit is not configured")
    assert settings.livekit_api_key and settings.livekit_api_secret
    verifier = lk.TokenVerifier(settings.livekit_api_key, settings.livekit_api_secret.get_secret_value())
    try:
        claims = verifier.verify(authorization or "")
    except Exception as exc:  # the verifier raises jwt's many error types
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid webhook token") from exc
    expected = _claimed_digest(claims.sha256)
    if not hmac.compare_digest(hashlib.sha256(body).digest(), expected):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "webhook body does not match its signature")
    return parse_event(body)
