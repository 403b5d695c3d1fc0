"""Graceful drain of a media process (``SIGTERM``): a deploy drops no call.

1. The process stops taking new media streams and console sessions: their sockets are refused before the
   handshake completes and ``/healthz`` answers 503, so the carrier (and a load balancer) reach another media
   process.
2. The calls it carries go on, until each ends or ``TELEPHONY_MEDIA_DRAIN_SECONDS`` has passed.
3. Each media stream still open is then *handed over*: its ``carry_media`` activity ends with ``MediaHandedOver``
   and the call's workflow takes the same path as when a media process dies (the carrier's REST API redirects
   the live call to a new stream, a fresh agent on another process resumes the conversation), only without
   waiting for a heartbeat to time out. The old stream's agent keeps talking until the carrier closes that
   stream, so the caller hears no silence beyond the redirect itself.
4. Once the carrier closed them (or ``HANDOVER_CLOSE_SECONDS`` passed), the process exits 0.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Protocol

log = logging.getLogger(__name__)

HANDOVER_CLOSE_SECONDS = 30.0  # how long a handed-over stream has to be closed by the carrier's redirect
TRY_AGAIN_LATER = 1013  # close code of a socket refused while draining (before the handshake: HTTP 403)


class HandOver(Protocol):
    def hand_over(self) -> bool:
        """Give the call back to its workflow to move elsewhere; False if the stream had already ended."""


class MediaDrain:
    """The sockets a media process carries, and whether it still takes new ones."""

    def __init__(self) -> None:
        self.draining = False
        self._sockets = 0
        self._handing_over: dict[str, HandOver] = {}
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def sockets(self) -> int:
        return self._sockets

    @contextmanager
    def socket(self) -> Iterator[None]:
        """One media stream or console session, for as long as its socket is open (check ``draining`` first)."""
        self._sockets += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._sockets -= 1
            if self._sockets == 0:
                self._idle.set()

    async def run(self, limit_seconds: float, live: Callable[[], Mapping[str, HandOver]]) -> int:
        """Drain: wait for the calls to end (up to ``limit_seconds``), hand the media streams still open over,
        wait for the carrier to close them. Returns how many streams were handed over."""
        self.draining = True
        log.info("media server draining", extra={"sockets": self._sockets, "limit_seconds": limit_seconds})
        if await self._wait_idle(limit_seconds):
            log.info("media server drained: every call ended here")
            return 0
        handed = [stream_id for stream_id, stream in live().items() if stream.hand_over()]
        log.info("drain limit reached: calls handed over to another media server", extra={"streams": len(handed)})
        if not await self._wait_idle(HANDOVER_CLOSE_SECONDS):
            log.warning("handed-over streams still open: closing them", extra={"sockets": self._sockets})
        return len(handed)

    async def _wait_idle(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=max(seconds, 0.0))
        except TimeoutError:
            return False
        return True
