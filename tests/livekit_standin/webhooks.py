"""Signed webhooks, built and delivered the way LiveKit does.

The body is the protobuf-JSON of ``livekit.WebhookEvent``; ``Authorization`` carries a JWT (no
"Bearer") signed with the API secret whose ``sha256`` claim is the base64 SHA-256 of the body;
the content type is ``application/webhook+json``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import hashlib
import logging
import time
from dataclasses import dataclass

import aiohttp
from google.protobuf.json_format import MessageToJson
from livekit.api import AccessToken
from livekit.protocol.egress import EgressInfo
from livekit.protocol.models import ParticipantInfo, Room, TrackInfo
from livekit.protocol.webhook import WebhookEvent

from . import ids

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/webhook+json"


def build_event(
    event: str,
    *,
    room: Room | None = None,
    participant: ParticipantInfo | None = None,
    egress_info: EgressInfo | None = None,
    track: TrackInfo | None = None,
    id: str | None = None,
    room_end_reason: int = 0,
) -> WebhookEvent:
    """A ``WebhookEvent`` holding copies of the given messages (a snapshot of this moment)."""
    ev = WebhookEvent(event=event, id=id or ids.new_id(ids.WEBHOOK_EVENT), created_at=int(time.time()))
    if room is not None:
        ev.room.CopyFrom(room)
    if participant is not None:
        ev.participant.CopyFrom(participant)
    if egress_info is not None:
        ev.egress_info.CopyFrom(egress_info)
    if track is not None:
        ev.track.CopyFrom(track)
    if room_end_reason:
        ev.room_end_reason = room_end_reason  # type: ignore[assignment]
    return ev


def sign(body: str, api_key: str, api_secret: str) -> str:
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    token = AccessToken(api_key, api_secret).with_sha256(digest).with_ttl(datetime.timedelta(minutes=5))
    return token.to_jwt()


@dataclass
class WebhookDelivery:
    """One webhook POST: the event, where it went, and the receiver's HTTP status (None if unreachable)."""

    event: WebhookEvent
    url: str | None
    status: int | None
    error: str | None = None


class WebhookSender:
    """Signs and POSTs webhooks; automatic ones go through a queue, delivered in order."""

    def __init__(self, api_key: str, api_secret: str, url: str | None = None) -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.url = url
        self.deliveries: list[WebhookDelivery] = []
        self._queue: asyncio.Queue[WebhookEvent] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._worker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._run(), name="livekit-standin-webhooks")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def enqueue(self, event: WebhookEvent) -> None:
        if self._queue is None:
            raise RuntimeError("LiveKitStandIn is not started")
        self._queue.put_nowait(event)

    async def drain(self) -> None:
        """Wait until every queued webhook has been delivered (or failed)."""
        if self._queue is not None:
            await self._queue.join()

    async def send(self, event: WebhookEvent, url: str | None = None) -> int | None:
        url = url or self.url
        if self._session is None:
            raise RuntimeError("LiveKitStandIn is not started")
        if not url:
            raise RuntimeError("no webhook URL: set LiveKitStandIn.webhook_url")
        body = MessageToJson(event)
        headers = {"Authorization": sign(body, self.api_key, self.api_secret), "Content-Type": CONTENT_TYPE}
        try:
            async with self._session.post(url, data=body.encode(), headers=headers) as resp:
                await resp.read()
                self.deliveries.append(WebhookDelivery(event, url, resp.status))
                return resp.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            self.deliveries.append(WebhookDelivery(event, url, None, repr(exc)))
            raise

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            event = await self._queue.get()
            try:
                if self.url:
                    await self.send(event)
                else:
                    self.deliveries.append(WebhookDelivery(event, None, None, "no webhook_url set"))
            except Exception as exc:  # keep delivering later events, like the real notifier
                log.warning("webhook %s to %s failed: %r", event.event, self.url, exc)
            finally:
                self._queue.task_done()
