"""Flows on console calls, through the real console socket of a media process: the flow's prompts are played to
the console client (and heard through Whisper), its keypad and words are gathered, and the flow hands the call to
the agent on the same socket with the variables it gathered. Reached through a number routed to the flow, or by
naming the flow directly; a flow of another space is not found."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from temporalio.testing import WorkflowEnvironment

from api.app import AppExtension
from models import calls as c
from models import console_protocol as p
from models.enums import Role
from tests.api.resources import create, flow_body, phone_number_body
from tests.conftest import Platform, SpaceKeys
from tests.support.assets import upload_audio, wav_bytes
from tests.support.flow_line import FRONT_DESK, flow_steps, with_agent
from tests.support.stack import eventually, running_stack, serve_http, temporal_client
from tests.voice.console_support import spoken_16k
from tests.voice.test_flow_calls import MENU
from voice.console.extension import ConsoleExtension
from voice.media_stream.extension import MediaStreamExtension
from voice.speech import HibariTTS
from voice.speech.audio import int16_to_float
from voice.speech.whisper_engine import WhisperEngine
from workers.console_client import ConsoleClient
from workflows.calls import CallWorkflow

AGENT = FRONT_DESK


@dataclass
class ConsoleFlowLine:
    stack: Platform
    space: SpaceKeys
    ws_url: str
    flow_id: str
    number_id: str

    def client(self, *, flow_id: str | None = None, number_id: str | None = None, space_id: str = "") -> ConsoleClient:
        hello = p.Hello(
            type="hello",
            api_key=self.space.keys[Role.OPERATOR],
            space_id=space_id or self.space.id,
            flow_id=flow_id,
            phone_number_id=number_id,
        )
        return ConsoleClient(self.ws_url, hello, keep_audio=True)

    async def state(self, workflow_id: str) -> c.CallStateView:
        view: c.CallStateView = (
            await temporal_client(self.stack).get_workflow_handle(workflow_id).query(CallWorkflow.get_state)
        )
        return view


@pytest.fixture
async def line(temporal_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[ConsoleFlowLine]:
    extensions: list[AppExtension] = [MediaStreamExtension(), ConsoleExtension()]  # as `telephony media` serves it
    async with running_stack(temporal_env, tmp_path, extensions=extensions) as stack:
        assert stack.app is not None
        space = await stack.new_space()
        agent = await create(stack.client, space, "agents", AGENT)
        document = with_agent(MENU, agent["id"])
        flow = await create(stack.client, space, "flows", document)
        body = await phone_number_body(stack.client, space) | {
            "route_type": "flow",
            "agent_id": None,
            "flow_id": flow["id"],
        }
        number = await create(stack.client, space, "phone-numbers/port", body)
        async with serve_http(stack.app) as base_url:
            ws_url = base_url.replace("http", "ws", 1) + p.PATH
            yield ConsoleFlowLine(stack, space, ws_url, flow["id"], number["id"])


def _heard(ears: WhisperEngine, pcm16k: bytes) -> str:
    return ears.transcribe(int16_to_float(np.frombuffer(bytes(pcm16k), dtype="<i2"))).text.lower()


async def _segment(phone: ConsoleClient, index: int, within: float = 30.0) -> bytes:
    """The ``index``-th thing the caller heard, once it has been heard out (or cut off by a key)."""

    async def done() -> bool:
        segments = phone.record.segments
        return len(segments) > index + 1 or (len(segments) > index and not phone._in_segment)

    await eventually(done, within=within)
    return bytes(phone.record.segments[index])


async def test_a_console_call_to_a_flow_number_plays_the_menu_and_hands_over_with_the_variables(
    line: ConsoleFlowLine, ears: WhisperEngine
) -> None:
    async with line.client(number_id=line.number_id) as phone:
        ready = await phone.ready()
        assert ready is not None, phone.record.closed
        menu = await asyncio.to_thread(_heard, ears, await _segment(phone, 0))
        assert "sales" in menu and "support" in menu, menu

        await phone.dtmf("9")  # not on the menu
        sorry = await asyncio.to_thread(_heard, ears, await _segment(phone, 1))
        assert "not an option" in sorry, sorry
        await eventually(lambda: _beyond(phone, 2))  # the menu again: a key cuts it off
        await phone.dtmf("1")
        prompts = [t.text for t in phone.agent_lines()][:3]  # the prompts' words are shown on the console too
        assert prompts == [MENU["steps"][0]["prompt"], "Sorry, that is not an option.", MENU["steps"][0]["prompt"]]
        greeting = await phone.next_agent_line(3)  # the agent, on the same socket, with the flow's variables
        assert greeting is not None and "sales team" in greeting.text.lower(), greeting
        await phone.hang_up()

    view = await line.state(ready.workflow_id)
    assert view.media_mode.value == "web" and view.dtmf_received == "91"
    assert any(e.event == "media_attached" for e in view.timeline)
    steps = flow_steps(view)
    assert any(s.startswith("menu (gather): no_match '9'") for s in steps), steps
    assert any("handed to agent" in s and "choice, team" in s for s in steps), steps


async def _beyond(phone: ConsoleClient, count: int) -> bool:
    return len(phone.record.segments) > count


async def test_a_console_call_naming_a_flow_gathers_speech_and_hangs_up(
    line: ConsoleFlowLine, caller_voice: HibariTTS, ears: WhisperEngine
) -> None:
    async with line.client(flow_id=line.flow_id) as phone:
        ready = await phone.ready()
        assert ready is not None, phone.record.closed
        await _segment(phone, 0)
        await phone.say(await asyncio.to_thread(spoken_16k, caller_voice, "Support, please."))
        closed = await asyncio.to_thread(_heard, ears, await _segment(phone, 1))
        assert "support is closed" in closed, closed
        await phone.until(lambda: phone.record.closed is not None, 20)  # the flow hangs up
    assert phone.record.ended is not None and phone.record.ended.end_reason == "completed"
    assert phone.record.closed is not None and phone.record.closed[0] == p.Close.NORMAL
    said = [t.text.lower() for t in phone.record.transcripts if t.role == "caller"]
    assert any("support" in t for t in said), said  # the caller's words are shown on the console

    view = await line.state(ready.workflow_id)
    assert view.to_number == f"flow:{line.flow_id}" and view.agent_id is None
    assert any(s.startswith("menu (gather): input '2'") for s in flow_steps(view)), flow_steps(view)


async def test_a_flow_of_another_space_is_not_found(line: ConsoleFlowLine) -> None:
    other = await line.stack.new_space()
    theirs = await create(line.stack.client, other, "flows", flow_body())
    async with line.client(flow_id=theirs["id"]) as phone:
        await phone.until(lambda: phone.record.closed is not None, 10)
    assert phone.record.closed == (p.Close.NOT_FOUND, "flow not found")


async def test_a_say_plays_an_uploaded_audio_asset_of_the_space(line: ConsoleFlowLine, caller_voice: HibariTTS) -> None:
    """The prompt is uploaded as a space admin would (``POST /assets``, multipart): converted, stored, checked when
    the flow is saved, and played to the caller sample for sample (it is stored at the console's own rate)."""
    welcome = await asyncio.to_thread(spoken_16k, caller_voice, "Welcome to Acme.")
    uploaded = await upload_audio(
        line.stack.client, line.space.path(), line.space.admin, wav_bytes(welcome, p.SAMPLE_RATE), filename="w.wav"
    )
    assert uploaded.status_code == 201, uploaded.text
    steps = [{"id": "welcome", "type": "say", "asset_id": uploaded.json()["id"]}, {"id": "bye", "type": "hangup"}]
    flow = await create(line.stack.client, line.space, "flows", {"name": "welcome", "steps": steps})

    async with line.client(flow_id=flow["id"]) as phone:
        assert await phone.ready() is not None, phone.record.closed
        heard = np.frombuffer(await _segment(phone, 0), dtype="<i2").astype(np.float64)
        await phone.until(lambda: phone.record.closed is not None, 10)
    assert phone.record.ended is not None and phone.record.ended.end_reason == "completed"
    played = welcome.astype(np.float64)
    assert len(heard) == len(played)  # the asset as stored, at the console's own rate: sample for sample
    assert np.corrcoef(heard, played)[0, 1] > 0.99
