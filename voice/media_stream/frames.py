"""What a media-stream WebSocket may carry before any message is parsed: Twilio sends only JSON text frames of
under a kilobyte, so a binary frame, an oversized text frame or a silence before ``start`` ends that stream (and
only that stream) with a close code and a reason."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import Message

UNSUPPORTED_DATA = 1003  # a binary frame: Twilio Media Streams are JSON text
POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009


class FrameRejected(Exception):
    """The stream is closed with ``code`` and ``reason``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class FrameLimits:
    max_text_bytes: int
    start_timeout: float


def text_of(message: Message, limits: FrameLimits) -> str | None:
    """The text of one ASGI WebSocket message; None once the peer has gone."""
    if message["type"] == "websocket.disconnect":
        return None
    text = message.get("text")
    if text is None:
        raise FrameRejected(UNSUPPORTED_DATA, "binary frames are not accepted: send JSON text")
    if len(text) > limits.max_text_bytes or len(text.encode("utf-8")) > limits.max_text_bytes:
        raise FrameRejected(MESSAGE_TOO_BIG, f"text frame larger than {limits.max_text_bytes} bytes")
    return str(text)


def silent_too_long(limits: FrameLimits) -> FrameRejected:
    return FrameRejected(POLICY_VIOLATION, f"no start within {limits.start_timeout:g} s")
