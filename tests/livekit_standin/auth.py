"""Token checks as livekit-server does them (``pkg/service/auth.go``).

Two layers, like the real server:

* the HTTP middleware parses and verifies the bearer token. A malformed header, an unknown API key or
  a bad signature/expired token is answered **401 with a plain-text body** (not Twirp JSON), so the
  Python client raises ``ServerError(code="unknown", status=401)``. No header at all is not an error
  there: the request proceeds without grants.
* each method then checks the grants it needs (``EnsureAdminPermission`` ...). A missing grant is
  wrapped by ``twirpAuthError``, i.e. Twirp ``unauthenticated`` (HTTP 401) "permissions denied".
  ``LiveKitStandIn(missing_grant_code="permission_denied")`` answers 403 instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import jwt
from livekit.api import TokenVerifier
from livekit.api.access_token import Claims

from .errors import TwirpError

if TYPE_CHECKING:
    from .server import LiveKitStandIn

BEARER = "Bearer "


class AuthFailure(Exception):
    """Rejected by the auth middleware: answered 401 with ``message`` as a text body."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def authenticate(header: str | None, query_token: str | None, api_key: str, api_secret: str) -> Claims | None:
    """Verify the request's token; ``None`` when the request carries none."""
    if header:
        if not header.startswith(BEARER):
            raise AuthFailure("invalid authorization header. Must start with " + BEARER)
        token = header[len(BEARER) :]
    else:
        token = query_token or ""
    if not token:
        return None
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise AuthFailure("invalid authorization token") from None
    issuer = unverified.get("iss", "")
    if issuer != api_key:
        raise AuthFailure(f"invalid API key: {issuer}")
    try:
        return TokenVerifier(api_key, api_secret).verify(token)
    except jwt.PyJWTError as exc:
        raise AuthFailure(f"invalid token: {token}, error: {exc}") from None


@dataclass
class CallContext:
    """What a method handler sees: the stand-in and the verified claims (``None`` without a token)."""

    lk: LiveKitStandIn
    service: str
    method: str
    claims: Claims | None

    def denied(self) -> TwirpError:
        return TwirpError(self.lk.missing_grant_code, "permissions denied")

    def require_room_create(self) -> None:
        video = self.claims.video if self.claims else None
        if video is None or not video.room_create:
            raise self.denied()

    def require_room_list(self) -> None:
        video = self.claims.video if self.claims else None
        if video is None or not video.room_list:
            raise self.denied()

    def require_room_record(self) -> None:
        video = self.claims.video if self.claims else None
        if video is None or not video.room_record:
            raise self.denied()

    def require_room_admin(self, room: str) -> None:
        video = self.claims.video if self.claims else None
        if video is None or not video.room_admin or video.room != room:
            raise self.denied()

    def require_sip_admin(self) -> None:
        sip = self.claims.sip if self.claims else None
        if sip is None or not sip.admin:
            raise self.denied()

    def require_sip_call(self) -> None:
        sip = self.claims.sip if self.claims else None
        if sip is None or not sip.call:
            raise self.denied()
