"""``TwilioStandIn``: a real HTTP server speaking Twilio's REST API 2010-04-01 on 127.0.0.1."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Self

import httpx
from aiohttp import BasicAuth, web

from tests.support.media_stream_client import TwilioMediaStream
from tests.twilio_standin import calls, numbers
from tests.twilio_standin.dialing import CallScript
from tests.twilio_standin.resources import (
    ACCOUNT_SID,
    FORM,
    FORM_MULTI,
    AvailableNumber,
    IncomingNumber,
    InjectedFailure,
    RecordedRequest,
    TwilioFault,
    default_inventory,
    error_body,
    formatted,
    new_sid,
    not_found,
)
from tests.twilio_standin.streams import StreamPlayer, StreamRouter
from tests.twilio_standin.traffic import CallRecord, MessageRecord
from tests.twilio_standin.webhooks import SentWebhook

Handler = Callable[["TwilioStandIn", web.Request], Awaitable[web.Response]]
_ACCOUNT = "/2010-04-01/Accounts/{account_sid}"
ROUTES: list[tuple[str, str, Handler, str]] = [
    (
        "GET",
        "/AvailablePhoneNumbers/{country}/{number_type}.json",
        numbers.search_available,
        "search_available",
    ),
    ("GET", "/IncomingPhoneNumbers.json", numbers.list_incoming, "list_numbers"),
    ("POST", "/IncomingPhoneNumbers.json", numbers.buy_number, "buy_number"),
    ("GET", "/IncomingPhoneNumbers/{sid}.json", numbers.get_incoming, "get_number"),
    ("POST", "/IncomingPhoneNumbers/{sid}.json", numbers.update_incoming, "update_number"),
    ("DELETE", "/IncomingPhoneNumbers/{sid}.json", numbers.release_incoming, "release_number"),
    ("GET", "/Calls.json", calls.list_calls, "list_calls"),
    ("POST", "/Calls.json", calls.create_call, "create_call"),
    ("GET", "/Calls/{sid}.json", calls.get_call, "get_call"),
    ("POST", "/Calls/{sid}.json", calls.update_call, "update_call"),
    ("GET", "/Messages.json", calls.list_messages, "list_messages"),
    ("POST", "/Messages.json", calls.create_message, "create_message"),
    ("GET", "/Messages/{sid}.json", calls.get_message, "get_message"),
]
OPERATIONS = frozenset(name for *_, name in ROUTES)


class TwilioStandIn(StreamPlayer):
    """Accounts (SID → auth token), an inventory of numbers, owned numbers, calls and messages.

    Every request is kept in ``requests``; failures are injected with ``fail``; webhooks are sent
    with ``post_webhook``, ``send_status_callback``, ``incoming_call`` and ``incoming_sms``.
    """

    def __init__(
        self,
        accounts: Mapping[str, str] | None = None,
        *,
        inventory: Iterable[AvailableNumber] | None = None,
        webhook_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.accounts: dict[str, str] = dict(accounts or {})
        self.api_keys: dict[str, tuple[str, str]] = {}  # API key SID -> (account SID, secret)
        stock = default_inventory() if inventory is None else list(inventory)
        self.available: dict[str, AvailableNumber] = {n.phone_number: n for n in stock}
        self.incoming: dict[str, IncomingNumber] = {}
        self.released: list[IncomingNumber] = []
        self.calls: dict[str, CallRecord] = {}
        self.messages: dict[str, MessageRecord] = {}
        self.verified_caller_ids: dict[str, set[str]] = {}
        self.requests: list[RecordedRequest] = []
        self.webhooks: list[SentWebhook] = []
        self.amd_answers: dict[str, tuple[str, int]] = {}  # callee -> what its AsyncAmd callback says
        self.webhook_transport = webhook_transport
        self._failures: list[InjectedFailure] = []
        self.delays: dict[str, float] = {}  # operation -> seconds its answer is held back (after taking effect)
        self.dial_plan: dict[str, CallScript] = {}  # outbound calls to these numbers play out on their own
        self.default_script: CallScript | None = None  # ...and to every other number, when set
        self.call_tasks: set[asyncio.Task[None]] = set()
        self.stream_router: StreamRouter | None = None  # set to let the stand-in open calls' media streams
        self.connect_actions = True
        self.streams: dict[str, list[TwilioMediaStream]] = {}  # call SID -> the streams opened, in order
        self._new_stream: asyncio.Condition | None = None
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    # --- set-up by tests -------------------------------------------------------------------

    def add_account(self, account_sid: str, auth_token: str) -> None:
        self.accounts[account_sid] = auth_token

    def add_api_key(self, account_sid: str, key_sid: str, secret: str) -> None:
        """An API key (``SK…``) authenticating as ``account_sid``."""
        self.api_keys[key_sid] = (account_sid, secret)

    def add_available(self, phone_number: str, **fields: Any) -> AvailableNumber:
        """Put a number in the inventory (fields of ``AvailableNumber``: iso_country, region, sms…)."""
        number = AvailableNumber(phone_number, **fields)
        self.available[phone_number] = number
        return number

    def add_incoming(self, account_sid: str, phone_number: str, **config: str) -> IncomingNumber:
        """Give an account a number without buying it; ``config`` uses Twilio's names (VoiceUrl…)."""
        stock = self.available.pop(phone_number, None) or AvailableNumber(phone_number, mms=True)
        number = IncomingNumber(
            sid=new_sid("PN"),
            account_sid=account_sid,
            phone_number=phone_number,
            friendly_name=formatted(phone_number),
            capabilities={"voice": stock.voice, "sms": stock.sms, "mms": stock.mms, "fax": False},
            iso_country=stock.iso_country,
            region=stock.region,
            locality=stock.locality,
            postal_code=stock.postal_code,
        )
        number.apply(config)
        self.incoming[number.sid] = number
        return number

    def verify_caller_id(self, account_sid: str, phone_number: str) -> None:
        """Let the account call from a number it does not own (a verified outgoing caller ID)."""
        self.verified_caller_ids.setdefault(account_sid, set()).add(phone_number)

    def fail(
        self,
        match: str,
        status: int = 500,
        code: int = 20500,
        message: str = "An internal server error has occurred",
        times: int | None = 1,
        *,
        method: str | None = None,
        after: bool = False,
        headers: dict[str, str] | None = None,
    ) -> InjectedFailure:
        """Answer the next ``times`` (None: every) matching requests with a Twilio error.

        ``match`` is an operation name (``buy_number``, ``create_call``…, see ``OPERATIONS``) or a
        suffix of the path (``/Calls.json``). With ``after=True`` the request takes effect and only
        its answer is lost, as when a response times out.
        """
        failure = InjectedFailure(match, status, code, message, times, method, after, dict(headers or {}))
        self._failures.append(failure)
        return failure

    def clear_failures(self) -> None:
        self._failures.clear()

    def requests_for(self, operation: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.operation == operation]

    def numbers_of(self, account_sid: str) -> list[IncomingNumber]:
        return [n for n in self.incoming.values() if n.account_sid == account_sid]

    def set_call_status(self, call_sid: str, status: str, duration: int | None = None) -> CallRecord:
        """Move a call along without sending a callback (``send_status_callback`` does both)."""
        call = self.calls[call_sid]
        call.set_status(status, duration)
        return call

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: what ``Settings.twilio_api_base_url`` points at."""
        if self._url is None:
            raise RuntimeError("TwilioStandIn is not started")
        return self._url

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware])
        for method, path, handler, name in ROUTES:
            app.router.add_route(method, _ACCOUNT + path, self._bind(handler), name=name)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self._url = f"http://{host}:{port}"

    async def stop(self) -> None:
        for task in list(self.call_tasks):
            task.cancel()
        await self.close_streams()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._url = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # --- request handling --------------------------------------------------------------------

    def _bind(self, handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def bound(request: web.Request) -> web.Response:
            return await handler(self, request)

        return bound

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        form: dict[str, str] = {}
        form_multi: dict[str, list[str]] = {}
        if request.method == "POST":
            for key, value in (await request.post()).items():
                if isinstance(value, str):
                    form.setdefault(key, value)
                    form_multi.setdefault(key, []).append(value)
        query: dict[str, str] = {}
        everything: dict[str, list[str]] = {}
        for key, value in request.query.items():
            query.setdefault(key, value)
            everything.setdefault(key, []).append(value)
        for key, values in form_multi.items():
            everything.setdefault(key, []).extend(values)
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=query,
            form=form,
            multi=everything,
            headers=dict(request.headers),
            operation=request.match_info.route.name,
        )
        self.requests.append(record)
        request[FORM], request[FORM_MULTI] = form, form_multi
        try:
            response = await self._dispatch(request, handler, record)
        except TwilioFault as fault:
            response = web.json_response(fault.body(), status=fault.status)
            if fault.status == 401:
                response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
        record.status = response.status
        return response

    async def _dispatch(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
        record: RecordedRequest,
    ) -> web.StreamResponse:
        account_sid = self._authenticate(request)
        record.account_sid = request[ACCOUNT_SID] = account_sid
        path_account = request.match_info.get("account_sid")
        if path_account is not None and path_account != account_sid:
            raise not_found(request.path)
        failure = self._take_failure(request, record.operation)
        if failure is not None and not failure.after:
            return self._failure_response(failure)
        try:
            response = await handler(request)
        except web.HTTPNotFound:
            raise not_found(request.path) from None
        except web.HTTPMethodNotAllowed:
            raise TwilioFault(405, 20004, "Method not allowed") from None
        if failure is not None and response.status < 400:
            return self._failure_response(failure)
        if (delay := self.delays.get(record.operation or "")) is not None:
            await asyncio.sleep(delay)  # a slow answer: the request already took effect
        return response

    def _authenticate(self, request: web.Request) -> str:
        header = request.headers.get("Authorization", "")
        try:
            auth = BasicAuth.decode(header)
        except ValueError:
            raise TwilioFault(401, 20003, "Authenticate") from None
        token = self.accounts.get(auth.login)
        if token is not None and hmac.compare_digest(token.encode(), auth.password.encode()):
            return auth.login
        key = self.api_keys.get(auth.login)
        if key is not None and hmac.compare_digest(key[1].encode(), auth.password.encode()):
            return key[0]
        raise TwilioFault(401, 20003, "Authenticate")

    def _take_failure(self, request: web.Request, operation: str | None) -> InjectedFailure | None:
        for failure in self._failures:
            if failure.matches(request.method, request.path, operation):
                if failure.remaining is not None:
                    failure.remaining -= 1
                    if failure.remaining <= 0:
                        self._failures.remove(failure)
                return failure
        return None

    @staticmethod
    def _failure_response(failure: InjectedFailure) -> web.Response:
        response = web.json_response(error_body(failure.status, failure.code, failure.message), status=failure.status)
        response.headers.update(failure.headers)
        return response
