"""Voice turn latency over the console WebSocket beside the carrier media stream, in the same run.

    .venv/bin/python -m bench.console_turn [--turns 6] [--rounds 2]

One process, as ``bench.voice_turn``: a Temporal dev server, a migrated SQLite platform, the worker and the API
with both transports (``MediaStreamExtension`` and ``ConsoleExtension``) on a loopback port, a ``TwilioStandIn``
as the carrier. One agent (``bench.voice_turn.KNOWLEDGE``) answers both kinds of call; the caller questions are
the same hibari-synthesised, tail-trimmed questions. Calls alternate carrier, console, console, carrier, ... (ABBA,
``--rounds`` times) so a drift in the machine's load falls on both alike.

Per turn, client side: first agent audio received - last caller audio sent (both clients send 20 ms frames in real
time and play replies out in real time before the next question; the figure includes the VAD's end-of-speech
silence). Server side: the call's ``turns`` from the workflow (end of speech → first agent audio sent, same
``TurnMetrics`` for both). The carrier stream is the baseline: μ-law 8 kHz in and out; the console is 16 kHz PCM.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import signal
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from temporalio.client import Client
from twilio.request_validator import RequestValidator

from bench._support import exit_now, load_average, pct, table
from bench.voice_turn import CALLER_RATE, KNOWLEDGE, PAUSE_BETWEEN_TURNS, PUBLIC, STREAM_URL, Question, _reply
from bench.voice_turn import synthesise_questions as synthesise
from models import calls as c
from models import console_protocol as p
from models.enums import Role
from tests.api.resources import twilio_number
from tests.conftest import Platform, SpaceKeys
from tests.support.media_stream_client import TwilioMediaStream
from tests.support.stack import running_stack, serve_http, temporal_client
from tests.support.temporal import start_dev_server
from tests.twilio_standin import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TwilioStandIn
from voice.console.extension import ConsoleExtension
from voice.media_stream.extension import MediaStreamExtension
from voice.speech.audio import resample_int16
from workers.console_client import ConsoleClient
from workflows.calls import CallWorkflow

CARRIER, CONSOLE = "carrier media stream", "console WebSocket"


@dataclass
class Transport:
    client_ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    server: list[c.TurnMetrics] = field(default_factory=list)
    correct: int = 0
    calls: int = 0


@dataclass
class Line:
    stack: Platform
    space: SpaceKeys
    agent_id: str
    e164: str
    base_url: str
    carrier: TwilioStandIn
    temporal: Client


async def _server_turns(temporal: Client, workflow_id: str, expected: int) -> list[c.TurnMetrics]:
    deadline = time.monotonic() + 10
    while True:
        view = await temporal.get_workflow_handle_for(CallWorkflow.run, workflow_id).query(CallWorkflow.get_state)
        if len(view.turns) >= expected or time.monotonic() > deadline:
            return list(view.turns)
        await asyncio.sleep(0.1)


async def carrier_call(line: Line, questions: Sequence[Question], out: Transport) -> None:
    record, response = await line.carrier.incoming_call(line.e164, "+14155550142")
    element = ET.fromstring(response.text).find("./Connect/Stream")
    assert element is not None, response.text
    parameters = {str(e.get("name")): str(e.get("value")) for e in element.findall("Parameter")}
    parameters["call_sid"] = record.sid
    phone = TwilioMediaStream(
        f"{line.base_url.replace('http', 'ws')}/media/twilio",
        signature=RequestValidator(TEST_AUTH_TOKEN).compute_signature(STREAM_URL, {}),
        account_sid=TEST_ACCOUNT_SID,
        parameters=parameters,
    )
    async with phone:
        await phone.start()
        await _reply(phone, 0)  # the greeting, heard out
        for question in questions:
            await asyncio.sleep(PAUSE_BETWEEN_TURNS)
            seen = len(phone.segments)
            await phone.say(question.pcm, CALLER_RATE)
            await _reply(phone, seen)
            latency = (phone.segments[seen].first_audio_at - phone.last_caller_audio_at) * 1000
            out.client_ms.append(latency)
            print(f"  {CARRIER:21s} {latency:6.0f} ms  {question.text}", flush=True)
        turns = await _server_turns(line.temporal, parameters["workflow_id"], len(questions))
        out.server_ms += [t.latency_ms for t in turns]
        out.server += turns
        await phone.stop()
    out.calls += 1


async def console_call(line: Line, questions: Sequence[Question], out: Transport) -> None:
    key = line.space.keys[Role.OPERATOR]
    hello = p.Hello(type="hello", api_key=key, space_id=line.space.id, agent_id=line.agent_id)
    async with ConsoleClient(line.base_url.replace("http", "ws", 1) + p.PATH, hello) as phone:
        ready = await phone.ready()
        assert ready is not None, phone.record.closed
        await phone.next_agent_line(0)  # the greeting, heard out
        for question in questions:
            await asyncio.sleep(PAUSE_BETWEEN_TURNS)
            reply = await phone.ask(resample_int16(question.pcm, CALLER_RATE, p.SAMPLE_RATE))
            assert reply is not None, phone.record.closed
            first = next(t for t in phone.record.first_agent_audio_at if t > phone.last_caller_audio_at)
            latency = (first - phone.last_caller_audio_at) * 1000
            out.client_ms.append(latency)
            out.correct += reply.text.strip() == question.answer
            print(f"  {CONSOLE:21s} {latency:6.0f} ms  {question.text}", flush=True)
        turns = await _server_turns(line.temporal, ready.workflow_id, len(questions))
        out.server_ms += [t.latency_ms for t in turns]
        out.server += turns
        await phone.hang_up()
    out.calls += 1


async def run(turns: int, rounds: int) -> dict[str, Transport]:
    questions = await asyncio.to_thread(synthesise, turns)
    results = {CARRIER: Transport(), CONSOLE: Transport()}
    env = await start_dev_server()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
            async with (
                TwilioStandIn({TEST_ACCOUNT_SID: TEST_AUTH_TOKEN}) as carrier,
                running_stack(
                    env,
                    Path(tmp),
                    extensions=[MediaStreamExtension(), ConsoleExtension()],
                    twilio_api_base_url=carrier.url,
                ) as stack,
            ):
                assert stack.app is not None
                await stack.app.state.voice.warm_up()
                space = await stack.new_space("bench")
                body = {
                    "name": "front desk",
                    "greeting": "Hello, thanks for calling.",
                    "knowledge_base": [{"title": t, "content": text} for t, text in KNOWLEDGE],
                    "tts_provider": "local-hibari",
                }
                e164 = await twilio_number(
                    stack.client,
                    space,
                    media_mode="stream",
                    agent=body,
                    account_sid=TEST_ACCOUNT_SID,
                    auth_token=TEST_AUTH_TOKEN,
                )
                carrier.add_incoming(
                    TEST_ACCOUNT_SID,
                    e164,
                    VoiceUrl=f"{PUBLIC}/webhooks/twilio/voice",
                    StatusCallback=f"{PUBLIC}/webhooks/twilio/status",
                )
                carrier.webhook_transport = httpx.ASGITransport(app=stack.app)
                agents = await stack.client.get(space.path("/agents"), headers=space.viewer)
                [agent] = agents.json()["data"]  # the number's agent answers both kinds of call
                async with serve_http(stack.app) as base_url:
                    line = Line(stack, space, agent["id"], e164, base_url, carrier, temporal_client(stack))
                    for _ in range(rounds):  # ABBA
                        await carrier_call(line, questions, results[CARRIER])
                        await console_call(line, questions, results[CONSOLE])
                        await console_call(line, questions, results[CONSOLE])
                        await carrier_call(line, questions, results[CARRIER])
    finally:
        await env.shutdown()
    return results


PARTS = ("stt_ms", "llm_ttft_ms", "tts_ttfb_ms")  # where the server's time went (TurnMetrics)


def _p50(values: Sequence[float | None]) -> str:
    present = [v for v in values if v is not None]
    return f"{pct(present, 50):.0f}" if present else "-"


def report(results: dict[str, Transport], started: float) -> None:
    rows = []
    for name, r in results.items():
        rows.append(
            [
                name,
                len(r.client_ms),
                f"{pct(r.client_ms, 50):.0f}",
                f"{pct(r.client_ms, 95):.0f}",
                f"{max(r.client_ms):.0f}",
                f"{pct(r.server_ms, 50):.0f}",
                f"{pct(r.server_ms, 95):.0f}",
                len(r.server_ms),
                *(_p50([getattr(t, part) for t in r.server]) for part in PARTS),
            ]
        )
    print()
    print("Turn latency, ms (client: last caller audio sent → first agent audio received; server: the workflow's")
    print("turns, end of speech → first agent audio sent). The carrier media stream is the baseline.")
    header = ["transport", "turns", "client p50", "client p95", "max", "server p50", "server p95", "server turns"]
    header += [f"{part.removesuffix('_ms')} p50" for part in PARTS]
    print(table(header, rows))
    console = results[CONSOLE]
    print(f"console: correct KB answers {console.correct}/{len(console.client_ms)} over {console.calls} calls")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {rss:.0f} MB (whole process: stack, models, clients); {time.monotonic() - started:.0f} s; "
          f"{load_average()}")  # fmt: skip


async def main(turns: int, rounds: int) -> None:
    started = time.monotonic()
    print(f"# voice turns, console vs carrier stream: {turns} turns per call, {rounds} ABBA rounds; {load_average()}")
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    results = await asyncio.wait_for(run(turns, rounds), timeout=120 + 60 * turns * rounds)
    report(results, started)


def cli(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=6, help="questions per call (default 6)")
    parser.add_argument("--rounds", type=int, default=2, help="ABBA rounds (4 calls each; default 2)")
    args = parser.parse_args(argv)
    code = 0
    try:
        asyncio.run(main(max(1, args.turns), max(1, args.rounds)))
    except BaseException as exc:
        traceback.print_exc()
        print(f"benchmark failed: {exc!r}", file=sys.stderr)
        code = 1
    exit_now(code)


if __name__ == "__main__":
    cli()
