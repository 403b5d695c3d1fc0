"""``LiveKitStandIn``: an aiohttp server speaking LiveKit's Twirp API, on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from livekit.api.access_token import Claims, SIPGrants, VideoGrants
from livekit.protocol.egress import EgressInfo, EgressStatus
from livekit.protocol.models import DisconnectReason, ParticipantInfo, Room, RoomEndReason, TrackInfo
from livekit.protocol.webhook import WebhookEvent

from . import agents_egress, room_service, sip_calls, sip_config  # noqa: F401  (registers the handlers)
from .auth import AuthFailure, CallContext, authenticate
from .errors import TwirpError
from .registry import HANDLERS, METHODS, Method
from .sip_calls import Outcome, admit_inbound_caller
from .state import State
from .webhooks import WebhookDelivery, WebhookSender, build_event

log = logging.getLogger(__name__)

DEFAULT_API_KEY = "devkey"
DEFAULT_API_SECRET = "livekit-standin-secret-0123456789abcdef"
_METHOD_NAMES = {m.name for m in METHODS.values()}


@dataclass
class RecordedRequest:
    """One Twirp call as the stand-in received it."""

    service: str  # e.g. "livekit.SIP"
    method: str  # e.g. "CreateSIPParticipant"
    message: Any  # the decoded request protobuf (None if it could not be decoded)
    claims: Claims | None  # verified token claims; None without a (valid) token
    auth_error: str | None = None  # set when the auth middleware answered 401
    error: TwirpError | None = None  # the Twirp error answered, if any
    response: Any = None  # the response protobuf, on success
    request_id: str | None = None  # X-Livekit-Request-Id (the client keeps it across its retries)

    @property
    def grants(self) -> VideoGrants | None:
        return self.claims.video if self.claims else None

    @property
    def sip_grants(self) -> SIPGrants | None:
        return self.claims.sip if self.claims else None


@dataclass
class _Failure:
    error: TwirpError
    remaining: int


@dataclass
class _Pending:
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)


class LiveKitStandIn:
    """A LiveKit server stand-in for tests: in-memory rooms, SIP, agent dispatch and egress.

    ``auto_webhooks`` sends signed webhooks to ``webhook_url`` as state changes.
    ``missing_grant_code`` is the Twirp code for a token lacking a grant; LiveKit answers
    ``unauthenticated`` (401) "permissions denied" - pass ``"permission_denied"`` for 403.
    """

    def __init__(
        self,
        api_key: str = DEFAULT_API_KEY,
        api_secret: str = DEFAULT_API_SECRET,
        *,
        auto_webhooks: bool = False,
        webhook_url: str | None = None,
        missing_grant_code: str = "unauthenticated",
        enable_remote_unmute: bool = False,
    ) -> None:
        if len(api_secret) < 32:
            raise ValueError("LiveKit requires API secrets of at least 32 characters")
        self.api_key = api_key
        self.api_secret = api_secret
        self.auto_webhooks = auto_webhooks
        self.missing_grant_code = missing_grant_code
        self.enable_remote_unmute = enable_remote_unmute
        self.requests: list[RecordedRequest] = []
        # Outcome per dialed number / transfer target: "answered", "no_answer", "busy", "rejected",
        # "unavailable", "not_found" or a SIP response code such as 603.
        self.dial_outcomes: dict[str, Outcome] = {}
        self.default_dial_outcome: Outcome = sip_calls.ANSWERED
        self.transfer_outcomes: dict[str, Outcome] = {}
        self.default_transfer_outcome: Outcome = sip_calls.ANSWERED
        self.dial_delay = 0.0  # seconds a call rings before its outcome
        # LiveKit's StopEgress answer and its ``egress_ended`` webhook race: awaited after the egress has ended and
        # before StopEgress answers, this decides the order (e.g. ``lambda _: stand_in.deliver_webhooks()``).
        self.before_stop_egress_answers: Callable[[EgressInfo], Awaitable[None]] | None = None
        # The same race for DeleteRoom and the ``participant_left`` webhooks of the people it disconnects: awaited
        # (with the room's name) after the room has closed and before DeleteRoom answers.
        self.before_delete_room_answers: Callable[[str], Awaitable[None]] | None = None
        self.events: list[WebhookEvent] = []  # every state change, whether or not it was sent
        self.state = State(self._on_event)
        self._webhooks = WebhookSender(api_key, api_secret, webhook_url)
        self._failures: dict[str, list[_Failure]] = {}
        self._pending = _Pending()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # -------------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError("LiveKitStandIn is not started")
        return f"http://127.0.0.1:{self._port}"

    async def start(self) -> None:
        await self._webhooks.start()
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        for task in list(self._pending.tasks):
            task.cancel()
        await asyncio.gather(*self._pending.tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self._webhooks.stop()
        self._port = None

    async def __aenter__(self) -> LiveKitStandIn:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # ------------------------------------------------------ test-facing API
    def calls(self, method: str) -> list[Any]:
        """The decoded request messages of every call to ``method`` (e.g. "CreateDispatch")."""
        name = self._method_name(method)
        return [r.message for r in self.requests if r.method == name and r.message is not None]

    def fail(
        self,
        method: str,
        *,
        code: str = "internal",
        msg: str = "injected failure",
        meta: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` (after authentication) with this Twirp error."""
        error = TwirpError(code, msg, meta)
        self._failures.setdefault(self._method_name(method), []).append(_Failure(error, times))

    @property
    def webhook_url(self) -> str | None:
        return self._webhooks.url

    @webhook_url.setter
    def webhook_url(self, url: str | None) -> None:
        self._webhooks.url = url

    @property
    def webhooks(self) -> list[WebhookDelivery]:
        """Every webhook POST made so far, with the receiver's status."""
        return self._webhooks.deliveries

    def webhook_history(self) -> str:
        """Every webhook so far, one short line each (event, room, participant, status): for failure messages."""
        lines = []
        for d in self._webhooks.deliveries:
            ev, who = d.event, d.event.participant
            party = f" {who.identity} ({ParticipantInfo.Kind.Name(who.kind)}" if who.identity else ""
            if who.identity:
                party += f", {DisconnectReason.Name(who.disconnect_reason)})" if who.disconnect_reason else ")"
            lines.append(f"{ev.event} {ev.room.name}{party} -> {d.status or d.error}")
        return "; ".join(lines)

    async def send_webhook(
        self,
        event: str,
        *,
        room: Room | str | None = None,
        participant: ParticipantInfo | None = None,
        egress_info: EgressInfo | None = None,
        track: TrackInfo | None = None,
        id: str | None = None,
        url: str | None = None,
    ) -> int | None:
        """POST one signed webhook now and return the receiver's HTTP status."""
        if isinstance(room, str):
            room = self.state.room_info(room) if room in self.state.rooms else Room(name=room)
        ev = build_event(event, room=room, participant=participant, egress_info=egress_info, track=track, id=id)
        return await self._webhooks.send(ev, url)

    async def deliver_webhooks(self) -> None:
        """Wait for every queued webhook to be delivered."""
        await self._webhooks.drain()

    async def settle(self) -> None:
        """Wait for calls still ringing and for every queued webhook to be delivered."""
        while self._pending.tasks:
            await asyncio.gather(*list(self._pending.tasks), return_exceptions=True)
        await self._webhooks.drain()

    async def add_sip_caller(
        self,
        room: str,
        from_number: str,
        to_number: str,
        *,
        trunk_id: str | None = None,
        call_id: str | None = None,
        identity: str | None = None,
        name: str | None = None,
        attributes: dict[str, str] | None = None,
        dispatch_rule_id: str | None = None,
    ) -> ParticipantInfo:
        """An inbound caller joins ``room`` (created if absent); waits for its webhooks to be delivered."""
        participant = admit_inbound_caller(
            self.state,
            room,
            from_number,
            to_number,
            trunk_id=trunk_id,
            call_id=call_id,
            identity=identity,
            name=name,
            attributes=attributes,
            dispatch_rule_id=dispatch_rule_id,
        )
        await self._webhooks.drain()
        return self._copy(participant)

    async def add_participant(
        self,
        room: str,
        identity: str,
        *,
        kind: int = ParticipantInfo.Kind.STANDARD,
        name: str = "",
        metadata: str = "",
        attributes: dict[str, str] | None = None,
    ) -> ParticipantInfo:
        """Any other participant (an agent: ``kind=ParticipantInfo.Kind.AGENT``) joins ``room``."""
        info = ParticipantInfo(identity=identity, name=name, metadata=metadata, attributes=attributes)
        info.kind = kind  # type: ignore[assignment]
        participant = self.state.join(room, info)
        await self._webhooks.drain()
        return self._copy(participant)

    async def hang_up(
        self, room: str, identity: str, *, reason: int = DisconnectReason.CLIENT_INITIATED
    ) -> ParticipantInfo:
        """The participant leaves (a caller hanging up); ``KeyError`` if it is not in the room."""
        participant = self.state.participant(room, identity)
        if participant is None:
            raise KeyError(f"{identity!r} is not in room {room!r}")
        if sip_calls.ATTR_CALL_STATUS in participant.attributes:
            participant.attributes[sip_calls.ATTR_CALL_STATUS] = "hangup"
        left = self.state.leave(room, identity, reason)
        await self._webhooks.drain()
        assert left is not None
        return self._copy(left)

    async def fail_egress(self, egress_id: str, error: str = "upload failed: access denied") -> EgressInfo:
        """The egress fails mid-recording as LiveKit reports it: ``egress_ended`` with EGRESS_FAILED and the error."""
        info = self.state.end_egress(egress_id, EgressStatus.EGRESS_FAILED, error)
        await self._webhooks.drain()
        return info

    async def close_room(self, room: str, *, reason: int = RoomEndReason.ROOM_END_IDLE_TIMEOUT) -> None:
        """End the room as LiveKit does when it empties out (``room_finished``)."""
        if not self.state.close_room(room, end_reason=reason, disconnect_reason=DisconnectReason.ROOM_CLOSED):
            raise KeyError(f"no room {room!r}")
        await self._webhooks.drain()

    def room(self, name: str) -> Room | None:
        return self.state.room_info(name) if name in self.state.rooms else None

    def participants(self, room: str) -> list[ParticipantInfo]:
        entry = self.state.rooms.get(room)
        return [self._copy(p) for p in entry.participants.values()] if entry else []

    def participant(self, room: str, identity: str) -> ParticipantInfo | None:
        found = self.state.participant(room, identity)
        return self._copy(found) if found else None

    # -------------------------------------------------------------- internals
    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._pending.tasks.add(task)
        task.add_done_callback(self._pending.tasks.discard)

    def _on_event(self, event: WebhookEvent) -> None:
        self.events.append(event)
        if self.auto_webhooks and self._port is not None:
            self._webhooks.enqueue(event)

    @staticmethod
    def _copy(participant: ParticipantInfo) -> ParticipantInfo:
        out = ParticipantInfo()
        out.CopyFrom(participant)
        return out

    @staticmethod
    def _method_name(method: str) -> str:
        name = method.rsplit("/", 1)[-1]
        if name not in _METHOD_NAMES:
            raise ValueError(f"LiveKit has no Twirp method named {method!r}")
        return name

    def _take_failure(self, method: str) -> TwirpError | None:
        queue = self._failures.get(method)
        if not queue:
            return None
        failure = queue[0]
        failure.remaining -= 1
        if failure.remaining <= 0:
            queue.pop(0)
        return failure.error

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        route = request.path.removeprefix("/twirp/") if request.path.startswith("/twirp/") else None
        method = METHODS.get(route) if route else None
        body = await request.read()
        is_json = request.content_type == "application/json"
        request_id = request.headers.get("X-Livekit-Request-Id")
        # 1. the auth middleware, which answers before any routing
        try:
            claims = authenticate(
                request.headers.get("Authorization"),
                request.query.get("access_token"),
                self.api_key,
                self.api_secret,
            )
        except AuthFailure as exc:
            if method is not None:
                message = self._decode(method, body, is_json, quiet=True)
                self.requests.append(
                    RecordedRequest(method.service, method.name, message, None, exc.message, request_id=request_id)
                )
            return web.Response(status=401, text=exc.message)
        # 2. Twirp routing
        invalid_route = {"twirp_invalid_route": f"{request.method} {request.path}"}
        if request.method != "POST":
            msg = f'unsupported method "{request.method}" (only POST is allowed)'
            return self._error_response(TwirpError("bad_route", msg, invalid_route))
        if method is None:
            msg = f'no handler for path "{request.path}"'
            return self._error_response(TwirpError("bad_route", msg, invalid_route))
        if request.content_type not in ("application/protobuf", "application/json"):
            msg = f'unexpected Content-Type: "{request.headers.get("Content-Type", "")}"'
            return self._error_response(TwirpError("bad_route", msg, invalid_route))
        try:
            message = self._decode(method, body, is_json)
        except TwirpError as exc:
            return self._error_response(exc)
        record = RecordedRequest(method.service, method.name, message, claims, request_id=request_id)
        self.requests.append(record)
        # 3. the method
        try:
            injected = self._take_failure(method.name)
            if injected is not None:
                raise injected
            key = f"{method.service}/{method.name}"
            handler = HANDLERS.get(key)
            if handler is None:
                raise TwirpError("unimplemented", f"LiveKitStandIn does not implement {key}")
            response = await handler(CallContext(self, method.service, method.name, claims), message)
        except TwirpError as exc:
            record.error = exc
            return self._error_response(exc)
        except Exception as exc:
            log.exception("LiveKitStandIn: %s/%s failed", method.service, method.name)
            record.error = TwirpError("internal", repr(exc))
            return self._error_response(record.error)
        record.response = response
        if is_json:
            text = json_format.MessageToJson(response, preserving_proto_field_name=True)
            return web.Response(text=text, content_type="application/json")
        return web.Response(body=response.SerializeToString(), content_type="application/protobuf")

    @staticmethod
    def _decode(method: Method, body: bytes, is_json: bool, *, quiet: bool = False) -> Message | None:
        message = method.request_type()
        try:
            if is_json:
                json_format.Parse(body or b"{}", message, ignore_unknown_fields=True)
            else:
                message.ParseFromString(body)
        except (DecodeError, json_format.ParseError) as exc:
            if quiet:
                return None
            kind = "json" if is_json else "protobuf"
            raise TwirpError("malformed", f"the {kind} request could not be decoded") from exc
        return message

    @staticmethod
    def _error_response(error: TwirpError) -> web.Response:
        return web.json_response(error.to_json(), status=error.http_status)
