"""A running platform with the console served on a real loopback port as ``telephony media`` serves it (beside
the media streams, whose worker carries, holds and records its calls), a space whose agent knows the opening
hours, and a second space (for isolation checks)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from temporalio.testing import WorkflowEnvironment

from models import calls as c
from models import console_protocol as p
from models.enums import Role
from tests.api.resources import create
from tests.conftest import Platform, SpaceKeys
from tests.support.flow_line import HOURS
from tests.support.stack import running_stack, serve_http, temporal_client
from voice.console.extension import ConsoleExtension
from voice.media_stream.extension import MediaStreamExtension
from voice.speech import HibariTTS
from voice.speech.audio import resample_int16
from workers.console_client import ConsoleClient
from workflows.calls import CallWorkflow

QUESTION = "What are your opening hours?"


@dataclass
class ConsoleLine:
    stack: Platform
    space: SpaceKeys
    agent_id: str
    other_space: SpaceKeys
    other_agent_id: str
    base_url: str

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http", "ws", 1) + p.PATH

    def hello(self, role: Role = Role.OPERATOR, agent_id: str | None = None, key: str | None = None) -> p.Hello:
        return p.Hello(
            type="hello",
            api_key=key if key is not None else self.space.keys[role],
            space_id=self.space.id,
            agent_id=agent_id or self.agent_id,
        )

    def client(self, hello: p.Hello | None = None) -> ConsoleClient:
        return ConsoleClient(self.ws_url, hello or self.hello())

    async def state(self, workflow_id: str) -> c.CallStateView:
        handle = temporal_client(self.stack).get_workflow_handle(workflow_id)
        view: c.CallStateView = await handle.query(CallWorkflow.get_state)
        return view


def agent_body(name: str = "front desk") -> dict[str, object]:
    return {
        "name": name,
        "greeting": "Hello, thanks for calling.",
        "knowledge_base": [{"title": "Opening hours", "content": HOURS}],
        "tts_provider": "local-hibari",
    }


@asynccontextmanager
async def console_line(env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[ConsoleLine]:
    async with running_stack(env, tmp_path, extensions=[MediaStreamExtension(), ConsoleExtension()]) as stack:
        assert stack.app is not None
        await stack.app.state.voice.warm_up()
        space = await stack.new_space("acme")
        agent = await create(stack.client, space, "agents", agent_body())
        other = await stack.new_space("globex")
        other_agent = await create(stack.client, other, "agents", agent_body("their desk"))
        async with serve_http(stack.app) as base_url:
            yield ConsoleLine(stack, space, agent["id"], other, other_agent["id"], base_url)


def says_hours(text: str) -> bool:
    """Whisper may write the hours in words or digits."""
    text = text.lower()
    return ("nine" in text or "9" in text) and ("five" in text or "5" in text)


def spoken_16k(voice: HibariTTS, text: str) -> npt.NDArray[np.int16]:
    return resample_int16(voice.synthesize_pcm(text), 24000, p.SAMPLE_RATE)
