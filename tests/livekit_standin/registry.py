"""The Twirp routes LiveKit serves, read from the protobuf service descriptors, and their handlers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf import message_factory
from google.protobuf.message import Message
from livekit.protocol import agent_dispatch, egress, ingress, room, sip

from .auth import CallContext

Handler = Callable[[CallContext, Any], Awaitable[Message]]
H = TypeVar("H", bound=Handler)


@dataclass(frozen=True)
class Method:
    service: str  # e.g. "livekit.SIP"
    name: str  # e.g. "CreateSIPParticipant"
    request_type: type[Message]
    response_type: type[Message]


def _methods() -> dict[str, Method]:
    found: dict[str, Method] = {}
    for module in (room, sip, egress, agent_dispatch, ingress):
        for service in module.DESCRIPTOR.services_by_name.values():
            for m in service.methods:
                found[f"{service.full_name}/{m.name}"] = Method(
                    service.full_name,
                    m.name,
                    message_factory.GetMessageClass(m.input_type),
                    message_factory.GetMessageClass(m.output_type),
                )
    return found


METHODS: dict[str, Method] = _methods()
HANDLERS: dict[str, Handler] = {}


def handles(service: str, method: str) -> Callable[[H], H]:
    """Register the decorated coroutine as the handler of ``service/method``."""
    key = f"{service}/{method}"
    if key not in METHODS:
        raise KeyError(f"LiveKit has no Twirp method {key}")

    def register(fn: H) -> H:
        HANDLERS[key] = fn
        return fn

    return register
