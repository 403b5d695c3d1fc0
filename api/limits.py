"""Request body limits in front of every route, before anything buffers a body.

A request whose ``Content-Length`` passes its route's limit is answered 413 without reading a byte of it; a body
streamed without a length (chunked) is counted as it arrives and refused the moment it passes the limit. The
limit is chosen by path family, from ``Settings``: carrier and LiveKit webhooks are small forms and events, the
REST API takes JSON documents, agents carry knowledge bases, and a space's assets are uploaded audio files.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fastapi import HTTPException, status
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_json
from models.settings import Settings

log = logging.getLogger(__name__)


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` while the route reads its body: FastAPI passes HTTPExceptions through body
    parsing untouched, so it reaches the error model as a 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(status.HTTP_413_CONTENT_TOO_LARGE, f"request body larger than {limit} bytes")


@dataclass(frozen=True)
class BodyLimits:
    webhook: int
    agent: int
    default: int
    asset: int = 32 * 1024 * 1024

    @classmethod
    def from_settings(cls, settings: Settings) -> BodyLimits:
        return cls(
            settings.webhook_body_limit, settings.agent_body_limit, settings.api_body_limit, settings.asset_upload_limit
        )

    def for_path(self, path: str) -> int:
        if path.startswith("/webhooks/"):
            return self.webhook
        parts = path.split("/")  # "", "v1", "spaces", "{id}", "agents", ...
        if len(parts) > 4 and parts[1:3] == ["v1", "spaces"] and parts[4] == "agents":
            return self.agent
        if len(parts) == 5 and parts[1:3] == ["v1", "spaces"] and parts[4] == "assets":
            return self.asset  # the upload (the multipart envelope counts: a few hundred bytes)
        return self.default


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value.decode("latin-1"))
            except ValueError:
                return None
    return None


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.for_path(scope["path"])
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            log.info("request refused: declared body over the limit", extra={"path": scope["path"], "limit": limit})
            await error_json(status.HTTP_413_CONTENT_TOO_LARGE, f"request body larger than {limit} bytes")(
                scope, receive, send
            )
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    log.info("request refused: streamed body over the limit", extra={"path": scope["path"]})
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counting_receive, send)
