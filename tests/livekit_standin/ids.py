"""LiveKit-style identifiers: a prefix plus 12 base62 characters, like ``guid.New`` in livekit/protocol."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase

ROOM = "RM_"
PARTICIPANT = "PA_"
TRACK = "TR_"
EGRESS = "EG_"
SIP_TRUNK = "ST_"
SIP_DISPATCH_RULE = "SDR_"
SIP_CALL = "SCL_"
SIP_TRANSFER = "STR_"
AGENT_DISPATCH = "AD_"
WEBHOOK_EVENT = "EV_"


def new_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(12))
