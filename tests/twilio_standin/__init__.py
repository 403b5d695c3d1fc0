"""A protocol-faithful stand-in for Twilio's REST API (2010-04-01) and its signed webhooks.

Point ``Settings.twilio_api_base_url`` at ``standin.url``; drive the carrier's side with
``post_webhook``, ``send_status_callback``, ``incoming_call`` and ``incoming_sms``.
"""

from tests.twilio_standin.resources import (
    OTHER_ACCOUNT_SID,
    OTHER_AUTH_TOKEN,
    TEST_ACCOUNT_SID,
    TEST_AUTH_TOKEN,
    AvailableNumber,
    IncomingNumber,
    InjectedFailure,
    RecordedRequest,
    error_body,
)
from tests.twilio_standin.server import OPERATIONS, TwilioStandIn
from tests.twilio_standin.traffic import CallRecord, MessageRecord
from tests.twilio_standin.webhooks import SentWebhook, twilio_signature

__all__ = [
    "OPERATIONS",
    "OTHER_ACCOUNT_SID",
    "OTHER_AUTH_TOKEN",
    "TEST_ACCOUNT_SID",
    "TEST_AUTH_TOKEN",
    "AvailableNumber",
    "CallRecord",
    "IncomingNumber",
    "InjectedFailure",
    "MessageRecord",
    "RecordedRequest",
    "SentWebhook",
    "TwilioStandIn",
    "error_body",
    "twilio_signature",
]
