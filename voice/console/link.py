"""Everything the server sends on one console socket goes through one queue and one sender task, so agent
audio, segment ends, clears and transcripts reach the client in the order they were produced."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from pydantic import BaseModel

from models.console_protocol import encode

SendText = Callable[[str], Awaitable[None]]
SendBytes = Callable[[bytes], Awaitable[None]]


class ConsoleLink:
    def __init__(self, send_text: SendText, send_bytes: SendBytes) -> None:
        self._outbox: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self._sender = asyncio.create_task(self._send_all(send_text, send_bytes))

    def message(self, message: BaseModel) -> None:
        self._outbox.put_nowait(encode(message))

    def audio(self, pcm: bytes) -> None:
        self._outbox.put_nowait(pcm)

    async def _send_all(self, send_text: SendText, send_bytes: SendBytes) -> None:
        while (item := await self._outbox.get()) is not None:
            try:
                await (send_bytes(item) if isinstance(item, bytes) else send_text(item))
            except Exception:  # the client is gone: nothing more can be delivered
                return

    async def aclose(self) -> None:
        """Deliver what is queued (briefly), then stop."""
        self._outbox.put_nowait(None)
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self._sender), timeout=2)
        self._sender.cancel()
