"""The call contract: everything that crosses a process boundary about a call, defined once.

Webhooks (api), the REST routes, the workflow, its activities, the voice runtime and the benches all import
these: workflow ids and how they are derived, room names, room and dispatch metadata (typed, with their own
encoding), the ``StartCall`` of each way a call starts, the media-stream route and its parameters, and the
carrier's status vocabulary. Signal, update and query *names* live in :mod:`models.calls` beside the types
they carry and are used only by ``workflows/`` (the workflow and its typed client).

Workflow ids carry the space: ``call-<space>-<carrier call id>``. A carrier event signed by one space's
account can only ever name workflows of that space, so another space's call is, to it, an unknown call.
"""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from typing import Any, Self
from urllib.parse import urlencode, urlsplit, urlunsplit

from models.calls import AmdOptions, StartCall
from models.enums import CallDirection, EndReason, MachinePolicy, MediaMode
from models.secret_box import SecretBox

CALL_WORKFLOW_PREFIX = "call-"
UNROUTED_SPACE = "unrouted"  # a call to a number we do not know: it is rejected, but still one workflow

# ----------------------------------------------------------------------------------------------- ids


def call_workflow_id(space_id: str | None, carrier_call_id: str) -> str:
    """The workflow of a call: a retried webhook for the same carrier call reaches the same workflow."""
    return f"{CALL_WORKFLOW_PREFIX}{space_id or UNROUTED_SPACE}-{carrier_call_id}"


def space_of_workflow(workflow_id: str) -> str | None:
    """The space a call's workflow id belongs to (``None``: not a call id, or an unrouted call)."""
    if not workflow_id.startswith(CALL_WORKFLOW_PREFIX):
        return None
    space, sep, rest = workflow_id.removeprefix(CALL_WORKFLOW_PREFIX).partition("-")
    if not sep or not rest or space == UNROUTED_SPACE:
        return None
    return space


def belongs_to(workflow_id: str, space_id: str | None) -> bool:
    """May an event of ``space_id`` act on ``workflow_id``? (the tenant rule at every carrier entry point)"""
    return space_id is not None and space_of_workflow(workflow_id) == space_id


def call_record_id(workflow_id: str) -> str:
    """The Call row id of a call that a carrier started, fixed by its workflow id so retries agree on it."""
    return "call_" + hashlib.sha256(workflow_id.encode()).hexdigest()[:32]


def room_name(workflow_id: str) -> str:
    """The LiveKit room we create for a call (outbound calls; inbound SIP calls arrive in LiveKit's room)."""
    return workflow_id


# ------------------------------------------------------------------------------------------ metadata


class MetadataError(ValueError):
    """Metadata that is not ours or not complete."""


def _decode(raw: str | bytes, required: tuple[str, ...]) -> dict[str, Any]:
    try:
        data = json.loads(raw) if raw else None
    except ValueError as exc:
        raise MetadataError("metadata is not JSON") from exc
    if not isinstance(data, dict) or any(not isinstance(data.get(key), str) or not data[key] for key in required):
        raise MetadataError(f"metadata needs {', '.join(required)}")
    return data


