"""Flow menu latency: from the caller's last DTMF digit to the first audio of the next prompt, over a Twilio
media stream, through the whole platform in one process (API + media-stream server + worker, a Temporal dev
server, SQLite): the key reaches the media process, the ``dtmf_received`` signal the call's workflow, the flow
decides the next step and asks the media process (an activity on its own task queue) to say the next prompt,
which synthesises it (hibari) and streams it back.

Baseline, measured in the same run and process: the same prompt synthesised in-process to its first audio (the
TTS floor no flow can beat). The difference is the flow's cost (signal, workflow task, activity dispatch).

    .venv/bin/python -m bench.flow_menu --steps 100
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench._support import load_average, pct, run_then_exit
from tests.support.flow_line import HOURS, flow_line
from tests.support.stack import running_stack, serve_http
from tests.support.temporal import start_dev_server
from tests.twilio_standin import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TwilioStandIn
from voice.media_stream.extension import MediaStreamExtension
from voice.speech import build_tts

PROMPT = "Press 1 to hear the next option."
MENU = {
    "name": "bench menu",
    "steps": [
        {
            "id": "menu",
            "type": "gather",
            "prompt": PROMPT,
            "choices": ["1"],
            "timeout_seconds": 30,
            "retries": 0,
            "next": "menu",
            "on_no_input": "bye",
        },
        {"id": "bye", "type": "hangup"},
    ],
}
AGENT = {"name": "front desk", "knowledge_base": [{"title": "Opening hours", "content": HOURS}]}


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def tts_first_audio(runs: int) -> list[float]:
    """Baseline: the prompt synthesised in this process, to its first audio frame (seconds)."""
    engine = build_tts("local-hibari", "heart")
    times = []
    for _ in range(runs):
        started = time.monotonic()
        async with engine.synthesize(PROMPT) as stream:
            async for _audio in stream:
                times.append(time.monotonic() - started)
                break
    return times


def line_ms(name: str, values: Sequence[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"{name:<44} p50 {pct(ms, 50):7.0f} ms   p99 {pct(ms, 99):7.0f} ms   (n={len(ms)})"


async def run(steps: int) -> None:
    print(f"# flow menu: {steps} menu steps over a Twilio media stream; {load_average()}")
    env = await start_dev_server()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-flow-") as tmp:
            async with (
                TwilioStandIn({TEST_ACCOUNT_SID: TEST_AUTH_TOKEN}) as carrier,
                running_stack(
                    env, Path(tmp), extensions=[MediaStreamExtension()], twilio_api_base_url=carrier.url
                ) as stack,
            ):
                assert stack.app is not None
                await stack.app.state.voice.warm_up()
                async with serve_http(stack.app) as base_url:
                    line = await flow_line(stack, carrier, base_url, MENU, AGENT)
                    baseline = await tts_first_audio(min(steps, 30))
                    parameters = await line.ring()
                    latencies: list[float] = []
                    async with line.stream(parameters) as phone:
                        await phone.start()
                        await phone.next_reply()  # the first prompt, heard out
                        started = time.monotonic()
                        for i in range(steps):
                            seen = len(phone.segments)
                            pressed = time.monotonic()
                            await phone.dtmf("1")
                            await phone.next_reply()  # the next prompt, heard out
                            latencies.append(phone.segments[seen].first_audio_at - pressed)
                            if (i + 1) % 20 == 0:
                                print(f"  {i + 1:3d} steps, last {latencies[-1] * 1000:.0f} ms", flush=True)
                        elapsed = time.monotonic() - started
                        await phone.stop()
                    view = await line.state(parameters["workflow_id"])
                    taken = sum(1 for e in view.timeline if e.event == "flow_step")
    finally:
        await env.shutdown()
    print(line_ms("last DTMF digit -> first audio of next prompt", latencies))
    print(line_ms("baseline: same prompt, in-process TTS first audio", baseline))
    overhead = pct([x * 1000 for x in latencies], 50) - pct([x * 1000 for x in baseline], 50)
    print(f"flow overhead at p50 (signal, workflow task, activity): {overhead:.0f} ms")
    print(f"throughput: {steps / elapsed:.2f} menu steps/s (each prompt played out, ~{elapsed / steps:.2f} s/step)")
    print(f"flow steps on the call's timeline: {taken}; peak RSS of this process: {rss_mb():.0f} MB")


def cli(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100, help="menu steps (default 100)")
    args = parser.parse_args(argv)
    steps = max(1, args.steps)
    run_then_exit(lambda: asyncio.wait_for(run(steps), timeout=120 + 10 * steps))


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    cli()
