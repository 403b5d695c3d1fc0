"""Twirp errors as LiveKit's server writes them, including the SIP error metadata.

Sources (read, not copied): twitchtv/twirp (code -> HTTP status), livekit/protocol
``livekit/sip.go`` (``SIPStatus.GRPCStatus`` and ``TwirpErrorMeta``) and ``utils/xtwirp``
(gRPC details passed as the ``error_details`` meta key), livekit/sip ``pkg/errors``
(``ApplySIPStatus``) and ``pkg/sip/outbound.go`` (INVITE failure messages).
"""

from __future__ import annotations

import base64
from typing import Any

from google.protobuf.any_pb2 import Any as AnyProto
from google.protobuf.message import Message
from livekit.protocol.sip import SIPStatus, SIPStatusCode, SIPTransferError, SIPTransferReason

# twirp.ServerHTTPStatusFromErrorCode
TWIRP_HTTP_STATUS: dict[str, int] = {
    "canceled": 408,
    "unknown": 500,
    "invalid_argument": 400,
    "malformed": 400,
    "deadline_exceeded": 408,
    "not_found": 404,
    "bad_route": 404,
    "already_exists": 409,
    "permission_denied": 403,
    "unauthenticated": 401,
    "resource_exhausted": 429,
    "failed_precondition": 412,
    "aborted": 409,
    "out_of_range": 400,
    "unimplemented": 501,
    "internal": 500,
    "unavailable": 503,
    "dataloss": 500,
}

# google.golang.org/grpc/codes, keyed by the Twirp code name they convert to.
_GRPC_CODE: dict[str, int] = {
    "canceled": 1,
    "unknown": 2,
    "invalid_argument": 3,
    "deadline_exceeded": 4,
    "not_found": 5,
    "already_exists": 6,
    "permission_denied": 7,
    "resource_exhausted": 8,
    "failed_precondition": 9,
    "aborted": 10,
    "out_of_range": 11,
    "unimplemented": 12,
    "internal": 13,
    "unavailable": 14,
    "dataloss": 15,
    "unauthenticated": 16,
}

# Reason phrases a carrier typically sends (RFC 3261 section 21).
SIP_REASON_PHRASES: dict[int, str] = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    480: "Temporarily Unavailable",
    484: "Address Incomplete",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    500: "Server Internal Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
}

# The SIP responses for which livekit/sip says "INVITE failed" rather than "unexpected status".
_INVITE_FAILED_CODES = frozenset({400, 404, 480, 486, 488})


class TwirpError(Exception):
    """An error answered as Twirp JSON: ``{"code", "msg", "meta"}`` with the code's HTTP status."""

    def __init__(self, code: str, msg: str, meta: dict[str, str] | None = None) -> None:
        if code not in TWIRP_HTTP_STATUS:
            raise ValueError(f"not a Twirp error code: {code!r}")
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.meta: dict[str, str] = dict(meta or {})

    @property
    def http_status(self) -> int:
        return TWIRP_HTTP_STATUS[self.code]

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "msg": self.msg}
        if self.meta:  # the Go server omits an empty meta
            body["meta"] = dict(self.meta)
        return body


def sip_reason(sip_code: int) -> str:
    return SIP_REASON_PHRASES.get(sip_code) or SIPStatusCode.Name(sip_code)


def sip_twirp_code(sip_code: int) -> str:
    """The Twirp code LiveKit answers for a call that failed with this SIP status."""
    if sip_code == 487:
        return "aborted"
    if sip_code in (400, 404, 484, 485, 420, 421):
        return "invalid_argument"
    if sip_code in (408, 504):
        return "deadline_exceeded"
    if sip_code in (503, 480, 486, 600, 501, 603):
        return "unavailable"
    if sip_code in (401, 403, 407):
        return "permission_denied"
    return "internal"


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _length_delimited(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def error_details(twirp_code: str, message: str, detail: Message) -> str:
    """base64 of a ``google.rpc.Status`` carrying ``detail`` - the ``error_details`` meta value."""
    packed = AnyProto()
    packed.Pack(detail)
    status = (
        _varint(1 << 3) + _varint(_GRPC_CODE[twirp_code])
        + _length_delimited(2, message.encode())
        + _length_delimited(3, packed.SerializeToString())
    )  # fmt: skip
    return base64.b64encode(status).decode()


def _sip_status(sip_code: int, status: str | None) -> SIPStatus:
    return SIPStatus(code=sip_code, status=status if status is not None else sip_reason(sip_code))  # type: ignore[arg-type]


def sip_error_meta(sip_code: int, status: str | None = None, *, message: str | None = None) -> dict[str, str]:
    """The Twirp meta LiveKit attaches to a SIP failure.

    Keys: ``sip_status_code``, ``sip_status`` and ``error_details`` (the gRPC status with the SIPStatus).
    """
    st = _sip_status(sip_code, status)
    message = message or f"sip status: {sip_code}: {st.status}"
    return {
        "sip_status_code": str(sip_code),
        "sip_status": st.status or SIPStatusCode.Name(sip_code),
        "error_details": error_details(sip_twirp_code(sip_code), message, st),
    }


def dial_error(sip_code: int, status: str | None = None) -> TwirpError:
    """What ``CreateSIPParticipant`` answers when the callee's side rejects the INVITE."""
    st = _sip_status(sip_code, status)
    prefix = "INVITE failed" if sip_code in _INVITE_FAILED_CODES else "unexpected status from INVITE response"
    msg = f"{prefix}: sip status: {sip_code}: {st.status}"
    return TwirpError(sip_twirp_code(sip_code), msg, sip_error_meta(sip_code, st.status, message=msg))


def no_answer_error() -> TwirpError:
    """What ``CreateSIPParticipant(wait_until_answered=True)`` answers when the ring window passes.

    livekit/sip cancels the INVITE transaction and returns ``psrpc.Canceled("canceled")``: no SIP
    status is attached, so the Python client raises a plain ``ServerError``, not a ``SipCallError``.
    """
    return TwirpError("canceled", "canceled")


def transfer_error(transfer_id: str, reason: int, sip_code: int | None = None, status: str | None = None) -> TwirpError:
    """A failed ``TransferSIPParticipant``, with the meta the client's ``SipCallError`` reads."""
    reason_name = SIPTransferReason.Name(reason)
    detail = SIPTransferError(transfer_id=transfer_id, reason=reason)  # type: ignore[arg-type]
    meta = {"sip_transfer_id": transfer_id, "sip_transfer_reason": reason_name}
    if sip_code is not None:
        st = _sip_status(sip_code, status)
        detail.sip_status.CopyFrom(st)
        code = sip_twirp_code(sip_code)
        msg = f"transfer failed: sip status: {sip_code}: {st.status}"
        meta.update(sip_status_code=str(sip_code), sip_status=st.status)
    else:
        by_reason = {"STR_RINGING_TIMEOUT": "deadline_exceeded", "STR_CANCELED": "canceled"}
        code = by_reason.get(reason_name, "internal")
        msg = f"transfer failed: {reason_name}"
    meta["error_details"] = error_details(code, msg, detail)
    return TwirpError(code, msg, meta)
