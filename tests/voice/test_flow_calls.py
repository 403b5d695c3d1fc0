"""Calls routed to a flow, end to end over a Twilio media stream with real audio: the flow's prompts are spoken
by the media process (and heard through Whisper), keys are pressed on the stream, and the flow hands the caller
to an agent with what it gathered, or hangs up. A flow edited mid-call leaves the call on its version."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI, Request, Response
from temporalio.testing import WorkflowEnvironment

from models import calls as c
from tests.support.flow_line import FRONT_DESK, FlowLine, flow_line, flow_steps, sales_or_support
from tests.support.media_stream_client import TwilioMediaStream
from tests.support.stack import eventually, running_stack, serve_http
from tests.twilio_standin import TwilioStandIn
from voice.media_stream.extension import MediaStreamExtension
from voice.speech import HibariTTS
from voice.speech.audio import int16_to_float, resample_int16
from voice.speech.whisper_engine import WhisperEngine

MENU = sales_or_support(
    "front desk menu",
    speech=True,
    speech_choices={"sales": "1", "support": "2"},
    timeout_seconds=8,
    retries=1,
    no_match_prompt="Sorry, that is not an option.",
    on_no_input="assistant",
)
AGENT = FRONT_DESK


@pytest.fixture
async def line(
    temporal_env: WorkflowEnvironment, tmp_path: Path, twilio_standin: TwilioStandIn
) -> AsyncIterator[FlowLine]:
    async with running_stack(
        temporal_env, tmp_path, extensions=[MediaStreamExtension()], twilio_api_base_url=twilio_standin.url
    ) as stack:
        assert stack.app is not None
        await stack.app.state.voice.warm_up()
        async with serve_http(stack.app) as base_url:
            yield await flow_line(stack, twilio_standin, base_url, MENU, AGENT)


def _heard(ears: WhisperEngine, pcm8k: np.ndarray) -> str:
    return ears.transcribe(int16_to_float(resample_int16(pcm8k, 8000, 16000))).text.lower()


async def _hear(ears: WhisperEngine, pcm8k: np.ndarray) -> str:
    return await asyncio.to_thread(_heard, ears, pcm8k)


async def _ended(line: FlowLine, workflow_id: str) -> c.CallStateView:
    async def probe() -> c.CallStateView | None:
        view = await line.state(workflow_id)
        return view if view.state.value == "ended" else None

    return await eventually(probe, within=60)


async def _segments_beyond(phone: TwilioMediaStream, count: int) -> bool:
    return len(phone.segments) > count


async def test_menu_retries_then_hands_the_caller_to_the_agent_with_the_variables(
    line: FlowLine, caller_voice: HibariTTS, ears: WhisperEngine
) -> None:
    parameters = await line.ring()
    workflow_id = parameters["workflow_id"]
    async with line.stream(parameters) as phone:
        await phone.start()
        prompt = await phone.next_reply(after=0)
        heard = await _hear(ears, prompt.pcm8k())
        assert "sales" in heard and "support" in heard, heard
        assert (await line.state(workflow_id)).state.value == "active"

        pressed = len(phone.segments)
        await phone.dtmf("9")  # not on the menu
        sorry = await phone.next_reply(after=pressed)
        assert "not an option" in await _hear(ears, sorry.pcm8k())

        # The menu again, right after the apology (it may have begun while the apology was being transcribed):
        # a key cuts it off.
        before = next(index for index, segment in enumerate(phone.segments) if segment is sorry) + 1
        await eventually(lambda: _segments_beyond(phone, before))
        pressed = len(phone.segments)
        await phone.dtmf("1")
        greeting = await phone.next_reply(after=pressed)
        assert phone.clears >= 1
        assert "sales team" in await _hear(ears, greeting.pcm8k())

        question = await asyncio.to_thread(caller_voice.synthesize_pcm, "What are your opening hours?")
        asked = len(phone.segments)
        await phone.say(question, 24000)
        answer = await _hear(ears, (await phone.next_reply(after=asked)).pcm8k())
        assert ("nine" in answer or "9" in answer) and ("five" in answer or "5" in answer), answer
        await phone.stop()

    final = await _ended(line, workflow_id)
    assert final.end_reason is not None and final.end_reason.value == "completed"
    assert final.agent_id == line.agent_id and final.dtmf_received == "91"
    steps = flow_steps(final)
    assert steps[0] == "menu (gather): no_match '9', retry"
    assert steps[1].startswith("menu (gather): input '1'")
    assert steps[2] == "route (branch): route 1 -> sales"
    assert steps[3] == "sales (set): set team -> assistant"
    assert steps[4] == f"assistant (agent): handed to agent {line.agent_id} with choice, team"
    started = [e.detail for e in final.timeline if e.event == "flow_started"]
    assert started == [f"{line.flow_id} v1"]


async def test_the_caller_may_say_the_choice_instead_of_pressing_it(
    line: FlowLine, caller_voice: HibariTTS, ears: WhisperEngine
) -> None:
    parameters = await line.ring()
    async with line.stream(parameters) as phone:
        await phone.start()
        await phone.next_reply()  # the menu
        await phone.say(await asyncio.to_thread(caller_voice.synthesize_pcm, "Sales, please."), 24000)
        greeting = await phone.next_reply(within=60)
        assert "sales team" in await _hear(ears, greeting.pcm8k())
        view = await line.state(parameters["workflow_id"])
        await phone.stop()
    steps = flow_steps(view)
    assert steps[0].startswith("menu (gather): input '1'") and steps[2] == "sales (set): set team -> assistant"
    assert view.dtmf_received == ""


async def test_a_call_keeps_its_flow_version_when_the_flow_is_edited(line: FlowLine, ears: WhisperEngine) -> None:
    parameters = await line.ring()
    workflow_id = parameters["workflow_id"]
    async with line.stream(parameters) as phone:
        await phone.start()
        await phone.next_reply()  # the menu (version 1)
        edited = [dict(s) for s in MENU["steps"]]
        edited[3] = {**edited[3], "text": "Support is open around the clock."}
        flow_path = line.space.path(f"/flows/{line.flow_id}")
        document = {**MENU, "steps": edited}
        document["steps"][4] = {**document["steps"][4], "agent_id": line.agent_id}
        put = await line.stack.client.put(flow_path, json=document, headers=line.space.admin)
        assert put.status_code == 200 and put.json()["version"] == 2

        await phone.dtmf("2")
        closing = await _hear(ears, (await phone.next_reply()).pcm8k())
        assert "closed" in closing, closing  # version 1's words
        final = await _ended(line, workflow_id)  # the flow hangs up
    assert final.end_reason is not None and final.end_reason.value == "completed"
    assert [e.event for e in final.timeline][-1] == "flow_hangup"
    assert flow_steps(final)[-2:] == ["support (say): said -> bye", "bye (hangup): hang up"]

    async def hung_up() -> list[Any] | None:  # the leg is torn down just after the state says ENDED
        return [r for r in line.carrier.requests_for("update_call") if r.form.get("Status")] or None

    hangups = await eventually(hung_up)
    assert len(hangups) == 1 and parameters["call_sid"] in hangups[0].path  # our side hung the carrier leg up

    later = await line.ring()  # a new call runs the new version
    async with line.stream(later) as phone:
        await phone.start()
        await phone.next_reply()
        view = await line.state(later["workflow_id"])
        assert [e.detail for e in view.timeline if e.event == "flow_started"] == [f"{line.flow_id} v2"]
        await phone.stop()


@dataclass
class Endpoint:
    """The space's backend: slow, failing and answering routes on a real loopback HTTP server."""

    url: str
    received: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
