"""Real ``telephony media`` processes for tests and benches: the API (in-process, the carrier stand-in's
webhooks reach it), two media processes started as ``python -m workers.cli media``, a space with a
media-stream number whose agent knows two facts, and helpers that speak and listen on a Twilio media stream."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import numpy as np
import pytest
from temporalio.testing import WorkflowEnvironment
from twilio.request_validator import RequestValidator

from models.calls import CallStateView
from models.enums import CallState
from tests.api.resources import twilio_number
from tests.conftest import SECRET_KEY, Platform, SpaceKeys
from tests.support.media_stream_client import TwilioMediaStream
from tests.support.postgres import free_port
from tests.support.stack import eventually, running_stack
from tests.twilio_standin import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TwilioStandIn
from voice.speech import HibariTTS
from voice.speech.audio import int16_to_float, resample_int16
from voice.speech.whisper_engine import WhisperEngine
from workflows.call_client import CallRef

PUBLIC = "https://telephony.example.com"
STREAM_URL = "wss://telephony.example.com/media/twilio"
READY_TIMEOUT = 180.0  # three media processes loading their models at once on a loaded 2-core machine took > 90 s
HOURS = "We are open from nine in the morning to five in the evening, Monday to Friday."
PARKING = "Parking is free in the garage behind the building."


@dataclass
class MediaProcess:
    """``python -m workers.cli media`` (or ``api``) on its own port, its output in a log file."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path
    _log_file: IO[bytes] = field(repr=False)

    @classmethod
    def start(cls, env: Mapping[str, str], cwd: Path, name: str, port: int | None = None) -> MediaProcess:
        port = port or free_port()
        log = cwd / f"{name}.log"
        log_file = log.open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", "media", "--port", str(port)],
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        return cls(port, process, log, log_file)

    @classmethod
    def api(cls, env: Mapping[str, str], cwd: Path) -> MediaProcess:
        """``python -m workers.cli api`` (the webhook path, no speech models) on its own port."""
        port = free_port()
        log = cwd / "api.log"
        log_file = log.open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", "api"],
            env=dict(env) | {"TELEPHONY_API_HOST": "127.0.0.1", "TELEPHONY_API_PORT": str(port)},
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        return cls(port, process, log, log_file)

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/media/twilio"

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/healthz"

    async def ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        async with httpx.AsyncClient(timeout=2) as http:
            while True:
                if self.process.poll() is not None:
                    raise AssertionError(f"media process exited:\n{self.output()}")
                try:
                    if (await http.get(self.health_url)).status_code == 200:
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

    def terminate(self) -> None:
        """SIGTERM: the process drains (see voice.media_stream.drain)."""
        os.kill(self.process.pid, signal.SIGTERM)

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


def media_env(stack: Platform, temporal_env: WorkflowEnvironment, data_dir: Path) -> dict[str, str]:
    settings = stack.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEPHONY_")}
    env.update(
        TELEPHONY_DATABASE_URL=settings.resolved_database_url,
        TELEPHONY_SECRET_KEYS=SECRET_KEY,
        TELEPHONY_TEMPORAL_ADDRESS=temporal_env.client.service_client.config.target_host,
        TELEPHONY_TEMPORAL_NAMESPACE=temporal_env.client.namespace,
        TELEPHONY_TASK_QUEUE=settings.task_queue,
        TELEPHONY_DATA_DIR=str(data_dir),
        TELEPHONY_PUBLIC_URL=PUBLIC,
        TELEPHONY_LOG_FORMAT="console",
        PYTHONUNBUFFERED="1",
    )
    return env


@asynccontextmanager
async def media_line(
    temporal_env: WorkflowEnvironment,
    tmp_path: Path,
    twilio_standin: TwilioStandIn,
    processes: list[MediaProcess],
    *,
    count: int = 2,
    extra_env: Mapping[str, str] | None = None,
) -> AsyncIterator[Line]:
    """The API with ``count`` media processes (appended to ``processes``: the caller closes them) and a number."""
    async with running_stack(temporal_env, tmp_path, twilio_api_base_url=twilio_standin.url) as stack:
        assert stack.app is not None
        env = media_env(stack, temporal_env, tmp_path / "media-data") | {"TELEPHONY_MEDIA_PROCESSES": str(count)}
        env |= dict(extra_env or {})
        # Not the stack's data dir: a folder named like one of our packages (its "storage") would shadow it.
        (tmp_path / "media-cwd").mkdir()
        for n in range(count):
            processes.append(MediaProcess.start(env, tmp_path / "media-cwd", f"media-{n + 1}"))
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
        await asyncio.gather(*(m.ready() for m in processes))
        yield Line(stack, space, e164, twilio_standin, processes)


def first_alive(processes: list[MediaProcess]) -> Callable[[str], str]:
    """The carrier stand-in's ``stream_router``: the public stream URL reaches the first media process still
    running (a load balancer's health check takes a dead one out at once)."""

    def route(url: str) -> str:
        assert url == STREAM_URL, url
        return next(m.ws_url for m in processes if m.process.poll() is None)

    return route


def stream_parameters(twiml: str) -> dict[str, str]:
    stream = ET.fromstring(twiml).find("./Connect/Stream")
    assert stream is not None, twiml
    return {str(p.get("name")): str(p.get("value")) for p in stream.findall("Parameter")}


def stream_to(media: MediaProcess, parameters: dict[str, str]) -> TwilioMediaStream:
    signature = RequestValidator(TEST_AUTH_TOKEN).compute_signature(STREAM_URL, {})
    return TwilioMediaStream(media.ws_url, signature=signature, account_sid=TEST_ACCOUNT_SID, parameters=parameters)


def heard(ears: WhisperEngine, pcm8k: np.ndarray) -> str:
    return ears.transcribe(int16_to_float(resample_int16(pcm8k, 8000, 16000))).text.lower()


async def speech(voice: HibariTTS, text: str) -> np.ndarray:
    """Synthesised off the event loop: the loop also carries the call (and its carry_media heartbeat)."""
    return await asyncio.to_thread(voice.synthesize_pcm, text)


async def hear(ears: WhisperEngine, pcm8k: np.ndarray) -> str:
    return await asyncio.to_thread(heard, ears, pcm8k)


@pytest.fixture
def media_processes() -> Iterator[list[MediaProcess]]:
    """Media processes a test starts; each is stopped afterwards and its log's tail printed (shown on failure)."""
    started: list[MediaProcess] = []
    yield started
    for media in started:
        media.close()
        print(f"--- {media.log.name} (exit {media.process.returncode})\n{media.output()[-4000:]}")


async def call_ended(call: CallRef, within: float = 60.0) -> CallStateView:
    """The call's state once its workflow says ENDED (the stand-in and the workflow finish in the background)."""

    async def ended() -> CallStateView | None:
        view = await call.state()
        return view if view.state is CallState.ENDED else None

    return await eventually(ended, within=within)
