"""Field types and base classes shared by the API schemas."""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import Annotated, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from models.phone import e164_problem

# Matched whole with ``fullmatch`` over ASCII classes: ``$`` lets a trailing newline through, and ``\d`` (like
# ``str.isdigit`` and ``int``) accepts every script's digits (models/phone.py holds the E.164 rule).
_HOST = re.compile(
    r"(?=.{1,253}\Z)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
_PORT = re.compile(r"[0-9]{1,5}")
_SIP_URI = re.compile(r"sips?:[\x21-\x3f\x41-\x7e]+@[\x21-\x3f\x41-\x7e]+")  # user@host, printable ASCII


def validate_e164(value: str) -> str:
    problem = e164_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def validate_cidr(value: str) -> str:
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"not a CIDR block: {exc}") from exc
    return str(network)


def validate_sip_address(value: str) -> str:
    """A SIP server as ``host`` or ``host:port`` (IPv4, [IPv6] or DNS name)."""
    host, port = value, None
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
        if rest and not rest.startswith(":"):
            raise ValueError("expected [ipv6]:port")
    elif value.count(":") == 1:
        host, port = value.split(":")
    if port is not None and (not _PORT.fullmatch(port) or not 1 <= int(port) <= 65535):
        raise ValueError("port must be a number from 1 to 65535")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOST.fullmatch(host):
            raise ValueError("must be a host name or IP address, optionally with :port") from None
    return value


def validate_transfer_target(target: str) -> str:
    """An E.164 number (``+1…`` or ``tel:+1…``) or a SIP URI (``sip:user@host``)."""
    if target.startswith(("sip:", "sips:")):
        if not _SIP_URI.fullmatch(target):
            raise ValueError("a SIP URI needs user@host, printable ASCII without spaces")
        return target
    validate_e164(target.removeprefix("tel:"))
    return target


E164 = Annotated[str, AfterValidator(validate_e164)]
TransferTarget = Annotated[str, Field(min_length=3, max_length=300), AfterValidator(validate_transfer_target)]
Cidr = Annotated[str, AfterValidator(validate_cidr)]
SipAddress = Annotated[str, AfterValidator(validate_sip_address)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
# Calls per second a carrier account or SIP trunk takes (every campaign dialling through it together); None: no
# limit of ours. Twilio's default for an account is 1; a carrier queues or refuses calls above its limit.
RouteCps = Annotated[
    float | None,
    Field(
        gt=0,
        le=1000,
        description=(
            "Calls per second dialled through it by every campaign together (null: no limit of ours; Twilio's default "
            "account limit is 1)"
        ),
    ),
]
Ref = Annotated[str, Field(min_length=1, max_length=40, description="Id of a resource of the same space")]


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class OutSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Timestamps(OutSchema):
    created_at: datetime
    updated_at: datetime


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` to get the next page; absent on the last page"
    )