async def endpoint() -> AsyncIterator[Endpoint]:
    app = FastAPI()
    received: list[dict[str, Any]] = []

    @app.post("/slow")
    async def slow() -> dict[str, str]:
        await asyncio.sleep(5)
        return {"tier": "late"}

    @app.post("/fail")
    async def fail() -> Response:
        return Response("boom", status_code=500)

    @app.post("/lookup")
    async def lookup(request: Request) -> dict[str, str]:
        received.append(await request.json())
        return {"tier": "gold", "name": "Ada"}

    async with serve_http(app) as url:
        yield Endpoint(url, received)


async def test_webhook_steps_time_out_fail_and_branch_on_the_answer(
    line: FlowLine, endpoint: Endpoint, ears: WhisperEngine
) -> None:
    document = {
        "name": "lookup",
        "steps": [
            {"id": "who", "type": "set", "values": {"account": "A-17"}},
            {
                "id": "slow",
                "type": "webhook",
                "url": f"{endpoint.url}/slow",
                "timeout_seconds": 1,
                "on_failure": "fail",
            },
            {"id": "late", "type": "hangup"},
            {"id": "fail", "type": "webhook", "url": f"{endpoint.url}/fail", "on_failure": "lookup"},
            {"id": "failed", "type": "hangup"},
            {
                "id": "lookup",
                "type": "webhook",
                "url": f"{endpoint.url}/lookup",
                "prefix": "crm_",
                "routes": [{"when": {"variable": "crm_tier", "equals": "gold"}, "goto": "vip"}],
                "next": "bye",
            },
            {"id": "vip", "type": "say", "text": "Welcome back, {crm_name}.", "next": "bye"},
            {"id": "bye", "type": "hangup"},
        ],
    }
    space, client = line.space, line.stack.client
    flow = (await client.post(space.path("/flows"), json=document, headers=space.admin)).json()
    routed = await client.patch(
        space.path(f"/phone-numbers/{line.number_id}"), json={"flow_id": flow["id"]}, headers=space.admin
    )
    assert routed.status_code == 200, routed.text
    parameters = await line.ring(caller="+14155550177")
    async with line.stream(parameters) as phone:
        await phone.start()
        welcome = await _hear(ears, (await phone.next_reply()).pcm8k())
        assert "welcome back" in welcome and "ada" in welcome, welcome
        final = await _ended(line, parameters["workflow_id"])
    steps = flow_steps(final)
    assert steps[1] == "slow (webhook): no answer within 1 s, failed -> fail"
    assert steps[2] == "fail (webhook): the endpoint answered 500, failed -> lookup"
    assert steps[3] == "lookup (webhook): answered, route 1 -> vip"
    assert endpoint.received == [
        {
            "call_id": final.call_id,
            "flow_id": flow["id"],
            "step": "lookup",
            "caller": "+14155550177",
            "variables": {"account": "A-17"},
        }
    ]


