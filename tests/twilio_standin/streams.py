"""Twilio's side of ``<Connect><Stream>``, for calls whose TwiML the stand-in is asked to follow.

``connect_stream`` opens the call's media stream where the TwiML says (``stream_router`` maps the public
``wss://`` URL to the media server a load balancer would pick), signed with the account's auth token as Twilio
signs it, and plays the caller (``TwilioMediaStream``). Then, as Twilio does:
- the stream's socket closes while the call is up (the media server died or hung up): ``<Connect>`` ends, so the
  stand-in requests its ``action`` URL (Twilio's standard call parameters, signed) and follows the TwiML it gets
  back: a new ``<Connect><Stream>`` is opened at once, ``<Hangup/>`` (or nothing to do) ends the call;
- a REST redirect (``Calls/{sid}.json`` with ``Twiml``) ends the current stream (``stop``, then the socket is
  closed) and follows the new TwiML; ``<Connect>``'s action is not requested then;
- ``hang_up`` is the caller hanging up: ``stop``, the call completed, no action.
Each move is kept in the call's ``stream_moves`` with when it happened (benches time re-attaches with them).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from tests.support.media_stream_client import TwilioMediaStream
from tests.twilio_standin.resources import API_VERSION
from tests.twilio_standin.traffic import CallRecord, StreamMove
from tests.twilio_standin.webhooks import WebhookSender, twilio_signature

StreamRouter = Callable[[str], str]  # the TwiML's wss:// URL -> where a media server answers it


@dataclass(frozen=True)
class ConnectStream:
    """``<Connect [action method]><Stream url><Parameter…/></Stream></Connect>`` of a TwiML document."""

    url: str
    parameters: dict[str, str]
    action: str | None
    method: str


def connect_stream_of(twiml: str) -> ConnectStream | None:
    connect = ET.fromstring(twiml).find("./Connect")
    stream = connect.find("Stream") if connect is not None else None
    if connect is None or stream is None:
        return None
    parameters = {str(p.get("name")): str(p.get("value")) for p in stream.findall("Parameter")}
    return ConnectStream(str(stream.get("url")), parameters, connect.get("action"), connect.get("method", "POST"))


class StreamPlayer(WebhookSender):
    """Mixin of ``TwilioStandIn``: plays Twilio's side of the media streams of the calls it is asked to connect."""

    stream_router: StreamRouter | None
    connect_actions: bool  # False: behave as a carrier without <Connect action> (benches compare the two)
    streams: dict[str, list[TwilioMediaStream]]
    call_tasks: set[asyncio.Task[None]]
    _new_stream: asyncio.Condition | None

    async def connect_stream(self, call_sid: str, twiml: str) -> TwilioMediaStream:
        """The call executes ``twiml`` (its answer): its ``<Connect><Stream>`` is opened and started."""
        call = self.calls[call_sid]
        connect = connect_stream_of(twiml)
        if connect is None or self.stream_router is None:
            raise ValueError("no <Connect><Stream> to open, or no stream_router to reach it")
        call.twiml = twiml
        if call.status != "in-progress":
            call.set_status("in-progress")
        token = self._token(call.account_sid)
        phone = TwilioMediaStream(
            self.stream_router(connect.url),
            signature=twilio_signature(connect.url, {}, token),
            account_sid=call.account_sid,
            parameters=connect.parameters,
            call_sid=call.sid,
        )
        await phone.__aenter__()
        await phone.start()
        self.streams.setdefault(call_sid, []).append(phone)
        self._spawn(self._watch(call, phone, connect))
        async with self._stream_condition():
            self._stream_condition().notify_all()
        return phone

    async def next_stream(self, call_sid: str, after: int, within: float = 60.0) -> TwilioMediaStream:
        """The call's stream number ``after`` (0 the first), once the stand-in has opened it."""
        condition = self._stream_condition()
        async with condition:
            await asyncio.wait_for(
                condition.wait_for(lambda: len(self.streams.get(call_sid, [])) > after), timeout=within
            )
        return self.streams[call_sid][after]

    async def hang_up(self, call_sid: str) -> None:
        """The caller hangs up: ``stop`` on the live stream, the call completed (no ``<Connect>`` action)."""
        call = self.calls[call_sid]
        call.set_status("completed")
        if (phone := self._live_stream(call_sid)) is not None:
            with contextlib.suppress(Exception):
                await phone.stop()
            await phone.__aexit__(None, None, None)

    def follow_redirect(self, call: CallRecord, twiml: str) -> None:
        """A REST redirect of a call whose streams the stand-in plays: end the live stream (if its socket is still
        open), follow the new TwiML (also when the call sat in the ``<Pause>`` after a stream that died)."""
        if call.sid in self.streams:
            call.stream_moves.append(StreamMove("redirect", time.monotonic(), 200, twiml))
            self._spawn(self._redirected(call, twiml))

    async def close_streams(self) -> None:
        for phones in self.streams.values():
            for phone in phones:
                await phone.__aexit__(None, None, None)

    # ------------------------------------------------------------------------------------- internals
    async def _redirected(self, call: CallRecord, twiml: str) -> None:
        phone = self._live_stream(call.sid)
        if phone is not None:
            with contextlib.suppress(Exception):
                await phone.stop()  # Twilio ends the stream it leaves
            await phone.__aexit__(None, None, None)
        if connect_stream_of(twiml) is not None and call.active:
            await self.connect_stream(call.sid, twiml)

    async def _watch(self, call: CallRecord, phone: TwilioMediaStream, connect: ConnectStream) -> None:
        """When the socket closes under a live call, ``<Connect>`` ends: request its action, follow the answer."""
        await phone.gone.wait()
        if phone.stopped or not call.active or self.streams[call.sid][-1] is not phone:
            return  # the caller hung up, or the call moved on by a redirect
        if connect.action is None or not self.connect_actions:
            return  # Twilio goes on to the next verb (our TwiML's <Pause>): silence until a redirect
        params = {
            "AccountSid": call.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": call.sid,
            "CallStatus": call.status,
            "Called": call.to,
            "Caller": call.from_,
            "Direction": call.direction,
            "From": call.from_,
            "To": call.to,
        }
        requested_at = time.monotonic()
        response = await self.post_webhook(connect.action, params, self._token(call.account_sid), method=connect.method)
        call.stream_moves.append(StreamMove("action", requested_at, response.status_code, response.text))
        if response.status_code != 200:
            call.set_status("failed")  # Twilio: "an application error has occurred", and the call ends
            return
        call.twiml = response.text
        if connect_stream_of(response.text) is not None:
            await self.connect_stream(call.sid, response.text)
        else:
            call.set_status("completed")  # <Hangup/>, or a document with nothing left to do

    def _live_stream(self, call_sid: str) -> TwilioMediaStream | None:
        phones = self.streams.get(call_sid, [])
        return phones[-1] if phones and not phones[-1].gone.is_set() else None

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self.call_tasks.add(task)
        task.add_done_callback(self.call_tasks.discard)

    def _stream_condition(self) -> asyncio.Condition:
        if self._new_stream is None:
            self._new_stream = asyncio.Condition()
        return self._new_stream
