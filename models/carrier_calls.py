"""Inputs and outputs of the carrier call activities (calls whose media is a carrier media stream)."""

from __future__ import annotations

from dataclasses import dataclass

CARRIER_CALL_REFUSED = "CarrierCallRefused"


@dataclass
class PlaceCarrierCallInput:
    space_id: str
    phone_number_id: str
    call_id: str
    workflow_id: str
    to_number: str
    from_number: str
    ringing_timeout_seconds: int
    amd: bool = False  # ask the carrier's answering-machine detection (async, reported to /webhooks/twilio/amd)


@dataclass
class CarrierCallPlaced:
    carrier_call_id: str


@dataclass
class EndCarrierCallInput:
    space_id: str
    phone_number_id: str
    carrier_call_id: str


@dataclass
class RedirectCarrierCallInput:
    """Send the carrier's leg to ``target`` (E.164 or SIP URI): our part of the call ends there."""

    space_id: str
    phone_number_id: str
    carrier_call_id: str
    target: str


@dataclass
class CarrierCallRedirected:
    ok: bool
    error: str | None = None


@dataclass
class CarrierCallEnded:
    ended: bool  # False: the carrier had already ended it


@dataclass
class ReconnectStreamInput:
    """Point the carrier's live leg at a new media stream (its agent's process died)."""

    space_id: str
    phone_number_id: str
    carrier_call_id: str
    workflow_id: str
    stream_no: int = 0  # the new stream's number (its ``<Connect action>`` URL names it)


@dataclass
class StreamReconnected:
    ok: bool
    error: str | None = None
