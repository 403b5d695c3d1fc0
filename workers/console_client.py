"""A console call from Python, over the same WebSocket as the page (``models.console_protocol``): used by
``telephony call``, the tests and the bench.

The line runs in real time like a microphone: 20 ms frames of the caller's speech when there is some, silence
otherwise. Agent audio is "played" in real time too: each ``segment_end`` is answered with ``played`` once the
audio before it would have finished playing, and ``clear`` drops what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from websockets.asyncio.client import ClientConnection, connect

from models import console_protocol as p

FRAME_BYTES = p.FRAME_SAMPLES * 2
SILENCE = bytes(FRAME_BYTES)


@dataclass
class AgentReply:
    """One thing the agent said: its words, and the turn's latency when it answered the caller."""

    text: str
    latency_ms: float | None = None


@dataclass
class CallRecord:
    ready: p.Ready | None = None
    transcripts: list[p.Transcript] = field(default_factory=list)
    turns: list[p.Turn] = field(default_factory=list)
    ended: p.Ended | None = None
    closed: tuple[int, str] | None = None
    agent_audio_bytes: int = 0
    first_agent_audio_at: list[float] = field(default_factory=list)  # monotonic time of each segment's start
    segments: list[bytearray] = field(default_factory=list)  # each segment's audio (only with ``keep_audio``)


class ConsoleClient:
    def __init__(self, url: str, hello: p.Hello, *, keep_audio: bool = False) -> None:
        """``keep_audio``: keep what the caller hears, segment by segment (tests listen to a flow's prompts)."""
        self.url = url
        self.hello = hello
        self.keep_audio = keep_audio
        self.record = CallRecord()
        self.last_caller_audio_at = 0.0
        self._ws: ClientConnection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._line_task: asyncio.Task[None] | None = None
        self._speaking: list[bytes] = []
        self._spoken: asyncio.Future[None] | None = None
        self._changed = asyncio.Event()
        self._in_segment = False
        self._playout_until = 0.0

    async def __aenter__(self) -> ConsoleClient:
        self._ws = await connect(self.url, max_size=2**20, open_timeout=10)
        await self._ws.send(p.encode(self.hello))
        self._tasks = [asyncio.create_task(self._receive())]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        if self._ws is not None:
            await self._ws.close()

    # ------------------------------------------------------------------------------ waiting
    async def until(self, done: object, within: float) -> None:
        """Wait until ``done()`` is true, the socket closes, or ``within`` seconds pass (TimeoutError)."""
        assert callable(done)
        deadline = time.monotonic() + within
        while not done():
            if self.record.closed is not None:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the agent did not answer in time")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=min(remaining, 0.5))

    async def ready(self, within: float = 30.0) -> p.Ready | None:
        await self.until(lambda: self.record.ready is not None, within)
        if self.record.ready is not None and self._line_task is None:
            self._line_task = asyncio.create_task(self._line())
            self._tasks.append(self._line_task)
        return self.record.ready

    def agent_lines(self) -> list[p.Transcript]:
        return [t for t in self.record.transcripts if t.role == "agent" and t.final]

    async def next_agent_line(self, seen: int, within: float = 30.0) -> p.Transcript | None:
        """The agent's next complete line after the first ``seen`` ones (None if the call closed first)."""
        await self.until(lambda: len(self.agent_lines()) > seen, within)
        lines = self.agent_lines()
        return lines[seen] if len(lines) > seen else None

    async def ask(self, pcm16k: npt.NDArray[np.int16], within: float = 30.0) -> AgentReply | None:
        """Say ``pcm16k`` and wait for the agent's answer and its turn latency."""
        seen, turns = len(self.agent_lines()), len(self.record.turns)
        await self.say(pcm16k)
        line = await self.next_agent_line(seen, within)
        if line is None:
            return None
        with contextlib.suppress(TimeoutError):
            await self.until(lambda: len(self.record.turns) > turns, 6.0)
        turn = self.record.turns[turns] if len(self.record.turns) > turns else None
        return AgentReply(line.text, turn.latency_ms if turn else None)

    # ------------------------------------------------------------------------------ sending
    async def say(self, pcm16k: npt.NDArray[np.int16]) -> None:
        """The caller says ``pcm16k``; returns once its last frame is sent (in real time)."""
        data = pcm16k.astype("<i2").tobytes()
        frames = [data[i : i + FRAME_BYTES].ljust(FRAME_BYTES, b"\0") for i in range(0, len(data), FRAME_BYTES)]
        done = asyncio.get_running_loop().create_future()
        self._speaking.extend(frames)
        self._speaking.append(b"")  # end marker
        self._spoken = done
        await done

    async def send(self, message: p.Dtmf | p.Hangup | p.Played) -> None:
        assert self._ws is not None
        await self._ws.send(p.encode(message))

    async def dtmf(self, digits: str) -> None:
        await self.send(p.Dtmf(type="dtmf", digits=digits))

    async def hang_up(self, within: float = 15.0) -> p.Ended | None:
        await self.send(p.Hangup(type="hangup"))
        await self.until(lambda: self.record.closed is not None, within)  # ``ended``, then the close
        return self.record.ended

    async def _line(self) -> None:
        assert self._ws is not None
        next_at = time.monotonic()
        while True:
            frame = self._speaking.pop(0) if self._speaking else SILENCE
            if frame == b"":
                self.last_caller_audio_at = time.monotonic()
                if self._spoken is not None and not self._spoken.done():
                    self._spoken.set_result(None)
                continue
            try:
                await self._ws.send(frame)
            except Exception:
                return
            next_at += p.FRAME_SAMPLES / p.SAMPLE_RATE
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    # ------------------------------------------------------------------------------ receiving
    async def _receive(self) -> None:
        assert self._ws is not None
        record = self.record
        try:
            async for raw in self._ws:
                if isinstance(raw, bytes):
                    now = time.monotonic()
                    if not self._in_segment:
                        self._in_segment = True
                        record.first_agent_audio_at.append(now)
                        self._playout_until = max(self._playout_until, now)
                        if self.keep_audio:
                            record.segments.append(bytearray())
                    if self.keep_audio:
                        record.segments[-1] += raw
                    record.agent_audio_bytes += len(raw)
                    self._playout_until += len(raw) / 2 / p.SAMPLE_RATE
                    continue
                message = p.parse_server(raw)
                if isinstance(message, p.Ready):
                    record.ready = message
                elif isinstance(message, p.SegmentEnd):
                    self._in_segment = False
                    delay = max(0.0, self._playout_until - time.monotonic())
                    self._tasks.append(asyncio.create_task(self._played(message.segment, delay)))
                elif isinstance(message, p.Clear):
                    self._in_segment = False
                    self._playout_until = time.monotonic()
                elif isinstance(message, p.Transcript):
                    record.transcripts.append(message)
                elif isinstance(message, p.Turn):
                    record.turns.append(message)
                elif isinstance(message, p.Ended):
                    record.ended = message
                self._changed.set()
        except Exception:
            pass
        finally:
            ws = self._ws
            record.closed = (ws.close_code or 1006, ws.close_reason or "")
            self._changed.set()

    async def _played(self, segment: int, delay: float) -> None:
        await asyncio.sleep(delay)
        with contextlib.suppress(Exception):  # the socket may be closed by then
            await self.send(p.Played(type="played", segment=segment))