@dataclass(frozen=True)
class RoomMetadata:
    """Written on the rooms we create; LiveKit hands it back with ``room_finished``."""

    workflow_id: str
    call_id: str
    space_id: str | None
    direction: CallDirection

    def encode(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def decode(cls, raw: str | bytes) -> Self:
        data = _decode(raw, ("workflow_id", "call_id", "direction"))
        try:
            direction = CallDirection(data["direction"])
        except ValueError as exc:
            raise MetadataError("unknown call direction") from exc
        space = data.get("space_id")
        return cls(data["workflow_id"], data["call_id"], space if isinstance(space, str) else None, direction)


@dataclass(frozen=True)
class DispatchMetadata:
    """What the workflow tells the agent it dispatches (LiveKit job metadata, or a media stream's set-up)."""

    workflow_id: str
    call_id: str
    space_id: str
    agent_id: str
    conversation_id: str | None = None
    resumed: bool = False  # the call's previous agent was lost: pick up where it was, no second greeting
    attempt: int = 0
    amd_policy: MachinePolicy | None = None  # outbound calls with AMD: listen for a machine before greeting
    amd_message: str | None = None
    amd_message_asset_id: str | None = None
    # A call routed to a flow (LiveKit rooms): the job plays the flow's prompts and hears its keys, attached to the
    # workflow like a media stream, and answers with an agent only once the flow hands over (agent_id "" until then).
    flow: bool = False

    @property
    def amd(self) -> AmdOptions | None:
        if self.amd_policy is None:
            return None
        return AmdOptions(self.amd_policy, self.amd_message, self.amd_message_asset_id)

    def encode(self) -> str:
        data = asdict(self)
        if data["amd_message_asset_id"] is None:  # unset: the same metadata as before it existed (dispatch dedupe)
            del data["amd_message_asset_id"]
        if not data["flow"]:
            del data["flow"]
        return json.dumps(data, sort_keys=True)

    @classmethod
    def decode(cls, raw: str | bytes) -> Self:
        data = _decode(raw, ("workflow_id", "call_id", "space_id"))
        flow = data.get("flow") is True
        if not flow and not (isinstance(data.get("agent_id"), str) and data["agent_id"]):
            raise MetadataError("metadata needs agent_id (or flow)")
        conversation, attempt = data.get("conversation_id"), data.get("attempt")
        policy, message, asset = data.get("amd_policy"), data.get("amd_message"), data.get("amd_message_asset_id")
        if policy is not None and policy not in set(MachinePolicy):
            raise MetadataError("unknown AMD policy")
        return cls(
            data["workflow_id"],
            data["call_id"],
            data["space_id"],
            data["agent_id"] if isinstance(data.get("agent_id"), str) else "",
            conversation if isinstance(conversation, str) else None,
            data.get("resumed") is True,
            attempt if isinstance(attempt, int) and not isinstance(attempt, bool) else 0,
            MachinePolicy(policy) if policy is not None else None,
            message if isinstance(message, str) else None,
            asset if isinstance(asset, str) else None,
            flow,
        )


# ------------------------------------------------------------------------------------- media streams

MEDIA_STREAM_PATH = "/media/twilio"
STREAM_WORKFLOW_PARAMETER = "workflow_id"
STREAM_TOKEN_PARAMETER = "token"
STREAM_TOKEN_PURPOSE = "media-stream"
STREAM_TOKEN_SECONDS = 600  # how long after the TwiML the carrier may open the stream


def media_stream_url(public_url: str) -> str:
    """The ``wss://`` URL carriers open media streams on (the route the media-stream server answers)."""
    public = urlsplit(public_url)
    scheme = "wss" if public.scheme == "https" else "ws"
    return urlunsplit((scheme, public.netloc, public.path.rstrip("/") + MEDIA_STREAM_PATH, "", ""))


# After the stream, Twilio goes on to the next verb when ``<Connect>`` has no action: if the process carrying the
# stream dies, this keeps the caller on the line (silence) until the workflow redirects the call to a new stream.
STREAM_FALLBACK_PAUSE_SECONDS = 60

# ``<Connect action>``: the carrier requests it the moment a stream ends; the API tells the call's workflow, which
# answers with a new stream at once (the carry_media heartbeat stays the fallback). Query parameters (covered by
# the carrier's signature): the call's workflow and the number of the stream that ended (0, then +1 per move).
STREAM_ENDED_PATH = "/webhooks/twilio/stream-ended"
STREAM_NUMBER_PARAMETER = "stream"
MAX_STREAM_NO = 1000  # more moves than any call makes: a larger number is no URL of ours


def stream_ended_url(public_url: str, workflow_id: str, stream_no: int) -> str:
    """The ``<Connect action>`` URL of the call's stream number ``stream_no`` (``public_url``: the API's)."""
    query = urlencode({STREAM_WORKFLOW_PARAMETER: workflow_id, STREAM_NUMBER_PARAMETER: str(stream_no)})
    return f"{public_url.rstrip('/')}{STREAM_ENDED_PATH}?{query}"


def media_stream_twiml(
    media_public_url: str, box: SecretBox, workflow_id: str, now: float, *, action_url: str | None = None
) -> str:
    """The TwiML that connects a call's audio to our media-stream servers, bound to the call by a token;
    ``action_url`` (see ``stream_ended_url``): where the carrier reports the stream's end."""
    response = ET.Element("Response")
    connect = ET.SubElement(response, "Connect", {"action": action_url, "method": "POST"} if action_url else {})
    stream = ET.SubElement(connect, "Stream", url=media_stream_url(media_public_url))
    ET.SubElement(stream, "Parameter", name=STREAM_WORKFLOW_PARAMETER, value=workflow_id)
    ET.SubElement(stream, "Parameter", name=STREAM_TOKEN_PARAMETER, value=stream_token(box, workflow_id, now))
    ET.SubElement(response, "Pause", length=str(STREAM_FALLBACK_PAUSE_SECONDS))
    return ET.tostring(response, encoding="unicode", xml_declaration=True)


def stream_token(box: SecretBox, workflow_id: str, now: float) -> str:
    """A short-lived token binding a media stream to the call it was issued for (a TwiML ``<Parameter>``)."""
    expires = int(now) + STREAM_TOKEN_SECONDS
    return f"{expires}.{box.sign(STREAM_TOKEN_PURPOSE, f'{workflow_id}|{expires}')}"


def stream_token_valid(box: SecretBox, workflow_id: str, token: str, now: float) -> bool:
    """Was ``token`` issued by us for ``workflow_id``, and is it still fresh?"""
    expires, _, signature = token.partition(".")
    if not expires.isascii() or not expires.isdigit() or len(expires) > 12 or int(expires) < now:
        return False
    return box.signature_valid(STREAM_TOKEN_PURPOSE, f"{workflow_id}|{expires}", signature)


# --------------------------------------------------------------------------- carrier status vocabulary

# Twilio's CallStatus values: those that end a call (and how), those that mean it was answered, the rest.
CARRIER_END_REASONS: dict[str, EndReason] = {
    "completed": EndReason.COMPLETED,
    "busy": EndReason.BUSY,
    "no-answer": EndReason.NO_ANSWER,
    "failed": EndReason.FAILED,
    "canceled": EndReason.CANCELED,
}
CARRIER_ANSWERED = frozenset({"in-progress", "answered"})
CARRIER_PROGRESS = frozenset({"queued", "initiated", "ringing"})
TWILIO_CALL_STATUSES = frozenset(CARRIER_END_REASONS) | CARRIER_ANSWERED | CARRIER_PROGRESS


# ------------------------------------------------------------------------ how each kind of call starts


def twilio_inbound_call(
    *,
    space_id: str,
    phone_number_id: str | None,
    media_mode: MediaMode,
    call_sid: str,
    from_number: str,
    to_number: str,
) -> StartCall:
    """A call reaching one of our numbers through Twilio's voice webhook (or its status callback)."""
    workflow_id = call_workflow_id(space_id, call_sid)
    return StartCall(
        call_id=call_record_id(workflow_id),
        workflow_id=workflow_id,
        direction=CallDirection.INBOUND,
        from_number=from_number,
        to_number=to_number,
        carrier_call_id=call_sid,
        space_id=space_id,
        phone_number_id=phone_number_id,
        media_mode=media_mode,
    )


def livekit_sip_call(
    *,
    space_id: str | None,
    phone_number_id: str | None,
    sip_call_id: str,
    from_number: str,
    to_number: str,
    room: str,
    caller_identity: str,
) -> StartCall:
    """A SIP call LiveKit put into a room of its own (a carrier trunk straight to LiveKit SIP)."""
    workflow_id = call_workflow_id(space_id, sip_call_id)
    return StartCall(
        call_id=call_record_id(workflow_id),
        workflow_id=workflow_id,
        direction=CallDirection.INBOUND,
        from_number=from_number,
        to_number=to_number,
        carrier_call_id=sip_call_id,
        space_id=space_id,
        phone_number_id=phone_number_id,
        media_mode=MediaMode.LIVEKIT,
        room_name=room,
        caller_identity=caller_identity,
    )


def outbound_call(
    *,
    call_id: str,
    space_id: str,
    phone_number_id: str,
    media_mode: MediaMode,
    from_number: str,
    to_number: str,
    agent_id: str | None,
    flow_id: str | None = None,
    campaign_id: str | None = None,
    variables: dict[str, str] | None = None,
    amd: AmdOptions | None = None,
) -> StartCall:
    """A call we place (REST API, campaigns): our call id is the carrier-independent key."""
    return StartCall(
        call_id=call_id,
        workflow_id=call_workflow_id(space_id, call_id),
        direction=CallDirection.OUTBOUND,
        from_number=from_number,
        to_number=to_number,
        carrier_call_id=call_id,
        space_id=space_id,
        phone_number_id=phone_number_id,
        media_mode=media_mode,
        agent_id=agent_id,
        flow_id=flow_id,
        campaign_id=campaign_id,
        variables=dict(variables or {}),
        amd=amd,
    )


def web_call(
    *,
    call_id: str,
    space_id: str,
    agent_id: str | None,
    phone_number_id: str | None,
    caller: str,
    to: str,
    flow_id: str | None = None,
) -> StartCall:
    """A console call: inbound, from ``web:<key id>`` to an agent, a flow or one of the space's numbers (whose route
    decides), media mode web."""
    return StartCall(
        call_id=call_id,
        workflow_id=call_workflow_id(space_id, call_id),
        direction=CallDirection.INBOUND,
        from_number=caller,
        to_number=to,
        carrier_call_id=call_id,
        space_id=space_id,
        phone_number_id=phone_number_id,
        media_mode=MediaMode.WEB,
        agent_id=agent_id,
        flow_id=flow_id,
    )
