"""The agent comes back: kill -9 of the media-stream process carrying a call, over a real carrier media stream
and the carrier stand-in. The workflow notices (the call's carry_media heartbeat stops), redirects the live
carrier leg to a new stream through the carrier's REST API, a fresh agent on another media process picks up
(no second greeting) with the conversation so far, and the call ends ENDED with one timeline."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import numpy as np
import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment
from twilio.request_validator import RequestValidator

from models.calls import CallStateView
from models.enums import CallState, MessageRole
from models.tables import Message
from tests.api.resources import twilio_number
from tests.conftest import SECRET_KEY, Platform, SpaceKeys
from tests.support.media_stream_client import TwilioMediaStream
from tests.support.postgres import free_port
from tests.support.stack import eventually, running_stack
from tests.twilio_standin import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TwilioStandIn
from voice.speech import HibariTTS
from voice.speech.audio import int16_to_float, resample_int16
from voice.speech.whisper_engine import WhisperEngine, get_whisper_engine
from workflows.call_client import CallClient

PUBLIC = "https://telephony.example.com"
STREAM_URL = "wss://telephony.example.com/media/twilio"
READY_TIMEOUT = 90.0
HOURS = "We are open from nine in the morning to five in the evening, Monday to Friday."
PARKING = "Parking is free in the garage behind the building."


@dataclass
class MediaProcess:
    """``python -m workers.cli media`` on its own port, its output in a log file."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path
    _log_file: IO[bytes] = field(repr=False)

    @classmethod
    def start(cls, env: dict[str, str], cwd: Path, name: str) -> MediaProcess:
        port = free_port()
        log = cwd / f"{name}.log"
        log_file = log.open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", "media", "--port", str(port)],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        return cls(port, process, log, log_file)

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/media/twilio"

    async def ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        async with httpx.AsyncClient(timeout=2) as http:
            while True:
                if self.process.poll() is not None:
                    raise AssertionError(f"media process exited:\n{self.output()}")
                try:
                    if (await http.get(f"http://127.0.0.1:{self.port}/healthz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"media process not ready:\n{self.output()}")
                await asyncio.sleep(0.2)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill9(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._log_file.close()


@dataclass
class Line:
    stack: Platform
    space: SpaceKeys
    e164: str
    carrier: TwilioStandIn
    media: list[MediaProcess]


@pytest.fixture
def media_processes() -> Iterator[list[MediaProcess]]:
    started: list[MediaProcess] = []
    yield started
    for media in started:
        media.close()
        print(f"--- {media.log.name} (exit {media.process.returncode})\n{media.output()[-4000:]}")


@pytest.fixture
async def line(
    temporal_env: WorkflowEnvironment,
    tmp_path: Path,
    twilio_standin: TwilioStandIn,
    media_processes: list[MediaProcess],
) -> AsyncIterator[Line]:
    async with running_stack(temporal_env, tmp_path, twilio_api_base_url=twilio_standin.url) as stack:
        assert stack.app is not None
        settings = stack.settings
        env = {k: v for k, v in os.environ.items() if not k.startswith("TELEPHONY_")}
        env.update(
            TELEPHONY_DATABASE_URL=settings.resolved_database_url,
            TELEPHONY_SECRET_KEYS=SECRET_KEY,
            TELEPHONY_TEMPORAL_ADDRESS=temporal_env.client.service_client.config.target_host,
            TELEPHONY_TEMPORAL_NAMESPACE=temporal_env.client.namespace,
            TELEPHONY_TASK_QUEUE=settings.task_queue,
            TELEPHONY_DATA_DIR=str(tmp_path / "media-data"),
            TELEPHONY_PUBLIC_URL=PUBLIC,
            TELEPHONY_LOG_FORMAT="console",
            PYTHONUNBUFFERED="1",
        )
        # Not the stack's data dir: a folder named like one of our packages (its "storage") would shadow it.
        (tmp_path / "media-cwd").mkdir()
        for name in ("media-1", "media-2"):
            media_processes.append(MediaProcess.start(env, tmp_path / "media-cwd", name))
        space = await stack.new_space()
        agent = {
            "name": "front desk",
            "greeting": "Hello, thanks for calling.",
            "knowledge_base": [{"title": "Opening hours", "content": HOURS}, {"title": "Parking", "content": PARKING}],
        }
        e164 = await twilio_number(
            stack.client,
            space,
            media_mode="stream",
            agent=agent,
            account_sid=TEST_ACCOUNT_SID,
            auth_token=TEST_AUTH_TOKEN,
        )
        twilio_standin.add_incoming(
            TEST_ACCOUNT_SID,
            e164,
            VoiceUrl=f"{PUBLIC}/webhooks/twilio/voice",
            StatusCallback=f"{PUBLIC}/webhooks/twilio/status",
        )
        twilio_standin.webhook_transport = httpx.ASGITransport(app=stack.app)
        await asyncio.gather(*(m.ready() for m in media_processes))
        yield Line(stack, space, e164, twilio_standin, media_processes)


def _stream_parameters(twiml: str) -> dict[str, str]:
    stream = ET.fromstring(twiml).find("./Connect/Stream")
    assert stream is not None, twiml
    return {str(p.get("name")): str(p.get("value")) for p in stream.findall("Parameter")}


def _stream(media: MediaProcess, parameters: dict[str, str]) -> TwilioMediaStream:
    signature = RequestValidator(TEST_AUTH_TOKEN).compute_signature(STREAM_URL, {})
    return TwilioMediaStream(media.ws_url, signature=signature, account_sid=TEST_ACCOUNT_SID, parameters=parameters)


def _heard(ears: WhisperEngine, pcm8k: np.ndarray) -> str:
    return ears.transcribe(int16_to_float(resample_int16(pcm8k, 8000, 16000))).text.lower()


async def _speech(voice: HibariTTS, text: str) -> np.ndarray:
    """Synthesised off the event loop: the loop also carries the call (and its carry_media heartbeat)."""
    return await asyncio.to_thread(voice.synthesize_pcm, text)


async def _hear(ears: WhisperEngine, pcm8k: np.ndarray) -> str:
    return await asyncio.to_thread(_heard, ears, pcm8k)


@pytest.mark.slow
async def test_kill_9_of_the_media_process_mid_call_moves_the_call_to_another(line: Line) -> None:
    caller_voice, ears = HibariTTS(voice="heart"), get_whisper_engine()
    calls = CallClient(line.stack.app.state.temporal._client, line.stack.settings.task_queue)  # type: ignore[union-attr]
    record, answer = await line.carrier.incoming_call(line.e164, "+14155550142")
    first = _stream_parameters(answer.text)
    call = calls.call(first["workflow_id"], space_id=line.space.id)

    async with _stream(line.media[0], first) as phone:
        await phone.start()
        assert "thanks for calling" in await asyncio.to_thread(
            _heard, ears, (await phone.next_reply(within=60)).pcm8k()
        )
        await phone.say(await _speech(caller_voice, "What are your opening hours?"), 24000)
        heard = await _hear(ears, (await phone.next_reply(within=60)).pcm8k())
        assert "nine" in heard or "9" in heard, heard
        killed_at = time.monotonic()
        line.media[0].kill9()

        async def redirected() -> str | None:
            redirects = line.carrier.calls[record.sid].redirects
            return redirects[-1].get("Twiml") if redirects else None

        twiml = await eventually(redirected, within=30)
    second = _stream_parameters(twiml)
    assert second["workflow_id"] == first["workflow_id"] and second["token"] != first["token"]
    async with _stream(line.media[1], second) as phone:
        await phone.start()
        resumed = await _hear(ears, (await phone.next_reply(within=60)).pcm8k())
        back_after = time.monotonic() - killed_at
        assert "where were we" in resumed and "thanks for calling" not in resumed, resumed
        await phone.say(await _speech(caller_voice, "Where can I park?"), 24000)
        assert "park" in await _hear(ears, (await phone.next_reply(within=60)).pcm8k())
        await phone.stop()

    async def ended() -> CallStateView | None:
        view = await call.state()
        return view if view.state is CallState.ENDED else None

    view = await eventually(ended, within=30)
    events = [e.event for e in view.timeline]
    assert events.count("media_attached") == 1 and events.count("agent_reattached") == 1, events
    assert events.index("media_lost") < events.index("media_reconnecting") < events.index("agent_reattached")
    async with line.stack.sessions() as session:
        said = (await session.scalars(select(Message).where(Message.conversation_id == view.conversation_id))).all()
    agent_lines = [m.text for m in said if m.role is MessageRole.AGENT]
    assert sum("thanks for calling" in t.lower() for t in agent_lines) == 1  # one greeting in the whole call
    print(f"re-attach: caller heard the agent again {back_after:.1f} s after the kill")