async def test_no_input_retries_then_transfers_through_the_carrier(line: FlowLine, ears: WhisperEngine) -> None:
    document = {
        "name": "quiet caller",
        "steps": [
            {
                "id": "menu",
                "type": "gather",
                "prompt": "Press 1 for sales.",
                "timeout_seconds": 1,
                "retries": 1,
                "no_input_prompt": "I did not hear a key.",
                "on_no_input": "desk",
            },
            {"id": "bye", "type": "hangup"},
            {"id": "desk", "type": "transfer", "target": "+14155550111", "on_failure": "bye"},
        ],
    }
    space, client = line.space, line.stack.client
    flow = (await client.post(space.path("/flows"), json=document, headers=space.admin)).json()
    routed = await client.patch(
        space.path(f"/phone-numbers/{line.number_id}"), json={"flow_id": flow["id"]}, headers=space.admin
    )
    assert routed.status_code == 200, routed.text
    parameters = await line.ring()
    async with line.stream(parameters) as phone:
        await phone.start()
        # The prompts by their order on the line (one may begin while the previous is being transcribed).
        heard = [await _hear(ears, (await phone.next_reply(after=index)).pcm8k()) for index in range(3)]
        final = await _ended(line, parameters["workflow_id"])
    assert "sales" in heard[0] and "did not hear" in heard[1] and "sales" in heard[2], heard
    assert final.end_reason is not None and final.end_reason.value == "transferred"
    steps = flow_steps(final)
    assert steps == [
        "menu (gather): no_input '', retry",
        "menu (gather): no_input '', no input -> desk",
        "desk (transfer): transferred",
    ]
    [redirect] = line.carrier.requests_for("update_call")
    assert "<Number>+14155550111</Number>" in redirect.form["Twiml"]
    gaps = [e.at for e in final.timeline if e.event == "flow_step"]
    assert (gaps[1] - gaps[0]).total_seconds() >= 1  # the no-input timeout ran after the repeated prompt


async def test_closed_hours_take_a_voicemail_stored_and_transcribed(
    line: FlowLine, caller_voice: HibariTTS, ears: WhisperEngine
) -> None:
    document = {
        "name": "after hours",
        "time_zone": "Europe/Paris",
        "business_hours": {},  # never open
        "steps": [
            {"id": "hours", "type": "branch", "routes": [{"when": {"business_hours": False}, "goto": "closed"}]},
            {"id": "menu", "type": "gather", "prompt": "Press 1.", "next": "bye"},
            {
                "id": "closed",
                "type": "voicemail",
                "prompt": "We are closed. Please leave a message after the tone.",
                "next": "bye",
            },
            {"id": "bye", "type": "say", "text": "Thank you, goodbye."},
            {"id": "end", "type": "hangup"},
        ],
    }
    space, client = line.space, line.stack.client
    flow = (await client.post(space.path("/flows"), json=document, headers=space.admin)).json()
    routed = await client.patch(
        space.path(f"/phone-numbers/{line.number_id}"), json={"flow_id": flow["id"]}, headers=space.admin
    )
    assert routed.status_code == 200, routed.text
    message = await asyncio.to_thread(caller_voice.synthesize_pcm, "Please call me back about my order.")
    parameters = await line.ring()
    async with line.stream(parameters) as phone:
        await phone.start()
        prompt = await phone.next_reply()

        async def toned() -> bool:  # the tone: a segment of its own, heard out
            return len(phone.segments) >= 2 and phone.segments[1].mark is not None

        await eventually(toned, within=30)
        await phone.say(message, 24000)
        bye = await phone.next_reply(within=60)
        assert "leave a message" in await _hear(ears, prompt.pcm8k())
        assert "goodbye" in await _hear(ears, bye.pcm8k())
        final = await _ended(line, parameters["workflow_id"])
    steps = flow_steps(final)
    assert steps[0] == "hours (branch): route 1 -> closed"
    assert steps[1].startswith("closed (voicemail): ") and "(silence), asset as_" in steps[1], steps
    [asset_id] = [e.detail for e in final.timeline if e.event == "voicemail_stored"]

    recording = (await client.get(space.path(f"/recordings/{asset_id}"), headers=space.viewer)).json()
    assert recording["status"] == "stored" and recording["call_id"] == final.call_id
    assert 2.0 < recording["duration_seconds"] < 15.0

    async def transcribed() -> list[str] | None:
        path = space.path(f"/conversations/{final.conversation_id}/messages")
        messages = (await client.get(path, headers=space.viewer)).json()["data"]
        said = [m["text"].lower() for m in messages if m["source"] == "recording" and m["role"] == "caller"]
        return said or None

    said = await eventually(transcribed, within=120)
    assert any("call me back" in s for s in said), said
