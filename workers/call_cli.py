"""``telephony call``: call an agent or number of the platform from a terminal, over the console socket.

Speaks a line of text (synthesised locally with hibari) or a WAV file as the caller, prints each agent reply
with the turn's latency, sends DTMF, hangs up, and exits with the call's end state: 0 when it ended normally
(``completed``), 1 for another end, 2 when the call was refused or broke off (the close code and reason are
printed on stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import wave
from dataclasses import dataclass
from itertools import cycle, islice
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import numpy.typing as npt

from models import console_protocol as p
from workers.console_client import ConsoleClient

EXIT_COMPLETED, EXIT_OTHER_END, EXIT_REFUSED = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "target", help="an agent id (ag_…), a flow id (fl_…), a phone-number id (pn_…) or one of the space's numbers"
    )
    parser.add_argument("--space", help="the space (default: the key's own space)")
    say = parser.add_mutually_exclusive_group(required=True)
    say.add_argument("--text", action="append", help="a line to say (repeat for several turns)")
    say.add_argument("--wav", action="append", help="a WAV file to say (repeat for several turns)")
    parser.add_argument("--turns", type=int, help="how many turns to take (default: one per --text/--wav)")
    parser.add_argument("--dtmf", default="", help="keys to press after the turns (0-9, *, #, A-D)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of lines")
    parser.add_argument("--api-url", default=os.environ.get("TELEPHONY_API_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--key", default=os.environ.get(p.KEY_ENV), help=f"API key (default: ${p.KEY_ENV})")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for each reply")


@dataclass
class Target:
    space_id: str
    agent_id: str | None = None
    phone_number_id: str | None = None
    flow_id: str | None = None


async def resolve_target(api_url: str, key: str, space: str | None, target: str) -> Target:
    """The space (the key's own if not given) and the agent or number, named by id or by E.164."""
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=10) as client:
        if space is None:
            spaces = _data(await client.get("/v1/spaces", params={"limit": 2}))
            if len(spaces) != 1:
                raise SystemExit("telephony call: the key sees several spaces: name one with --space")
            space = str(spaces[0]["id"])
        if target.startswith("ag_"):
            return Target(space, agent_id=target)
        if target.startswith("pn_"):
            return Target(space, phone_number_id=target)
        if target.startswith("fl_"):
            return Target(space, flow_id=target)
        numbers = _data(await client.get(f"/v1/spaces/{space}/phone-numbers", params={"limit": 200}))
        for number in numbers:
            if number["e164"] == target:
                return Target(space, phone_number_id=str(number["id"]))
    raise SystemExit(f"telephony call: {target!r} is not an agent, flow or number id, or a number of the space")


def _data(response: httpx.Response) -> list[dict[str, Any]]:
    if response.status_code != 200:
        detail = response.json().get("detail") if response.content else response.reason_phrase
        raise SystemExit(f"telephony call: the API answered {response.status_code}: {detail}")
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def utterances(args: argparse.Namespace) -> list[npt.NDArray[np.int16]]:
    if args.text:
        from voice.speech import build_tts
        from voice.speech._local_tts import LocalTTS
        from voice.speech.audio import resample_int16

        tts = build_tts("local-hibari")
        assert isinstance(tts, LocalTTS)
        spoken = [resample_int16(tts.synthesize_pcm(text), tts.native_rate, p.SAMPLE_RATE) for text in args.text]
    else:
        spoken = [read_wav(path) for path in args.wav]
    turns = args.turns if args.turns is not None else len(spoken)
    return list(islice(cycle(spoken), turns))


def read_wav(path: str) -> npt.NDArray[np.int16]:
    """A 16-bit PCM WAV file as mono samples at the protocol's rate."""
    from voice.speech.audio import resample_int16

    with wave.open(path, "rb") as wav:
        if wav.getsampwidth() != 2:
            raise SystemExit(f"telephony call: {path} is not 16-bit PCM")
        rate, channels = wav.getframerate(), wav.getnchannels()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    mono = samples.reshape(-1, channels).mean(axis=1).astype(np.int16)
    return resample_int16(mono, rate, p.SAMPLE_RATE)


async def socket_url(api_url: str) -> str:
    """The console's audio socket, as the API says (the media servers), or on the API's own origin."""
    async with httpx.AsyncClient(base_url=api_url, timeout=10) as client:
        response = await client.get(f"{p.PAGE_PATH}/config.json")
    configured = response.json().get("socket_url") if response.status_code == 200 else None
    if isinstance(configured, str) and configured:
        return configured
    parts = urlsplit(api_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}{p.PATH}"


class Printer:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.document: dict[str, Any] = {"turns": []}

    def line(self, who: str, text: str, latency_ms: float | None = None) -> None:
        if self.as_json:
            self.document["turns"].append({"role": who, "text": text, "latency_ms": latency_ms})
            return
        suffix = f"  ({latency_ms:.0f} ms)" if latency_ms is not None else ""
        print(f"{who}: {text}{suffix}", flush=True)


async def run_call(args: argparse.Namespace) -> int:
    if not args.key:
        raise SystemExit(f"telephony call: give --key or set {p.KEY_ENV}")
    target = await resolve_target(args.api_url, args.key, args.space, args.target)
    spoken = utterances(args)  # on the main thread: livekit registers its plugins there
    hello = p.Hello(
        type="hello",
        api_key=args.key,
        space_id=target.space_id,
        agent_id=target.agent_id,
        phone_number_id=target.phone_number_id,
        flow_id=target.flow_id,
    )
    out = Printer(args.json)
    async with ConsoleClient(await socket_url(args.api_url), hello) as phone:
        ready = await phone.ready()
        if ready is not None:
            out.document["call_id"] = ready.call_id
            greeting = await phone.next_agent_line(0, args.timeout)
            if greeting is not None:
                out.line("agent", greeting.text)
            for pcm in spoken:
                reply = await phone.ask(pcm, args.timeout)
                heard = [t.text for t in phone.record.transcripts if t.role == "caller" and t.final]
                if heard:
                    out.line("caller", heard[-1])
                if reply is None:
                    break
                out.line("agent", reply.text, reply.latency_ms)
            if args.dtmf and phone.record.closed is None:
                await phone.dtmf(args.dtmf)
            if phone.record.closed is None:
                await phone.hang_up()
    record = phone.record
    code, reason = record.closed or (1006, "")
    ended = record.ended
    out.document |= {
        "end_reason": ended.end_reason if ended else None,
        "close_code": code,
        "close_reason": reason,
    }
    if args.json:
        print(json.dumps(out.document, indent=2))
    if ended is None:
        print(f"telephony call: the call was refused or broke off: {code} {reason}", file=sys.stderr)
        return EXIT_REFUSED
    if not args.json:
        print(f"call ended: {ended.end_reason or ended.state}")
    return EXIT_COMPLETED if ended.end_reason == "completed" else EXIT_OTHER_END
