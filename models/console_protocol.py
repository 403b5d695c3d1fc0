"""The console's WebSocket protocol: a browser tab (``/console``) or ``telephony call`` talking to an agent.

Defined once here and used by the server (``voice/console``), the CLI (``workers/call_cli.py``) and, by hand,
the page (``api/static/console/console.js`` mirrors these names; keep them in step).

One WebSocket per call, at ``PATH`` on the API's origin:

1. The client sends ``hello`` (a JSON text frame) first, within ``HELLO_TIMEOUT`` seconds. It carries the API
   key (never the URL: URLs end up in logs), the space, and an agent, a flow or one of the space's numbers.
   The key must be ``operator`` or above in that space.
2. The server starts the call (a ``CallWorkflow`` with media mode ``web``) and answers ``ready``.
3. Audio both ways is binary frames of 16-bit little-endian mono PCM at ``SAMPLE_RATE``: the client sends its
   microphone (ideally ``FRAME_SAMPLES`` per frame, at most ``MAX_AUDIO_BYTES``), the server sends the agent's
   speech. After the last audio of each agent reply segment the server sends ``segment_end``; the client
   answers ``played`` once that audio has actually played (then the agent's words count as heard). ``clear``
   (the caller interrupted) means: drop every queued agent sample now.
4. Both sides' words arrive as ``transcript`` (``final`` false for the caller's words while still speaking),
   and each turn's latency (end of caller speech → first agent audio) as ``turn``.
5. The client may send ``dtmf`` (keypad) and ``hangup``. When the call ends, for whatever reason (hang-up from
   the page, the REST API or the agent), the server sends ``ended`` and closes with ``Close.NORMAL``.

Any refusal closes the socket with a ``Close`` code and a short human-readable reason (the page shows it).
"""

from __future__ import annotations

import json
from enum import IntEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

PATH = "/media/console"
PAGE_PATH = "/console"
SAMPLE_RATE = 16000  # Hz, both directions
FRAME_SAMPLES = 320  # 20 ms: what the page sends per frame
MAX_AUDIO_BYTES = 16000  # 0.5 s of audio: anything bigger is refused (a client sends small frames)
MAX_TEXT_BYTES = 4096
HELLO_TIMEOUT = 10.0  # seconds
KEY_ENV = "TELEPHONY_API_KEY"  # where `telephony call` looks for the key when --key is not given


class Close(IntEnum):
    NORMAL = 1000  # the call ended
    MALFORMED = 1007  # a message that is not this protocol
    TOO_BIG = 1009  # a frame over MAX_AUDIO_BYTES / MAX_TEXT_BYTES
    INTERNAL = 1011
    UNAUTHORIZED = 4401  # no, malformed, unknown or revoked API key
    FORBIDDEN = 4403  # the key's role is below operator
    NOT_FOUND = 4404  # no such space, agent or number for this key
    HELLO_TIMEOUT = 4408
    REFUSED = 4409  # the call could not start (the number routes to no agent, routing rejected it, ...)


class ProtocolError(ValueError):
    """A client message that is not this protocol: the socket is closed with ``Close.MALFORMED``."""


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------------- client -> server
class Hello(_Message):
    type: Literal["hello"]
    api_key: str = Field(min_length=1, max_length=200)
    space_id: str = Field(min_length=1, max_length=40)
    agent_id: str | None = Field(default=None, max_length=40)
    phone_number_id: str | None = Field(default=None, max_length=40)
    flow_id: str | None = Field(default=None, max_length=40)  # the call runs the flow (its prompts, keypad, agent)

    @model_validator(mode="after")
    def _one_target(self) -> Hello:
        if sum(x is not None for x in (self.agent_id, self.phone_number_id, self.flow_id)) != 1:
            raise ValueError("give exactly one of agent_id, phone_number_id or flow_id")
        return self


class Dtmf(_Message):
    type: Literal["dtmf"]
    digits: str = Field(pattern=r"^[0-9*#A-D]{1,16}$")


class Played(_Message):
    type: Literal["played"]
    segment: int = Field(ge=1)


class Hangup(_Message):
    type: Literal["hangup"]


ClientMessage = Hello | Dtmf | Played | Hangup
_client: TypeAdapter[ClientMessage] = TypeAdapter(Annotated[ClientMessage, Field(discriminator="type")])


def parse_client(text: str) -> ClientMessage:
    if len(text.encode()) > MAX_TEXT_BYTES:
        raise ProtocolError("text frame too large")
    try:
        return _client.validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ProtocolError(f"invalid {where or 'message'}: {first['msg']}") from exc


# ------------------------------------------------------------------------- server -> client
class Ready(_Message):
    type: Literal["ready"] = "ready"
    call_id: str
    workflow_id: str
    space_id: str
    conversation_id: str | None
    sample_rate: int = SAMPLE_RATE


class Transcript(_Message):
    type: Literal["transcript"] = "transcript"
    role: Literal["caller", "agent"]
    text: str
    final: bool = True


class SegmentEnd(_Message):
    type: Literal["segment_end"] = "segment_end"
    segment: int


class Clear(_Message):
    type: Literal["clear"] = "clear"


class Turn(_Message):
    type: Literal["turn"] = "turn"
    latency_ms: float
    stt_ms: float | None = None
    llm_ttft_ms: float | None = None
    tts_ttfb_ms: float | None = None


class Ended(_Message):
    type: Literal["ended"] = "ended"
    state: str
    end_reason: str | None


ServerMessage = Ready | Transcript | SegmentEnd | Clear | Turn | Ended
_server: TypeAdapter[ServerMessage] = TypeAdapter(Annotated[ServerMessage, Field(discriminator="type")])


def parse_server(text: str) -> ServerMessage:
    return _server.validate_json(text)


def encode(message: BaseModel) -> str:
    return json.dumps(message.model_dump(mode="json"))
