"""Console calls over the WebSocket, from Python (as ``telephony call`` makes them): real speech in, the real
agent pipeline, a real CallWorkflow on the dev server; and every refusal with its close code while another call
carries on."""

from __future__ import annotations

import asyncio
import io
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from temporalio.testing import WorkflowEnvironment
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from models import console_protocol as p
from models.enums import Role
from tests.api.resources import create, phone_number_body
from tests.conftest import unique_e164
from tests.support.media_processes import hear
from tests.support.stack import eventually
from tests.voice.console_support import QUESTION, ConsoleLine, console_line, says_hours, spoken_16k
from voice.speech import HibariTTS
from voice.speech.whisper_engine import get_whisper_engine


@pytest.fixture
async def line(temporal_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[ConsoleLine]:
    async with console_line(temporal_env, tmp_path) as running:
        yield running


async def test_a_console_call_is_a_real_call_answered_from_the_knowledge_base(
    line: ConsoleLine, caller_voice: HibariTTS
) -> None:
    async with line.client() as phone:
        ready = await phone.ready()
        assert ready is not None, phone.record.closed
        greeting = await phone.next_agent_line(0)
        assert greeting is not None and "thanks for calling" in greeting.text.lower()
        assert (await line.state(ready.workflow_id)).state.value == "active"

        reply = await phone.ask(spoken_16k(caller_voice, QUESTION))
        assert reply is not None and says_hours(reply.text), reply
        assert reply.latency_ms is not None and reply.latency_ms > 0
        callers = [t.text.lower() for t in phone.record.transcripts if t.role == "caller" and t.final]
        assert any("opening hours" in t for t in callers), callers
        assert phone.record.agent_audio_bytes > p.SAMPLE_RATE * 2  # more than a second of agent speech

        await phone.dtmf("42")
        ended = await phone.hang_up()
    assert ended is not None and ended.end_reason == "completed"
    assert phone.record.closed is not None and phone.record.closed[0] == p.Close.NORMAL

    final = await line.state(ready.workflow_id)
    assert final.state.value == "ended" and final.media_mode.value == "web"
    assert final.direction.value == "inbound" and final.from_number.startswith("web:key_")
    assert final.agent_id == line.agent_id and final.dtmf_received == "42"
    assert final.turns and final.turns[0].latency_ms > 0
    messages = (
        await line.stack.client.get(
            line.space.path(f"/conversations/{final.conversation_id}/messages"), headers=line.space.viewer
        )
    ).json()["data"]
    spoken = [(m["role"], m["text"].lower()) for m in messages]
    assert any(role == "caller" and "opening hours" in text for role, text in spoken), spoken
    assert any(role == "agent" and says_hours(text) for role, text in spoken), spoken
    calls = (await line.stack.client.get(line.space.path("/calls"), headers=line.space.viewer)).json()["data"]
    assert [call["id"] for call in calls] == [ready.call_id]


async def _refusal(line: ConsoleLine, first: str | bytes, then: str | bytes | None = None) -> tuple[int, str]:
    async with connect(line.ws_url) as ws:
        await ws.send(first)
        if then is not None:
            ready = p.parse_server(str(await ws.recv()))
            assert isinstance(ready, p.Ready)
            await ws.send(then)
        with pytest.raises(ConnectionClosed):
            while True:
                await ws.recv()
        return ws.close_code or 0, ws.close_reason or ""


async def test_refusals_close_with_a_code_and_reason_while_another_call_carries_on(
    line: ConsoleLine, caller_voice: HibariTTS
) -> None:
    async with line.client() as good:
        assert await good.ready() is not None
        await good.next_agent_line(0)

        bad_key = await _refusal(line, p.encode(line.hello(key="bt_0123456789ab_not-a-key")))
        assert bad_key == (4401, "invalid API key")
        malformed_key = await _refusal(line, p.encode(line.hello(key="hello")))
        assert malformed_key == (4401, "malformed API key")
        viewer = await _refusal(line, p.encode(line.hello(Role.VIEWER)))
        assert viewer == (4403, "calling needs role 'operator' (key has 'viewer')")
        theirs = await _refusal(line, p.encode(line.hello(agent_id=line.other_agent_id)))
        assert theirs == (4404, "agent not found")
        not_json = await _refusal(line, "{nonsense")
        assert not_json[0] == 1007 and "invalid" in not_json[1]
        audio_first = await _refusal(line, b"\0\0")
        assert audio_first == (1007, "the first message must be hello")
        hello = p.encode(line.hello())
        oversized = await _refusal(line, hello, bytes(p.MAX_AUDIO_BYTES + 2))
        assert oversized == (1009, f"audio frame over {p.MAX_AUDIO_BYTES} bytes")
        odd = await _refusal(line, hello, b"\0\0\0")
        assert odd == (1007, "audio frame is not 16-bit samples")
        bad_digit = await _refusal(line, hello, '{"type": "dtmf", "digits": "x"}')
        assert bad_digit[0] == 1007 and "digits" in bad_digit[1]
        async with connect(line.ws_url) as silent:  # says nothing at all
            with pytest.raises(ConnectionClosed):
                await silent.recv()
        assert (silent.close_code, silent.close_reason) == (4408, "no hello within 10 s")

        reply = await good.ask(spoken_16k(caller_voice, QUESTION))
        assert reply is not None and says_hours(reply.text), reply
        ended = await good.hang_up()
        assert ended is not None and ended.end_reason == "completed"


async def test_a_call_ended_through_the_rest_api_closes_the_socket(line: ConsoleLine) -> None:
    async with line.client() as phone:
        ready = await phone.ready()
        assert ready is not None
        await phone.next_agent_line(0)
        hold = await line.stack.client.post(
            line.space.path(f"/calls/{ready.call_id}/hold"), headers=line.space.as_role(Role.OPERATOR)
        )
        assert hold.status_code == 200 and hold.json()["state"] == "hold", hold.text  # held by its media process
        hung_up = await line.stack.client.post(
            line.space.path(f"/calls/{ready.call_id}/hangup"), headers=line.space.as_role(Role.OPERATOR)
        )
        assert hung_up.status_code == 200, hung_up.text
        await eventually(lambda: _closed(phone.record.closed))
    assert phone.record.ended is not None and phone.record.closed == (1000, "call ended: completed")


async def _closed(value: object) -> bool:
    return value is not None


async def test_calling_one_of_the_space_numbers_reaches_its_agent(line: ConsoleLine) -> None:
    client, space = line.stack.client, line.space
    body = await phone_number_body(client, space)
    number = await create(client, space, "phone-numbers/port", body)
    hello = p.Hello(type="hello", api_key=space.keys[Role.OPERATOR], space_id=space.id, phone_number_id=number["id"])
    async with line.client(hello) as phone:
        ready = await phone.ready()
        assert ready is not None, phone.record.closed
        greeting = await phone.next_agent_line(0)
        assert greeting is not None and greeting.text == "Hello, how can I help?"  # the number's own agent
        await phone.hang_up()
    final = await line.state(ready.workflow_id)
    assert final.to_number == number["e164"] and final.agent_id == body["agent_id"]
    assert final.end_reason is not None and final.end_reason.value == "completed"

    flow = await create(
        client, space, "phone-numbers/port", body | {"e164": unique_e164(), "route_type": "flow", "agent_id": None,
                                                     "flow_id": "flow-1"}
    )  # fmt: skip
    hello.phone_number_id = flow["id"]
    # A number routed to a flow runs it (tests/voice/test_flow_console.py); this one's flow does not exist.
    refused = (4409, "the call was not accepted: the number's flow does not exist")
    assert await _refusal(line, p.encode(hello)) == refused
    theirs = await create(
        client, line.other_space, "phone-numbers/port", await phone_number_body(client, line.other_space)
    )
    hello.phone_number_id = theirs["id"]
    assert await _refusal(line, p.encode(hello)) == (4404, "phone number not found")


async def test_the_console_page_is_served_and_web_is_no_number_mode(line: ConsoleLine) -> None:
    client, space = line.stack.client, line.space
    page = await client.get("/console")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for name in ("console.js", "capture-worklet.js", "playback-worklet.js", "console.css"):
        assert (await client.get(f"/console/{name}")).status_code == 200
    assert (await client.get("/console/..%2Fapp.py")).status_code == 404
    assert (await client.get("/console/index.html")).status_code == 404

    body = await phone_number_body(client, space) | {"media_mode": "web"}
    refused = await client.post(space.path("/phone-numbers/port"), json=body, headers=space.admin)
    assert refused.status_code == 422 and "media_mode 'web' is for console calls" in refused.text
    number = await create(client, space, "phone-numbers/port", body | {"media_mode": "livekit"})
    patched = await client.patch(
        space.path(f"/phone-numbers/{number['id']}"), json={"media_mode": "web"}, headers=space.admin
    )
    assert patched.status_code == 422 and "media_mode 'web' is for console calls" in patched.text


def test_the_page_speaks_the_protocol_module() -> None:
    """console.js mirrors models/console_protocol.py by hand: the two must not drift apart."""
    script = (Path(__file__).parents[2] / "api" / "static" / "console" / "console.js").read_text()
    assert f'path: "{p.PATH}"' in script
    assert f"sampleRate: {p.SAMPLE_RATE}," in script and f"frameSamples: {p.FRAME_SAMPLES}," in script
    for code in p.Close:
        assert f"{int(code)}: " in script, code
    for message in ("ready", "segment_end", "clear", "transcript", "turn", "ended"):
        assert f'message.type === "{message}"' in script, message
    for message in ("hello", "played", "dtmf", "hangup"):
        assert f'type: "{message}"' in script, message


async def test_a_recorded_console_call_is_a_stereo_asset_of_both_sides_with_its_pause_and_hold_silent(
    line: ConsoleLine, caller_voice: HibariTTS
) -> None:
    """A console call to a number that records: after the space's announcement, caller (left) and agent (right)
    are recorded by the media process on one timeline; a pause and a hold are silence on both channels; the file
    becomes the space's asset through the same activities as a media stream's."""
    client, space = line.stack.client, line.space
    assert (await client.patch(space.path(), json={"recording_consent": "announce"}, headers=space.owner)).is_success
    body = await phone_number_body(client, space) | {"agent_id": line.agent_id, "recording_policy": "always"}
    number = await create(client, space, "phone-numbers/port", body)
    hello = p.Hello(type="hello", api_key=space.keys[Role.OPERATOR], space_id=space.id, phone_number_id=number["id"])
    operator = space.as_role(Role.OPERATOR)
    async with line.client(hello) as phone:
        ready = await phone.ready()
        assert ready is not None, phone.record.closed
        announcement = await phone.next_agent_line(0)
        assert announcement is not None and "record" in announcement.text.lower(), announcement
        await phone.next_agent_line(1)  # the greeting: the recording runs from here
        await phone.say(spoken_16k(caller_voice, QUESTION))  # its answer is not waited for (cheap): paused next
        call_path = space.path(f"/calls/{ready.call_id}")
        paused = await client.post(f"{call_path}/recording/pause", headers=operator)
        assert paused.status_code == 200 and paused.json()["recording_status"] == "paused", paused.text
        await phone.say(spoken_16k(caller_voice, "My card number is four one one one."))
        resumed = await client.post(f"{call_path}/recording/resume", headers=operator)
        assert resumed.status_code == 200 and resumed.json()["recording_status"] == "recording", resumed.text
        held = await client.post(f"{call_path}/hold", headers=operator)
        assert held.status_code == 200 and held.json()["recording_status"] == "paused", held.text  # the policy
        await asyncio.sleep(0.3)
        back = await client.post(f"{call_path}/resume", headers=operator)
        assert back.status_code == 200 and back.json()["recording_status"] == "recording", back.text
        await asyncio.sleep(0.3)
        await phone.hang_up()

    async def stored() -> dict[str, Any] | None:
        rows = (await client.get(space.path("/recordings"), headers=space.viewer)).json()["data"]
        return rows[0] if rows and rows[0]["status"] == "stored" else None

    asset = await eventually(stored, within=60)
    assert asset["call_id"] == ready.call_id and asset["channel_layout"] == "stereo:caller,agent"
    content = await client.get(space.path(f"/recordings/{asset['id']}/content"), headers=space.viewer)
    with wave.open(io.BytesIO(content.content)) as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, 8000)
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    secret, hold = ((int(a * 8000), int(b * 8000)) for a, b in asset["paused_spans"])
    assert secret[1] - secret[0] > 2 * 8000 and not samples[secret[0] : secret[1]].any()  # the card number
    assert hold[1] - hold[0] > 0.2 * 8000 and not samples[hold[0] : hold[1]].any()
    ears = get_whisper_engine()
    caller, agent = await asyncio.gather(hear(ears, samples[:, 0].copy()), hear(ears, samples[:, 1].copy()))
    assert "opening hours" in caller and "four one one one" not in caller and "card" not in caller, caller
    assert "thanks for calling" in agent and "record" not in agent, agent  # the announcement came before it
    # One timeline: the question (the caller's first words) comes after the greeting.
    speaking = [np.sqrt(np.mean(samples[i : i + 800].astype(np.float64) ** 2, axis=0)) > 300
                for i in range(0, len(samples) - 800, 800)]  # fmt: skip
    asked = next(i for i, (left, _) in enumerate(speaking) if left)
    assert any(right for _, right in speaking[:asked])
    final = await line.state(ready.workflow_id)
    events = [e.event for e in final.timeline]
    for expected in ("recording_consent", "recording_started", "recording_paused", "recording_resumed", "hold"):
        assert expected in events, events
    assert "carrier_hangup_failed" not in events and final.end_reason is not None, events  # no carrier leg
