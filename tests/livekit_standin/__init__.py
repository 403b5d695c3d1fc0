"""A protocol-faithful LiveKit server stand-in for tests.

It serves LiveKit's Twirp API (``/twirp/livekit.<Service>/<Method>``, protobuf bodies, bearer JWTs)
over HTTP on 127.0.0.1, keeps rooms, participants, SIP trunks/dispatch rules/calls, agent dispatches
and egresses in memory, and sends signed webhooks. Drive it with the real ``livekit.api.LiveKitAPI``.
"""

from .errors import (
    TWIRP_HTTP_STATUS,
    TwirpError,
    dial_error,
    no_answer_error,
    sip_error_meta,
    sip_twirp_code,
    transfer_error,
)
from .fixtures import livekit_standin
from .server import DEFAULT_API_KEY, DEFAULT_API_SECRET, LiveKitStandIn, RecordedRequest
from .sip_calls import ANSWERED, NO_ANSWER, Outcome
from .webhooks import WebhookDelivery, build_event, sign

__all__ = [
    "ANSWERED",
    "DEFAULT_API_KEY",
    "DEFAULT_API_SECRET",
    "NO_ANSWER",
    "TWIRP_HTTP_STATUS",
    "LiveKitStandIn",
    "Outcome",
    "RecordedRequest",
    "TwirpError",
    "WebhookDelivery",
    "build_event",
    "dial_error",
    "livekit_standin",
    "no_answer_error",
    "sign",
    "sip_error_meta",
    "sip_twirp_code",
    "transfer_error",
]
