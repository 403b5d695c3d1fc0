"""Plays Twilio's side of a media stream: sends a caller's audio in 20 ms μ-law frames, in real time, with
silence between utterances as a phone line does; receives the agent's audio and echoes each mark once the
audio before it has had time to play, and drops unplayed audio on ``clear``."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from websockets.asyncio.client import ClientConnection, connect

from voice.speech.audio import resample_int16, ulaw_decode, ulaw_encode

FRAME = 160  # 20 ms at 8 kHz
SILENCE = b"\xff" * FRAME  # μ-law silence


@dataclass
class AgentSpeech:
    """Agent audio between two marks (one reply segment), with when its first byte arrived."""

    first_audio_at: float
    ulaw: bytearray = field(default_factory=bytearray)
    mark: str | None = None

    def pcm8k(self) -> np.ndarray:
        return ulaw_decode(bytes(self.ulaw))


class TwilioMediaStream:
    def __init__(
        self,
        url: str,
        *,
        signature: str,
        account_sid: str,
        parameters: dict[str, str],
        call_sid: str | None = None,
    ) -> None:
        self.url = url
        self.signature = signature
        self.account_sid = account_sid
        self.parameters = parameters
        self.stream_sid = "MZ" + uuid.uuid4().hex
        self.call_sid = call_sid or "CA" + uuid.uuid4().hex
        self.segments: list[AgentSpeech] = []
        self.clears = 0
        self.closed: tuple[int, str] | None = None
        self.stopped = False  # we sent ``stop`` (the caller hung up, or the carrier moved the call)
        self.gone = asyncio.Event()  # the socket is closed, whichever side closed it
        self.last_caller_audio_at = 0.0
        self.started_at = 0.0  # when ``start`` was sent
        self._ws: ClientConnection | None = None
        self._sequence = 0
        self._speaking: list[bytes] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._current: AgentSpeech | None = None
        self._playout_until = 0.0
        self._new_segment = asyncio.Event()
        self._done: asyncio.Future[None] | None = None

    async def __aenter__(self) -> TwilioMediaStream:
        self._ws = await connect(self.url, additional_headers={"X-Twilio-Signature": self.signature})
        self._tasks = [asyncio.create_task(self._receive()), asyncio.create_task(self._line())]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        if self._ws is not None:
            await self._ws.close()

    async def send(self, message: dict[str, Any]) -> None:
        assert self._ws is not None
        self._sequence += 1
        await self._ws.send(json.dumps({"sequenceNumber": str(self._sequence), **message}))

    async def start(self) -> None:
        self.started_at = time.monotonic()
        await self.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self.send(
            {
                "event": "start",
                "streamSid": self.stream_sid,
                "start": {
                    "streamSid": self.stream_sid,
                    "accountSid": self.account_sid,
                    "callSid": self.call_sid,
                    "tracks": ["inbound"],
                    "customParameters": self.parameters,
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                },
            }
        )

    async def say(self, pcm: np.ndarray, sample_rate: int) -> None:
        """The caller says ``pcm``; returns once its last frame is sent (in real time)."""
        ulaw = ulaw_encode(resample_int16(pcm, sample_rate, 8000))
        frames = [ulaw[i : i + FRAME].ljust(FRAME, b"\xff") for i in range(0, len(ulaw), FRAME)]
        done = asyncio.get_running_loop().create_future()
        self._speaking.extend(frames)
        self._speaking.append(b"")  # end marker
        self._done = done
        await done

    async def dtmf(self, digit: str) -> None:
        await self.send(
            {"event": "dtmf", "streamSid": self.stream_sid, "dtmf": {"track": "inbound_track", "digit": digit}}
        )

    async def stop(self) -> None:
        self.stopped = True
        await self.send(
            {
                "event": "stop",
                "streamSid": self.stream_sid,
                "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
            }
        )

    async def next_reply(self, within: float = 45.0, after: int | None = None) -> AgentSpeech:
        """The next agent segment, once it is complete (its mark has arrived): the first one begun after segment
        ``after`` (default: after those already begun now; pass the count taken before what the agent answers,
        or a quick answer that completed meanwhile is missed)."""
        seen = len(self.segments) if after is None else after
        deadline = time.monotonic() + within
        while True:
            complete = [s for s in self.segments[seen:] if s.mark is not None]
            if complete:
                return complete[0]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no complete agent reply in time")
            self._new_segment.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_segment.wait(), timeout=min(remaining, 0.5))

    async def _line(self) -> None:
        """20 ms frames forever: the caller's speech when there is some, else line silence."""
        next_at = time.monotonic()
        while True:
            frame = self._speaking.pop(0) if self._speaking else SILENCE
            if frame == b"":
                self.last_caller_audio_at = time.monotonic()
                if self._done is not None and not self._done.done():
                    self._done.set_result(None)
                continue
            payload = base64.b64encode(frame).decode()
            await self.send(
                {"event": "media", "streamSid": self.stream_sid, "media": {"track": "inbound", "payload": payload}}
            )
            next_at += 0.02
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def _receive(self) -> None:
        assert self._ws is not None
        try:
            async for raw in self._ws:
                message = json.loads(raw)
                event = message.get("event")
                if event == "media":
                    audio = base64.b64decode(message["media"]["payload"])
                    if self._current is None:
                        self._current = AgentSpeech(first_audio_at=time.monotonic())
                        self.segments.append(self._current)
                        self._playout_until = max(self._playout_until, time.monotonic())
                    self._current.ulaw.extend(audio)
                    self._playout_until += len(audio) / 8000
                elif event == "mark":
                    segment, self._current = self._current, None
                    delay = max(0.0, self._playout_until - time.monotonic())
                    self._tasks.append(asyncio.create_task(self._played(message["mark"]["name"], segment, delay)))
                elif event == "clear":
                    self.clears += 1
                    self._current = None
                    self._playout_until = time.monotonic()
        except Exception:
            pass
        finally:
            if self._ws is not None and self._ws.close_code is not None:
                self.closed = (self._ws.close_code, self._ws.close_reason or "")
            self.gone.set()

    async def _played(self, name: str, segment: AgentSpeech | None, delay: float) -> None:
        """Twilio echoes a mark once the audio sent before it has played out."""
        await asyncio.sleep(delay)
        if segment is not None:
            segment.mark = name
        self._new_segment.set()
        with contextlib.suppress(Exception):  # the stream may be closed by then
            await self.send({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})
