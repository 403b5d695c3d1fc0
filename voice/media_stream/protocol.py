"""The Twilio Media Streams wire format: what Twilio sends us and what we send back.

In: ``connected``, ``start`` (stream and call ids, custom parameters, media format), ``media`` (base64 μ-law),
``dtmf``, ``mark`` (our mark, echoed once the audio before it has played), ``stop``.
Out: ``media``, ``mark``, ``clear`` (drop audio not yet played: barge-in).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError


class ProtocolError(ValueError):
    """A message that is not valid Twilio Media Streams JSON: the stream is closed with this reason."""


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Connected(_Message):
    event: Literal["connected"]
    protocol: str = "Call"
    version: str = ""


class MediaFormat(_Message):
    encoding: str
    sample_rate: int = Field(alias="sampleRate")
    channels: int = 1


class StartInfo(_Message):
    stream_sid: str = Field(alias="streamSid")
    account_sid: str = Field(default="", alias="accountSid")
    call_sid: str = Field(alias="callSid")
    tracks: list[str] = Field(default_factory=lambda: ["inbound"])
    custom_parameters: dict[str, str] = Field(default_factory=dict, alias="customParameters")
    media_format: MediaFormat = Field(alias="mediaFormat")


class Start(_Message):
    event: Literal["start"]
    stream_sid: str = Field(alias="streamSid")
    start: StartInfo


class MediaPayload(_Message):
    track: str = "inbound"
    chunk: int | str = 0
    timestamp: int | str = 0
    payload: str

    def audio(self) -> bytes:
        try:
            return base64.b64decode(self.payload, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ProtocolError("media payload is not base64") from exc


class Media(_Message):
    event: Literal["media"]
    stream_sid: str = Field(alias="streamSid")
    media: MediaPayload


class DtmfPayload(_Message):
    track: str = "inbound_track"
    digit: Annotated[str, Field(pattern=r"^[0-9*#A-D]$")]


class Dtmf(_Message):
    event: Literal["dtmf"]
    stream_sid: str = Field(alias="streamSid")
    sequence_number: str = Field(default="", alias="sequenceNumber")
    dtmf: DtmfPayload


class MarkPayload(_Message):
    name: str


class Mark(_Message):
    event: Literal["mark"]
    stream_sid: str = Field(alias="streamSid")
    mark: MarkPayload


class Stop(_Message):
    event: Literal["stop"]
    stream_sid: str = Field(alias="streamSid")


Incoming = Annotated[Connected | Start | Media | Dtmf | Mark | Stop, Field(discriminator="event")]
_incoming: TypeAdapter[Connected | Start | Media | Dtmf | Mark | Stop] = TypeAdapter(Incoming)


def parse(text: str) -> Connected | Start | Media | Dtmf | Mark | Stop:
    try:
        return _incoming.validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ProtocolError(f"invalid {where or 'message'}: {first['msg']}") from exc


def media(stream_sid: str, ulaw: bytes) -> str:
    return json.dumps(
        {"event": "media", "streamSid": stream_sid, "media": {"payload": base64.b64encode(ulaw).decode()}}
    )


def mark(stream_sid: str, name: str) -> str:
    return json.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


def clear(stream_sid: str) -> str:
    return json.dumps({"event": "clear", "streamSid": stream_sid})
