"""Voice capacity: N simultaneous media-stream calls through real ``telephony media`` processes.

    .venv/bin/python -m bench.voice_capacity [--calls 1,2,4,8,16] [--turns 4] [--media-processes 1]

Set-up (``tests.support.media_processes.media_line``): a Temporal dev server, the API and the worker in this
process (the carrier stand-in's webhooks reach the API), ``--media-processes`` media processes started as
``python -m workers.cli media`` (calls spread over them round-robin, as a load balancer would), one agent with a
two-entry knowledge base. Each call is placed through the carrier stand-in (voice webhook → TwiML) and its
stream opened by ``TwilioMediaStream``, which plays Twilio's side in real time (20 ms μ-law frames).

Every caller asks the same questions (synthesised once with hibari before anything is timed), ``--turns`` per
call, hearing each answer out. Turn latency, client side: the reply's first audio frame received - the
question's last frame sent (this includes the VAD's end-of-speech silence). Two caller patterns per N:
- staggered: independent callers; each starts at a random offset and pauses a random 0.5-2.5 s between turns;
- together: every caller finishes speaking at the same instant (a barrier before each turn), the worst case.
Per N and pattern: p50/p95 over all turns, the worst call's p95, the media processes' CPU seconds per
call-minute (user+system, /proc) and their RSS, and, from the calls' own turn metrics, the media process's p95 of
end of speech → first audio sent ("server", timed from when its VAD noticed the end, less the 0.3 s hangover) and of
end of speech → final transcript ("STT"): client p95 far above server p95 means the process noticed ends late (its
VAD or event loop lagged); then the largest N whose every call's p95 ≤ 500 ms.
The callers and the worker run in this process: its own CPU share is printed too (a starved client inflates
latencies). Figures only, no assertions; the machine is shared, its load is printed with them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bench._support import load_average, pct, rss_mb, run_then_exit, table
from tests.support.media_processes import (
    Line,
    MediaProcess,
    media_line,
    speech,
    stream_parameters,
    stream_to,
)
from tests.support.media_stream_client import AgentSpeech, TwilioMediaStream
from tests.support.proc_stats import cpu_seconds
from tests.support.temporal import start_dev_server
from tests.twilio_standin import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TwilioStandIn
from voice.speech import HibariTTS
from workflows.call_client import CallClient, CallRef

CALLER_RATE = 24000
GOAL_MS = 500.0
QUESTIONS = ["What are your opening hours?", "Where can I park?"]
REPLY_WITHIN = 30.0  # a reply later than this counts as a failed turn (an overloaded run ends in time)
SILENCE_LEVEL = 131  # int16: trailing near-silence trimmed, so the last frame sent is the end of speech


@dataclass
class Run:
    calls: int
    pattern: str
    latencies: list[list[float]] = field(default_factory=list)  # ms, per call
    errors: int = 0
    media_cpu_s: float = 0.0
    own_cpu_s: float = 0.0
    wall_s: float = 0.0
    call_minutes: float = 0.0
    rss_mb: float = 0.0
    server_ms: list[float] = field(default_factory=list)  # the media process's own end of speech → first audio
    stt_ms: list[float] = field(default_factory=list)  # its end of speech → final transcript

    @property
    def all_ms(self) -> list[float]:
        return [x for call in self.latencies for x in call]

    @property
    def worst_call_p95(self) -> float:
        return max((pct(call, 95) for call in self.latencies if call), default=float("nan"))

    def row(self) -> list[object]:
        ms = self.all_ms
        per_minute = self.media_cpu_s / self.call_minutes if self.call_minutes else float("nan")
        return [
            self.pattern,
            self.calls,
            len(ms),
            self.errors,
            f"{pct(ms, 50):.0f}",
            f"{pct(ms, 95):.0f}",
            f"{self.worst_call_p95:.0f}",
            f"{per_minute:.1f}",
            f"{self.own_cpu_s / self.wall_s:.0%}" if self.wall_s else "-",
            f"{self.rss_mb:.0f}",
            f"{pct(self.server_ms, 95):.0f}",
            f"{pct(self.stt_ms, 95):.0f}",
        ]

    def within_goal(self) -> bool:
        return self.errors == 0 and all(call and pct(call, 95) <= GOAL_MS for call in self.latencies)


def trim(pcm: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > SILENCE_LEVEL)
    end = int(loud[-1]) + 1 + CALLER_RATE // 50 if len(loud) else len(pcm)
    return pcm[:end]


async def reply_to(phone: TwilioMediaStream, seen: int) -> AgentSpeech:
    """The first complete agent segment after ``seen`` segments (the reply, heard out)."""
    deadline = time.monotonic() + REPLY_WITHIN
    while True:
        done = [s for s in phone.segments[seen:] if s.mark is not None]
        if done:
            return done[0]
        if time.monotonic() > deadline:
            raise TimeoutError("no reply in time")
        await asyncio.sleep(0.02)


async def one_turn(phone: TwilioMediaStream, question: npt.NDArray[np.int16]) -> float:
    seen = len(phone.segments)
    await phone.say(question, CALLER_RATE)
    await reply_to(phone, seen)
    return (phone.segments[seen].first_audio_at - phone.last_caller_audio_at) * 1000


async def caller(
    phone: TwilioMediaStream,
    questions: list[npt.NDArray[np.int16]],
    turns: int,
    out: list[float],
    barrier: asyncio.Barrier | None,
    rng: random.Random,
) -> None:
    await reply_to(phone, 0)  # the greeting
    if barrier is None:
        await asyncio.sleep(rng.uniform(0.0, 3.0))  # independent callers do not start in step
    for turn in range(turns):
        if barrier is not None:
            await barrier.wait()  # the same question, so every caller's speech ends at the same instant
        else:
            await asyncio.sleep(rng.uniform(0.5, 2.5))
        out.append(await one_turn(phone, questions[turn % len(questions)]))


async def run(line: Line, run_: Run, questions: list[npt.NDArray[np.int16]], turns: int, seed: int) -> None:
    media = line.media
    pids = [m.process.pid for m in media]
    phones: list[TwilioMediaStream] = []
    calls: list[CallRef] = []
    barrier = asyncio.Barrier(run_.calls) if run_.pattern == "together" else None
    rng = random.Random(seed)
    cpu_before = sum(cpu_seconds(p) for p in pids)
    own_before = time.process_time()
    started = time.monotonic()
    try:
        for n in range(run_.calls):
            _, answer = await line.carrier.incoming_call(line.e164, f"+1415555{seed % 100:02d}{n:02d}")
            parameters = stream_parameters(answer.text)
            calls.append(line_calls(line).call(parameters["workflow_id"], space_id=line.space.id))
            phone = stream_to(media[n % len(media)], parameters)
            await phone.__aenter__()
            await phone.start()  # at once: the stream's line sends frames from now on
            phones.append(phone)
            run_.latencies.append([])
        outcomes = await asyncio.gather(
            *(caller(p, questions, turns, out, barrier, rng) for p, out in zip(phones, run_.latencies, strict=True)),
            return_exceptions=True,
        )
        run_.errors = sum(isinstance(o, BaseException) for o in outcomes)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                print(f"  a call failed: {outcome!r}", flush=True)
        run_.wall_s = time.monotonic() - started
        run_.call_minutes = run_.calls * run_.wall_s / 60
        run_.media_cpu_s = sum(cpu_seconds(p) for p in pids) - cpu_before
        run_.own_cpu_s = time.process_time() - own_before
        run_.rss_mb = sum(rss_mb(p) for p in pids)
        for view in await asyncio.gather(*(call.state() for call in calls), return_exceptions=True):
            if not isinstance(view, BaseException):
                run_.server_ms += [t.latency_ms for t in view.turns]  # (the greeting is no turn)
                run_.stt_ms += [t.stt_ms for t in view.turns if t.stt_ms is not None]
    finally:
        for phone in phones:
            with contextlib.suppress(Exception):  # a stream the media process already closed
                await phone.stop()
            await phone.__aexit__(None, None, None)
    await asyncio.sleep(2.0)  # the calls end and their agents close before the next run


def line_calls(line: Line) -> CallClient:
    temporal = line.stack.app.state.temporal._client  # type: ignore[union-attr]
    return CallClient(temporal, line.stack.settings.task_queue)


async def main(args: argparse.Namespace) -> None:
    counts = [int(x) for x in args.calls.split(",")]
    print(
        f"# voice capacity: {counts} simultaneous media-stream calls, {args.turns} turns each, "
        f"{args.media_processes} media process(es); {load_average()}",
        flush=True,
    )
    voice = HibariTTS(voice="heart")
    questions = [trim(await speech(voice, q)) for q in QUESTIONS]
    print(f"# questions: {', '.join(f'{len(q) / CALLER_RATE:.2f} s' for q in questions)}", flush=True)
    env = await start_dev_server()
    processes: list[MediaProcess] = []
    runs: list[Run] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-voice-capacity-") as tmp:
            async with (
                TwilioStandIn({TEST_ACCOUNT_SID: TEST_AUTH_TOKEN}) as carrier,
                media_line(env, Path(tmp), carrier, processes, count=args.media_processes) as line,
            ):
                idle = sum(rss_mb(m.process.pid) for m in processes)
                print(f"# media processes ready, idle RSS {idle:.0f} MB in all", flush=True)
                for pattern in ("staggered", "together"):
                    for n in counts:
                        run_ = Run(n, pattern)
                        await run(line, run_, questions, args.turns, seed=n * 7 + len(runs))
                        runs.append(run_)
                        print(
                            f"  {pattern:9s} N={n:2d}: p50 {pct(run_.all_ms, 50):5.0f} ms  p95 "
                            f"{pct(run_.all_ms, 95):5.0f} ms  worst call p95 {run_.worst_call_p95:5.0f} ms  "
                            f"errors {run_.errors}  ({load_average()})",
                            flush=True,
                        )
    finally:
        for media in processes:
            media.close()
        await env.shutdown()
    header = ["callers", "N", "turns", "errors", "p50 ms", "p95 ms", "worst call p95", "media CPU s/call-min"]
    print()
    server = ["server p95 ms", "STT p95 ms"]
    print(table([*header, "bench proc CPU", "media RSS MB", *server], [r.row() for r in runs]))
    for pattern in ("staggered", "together"):
        ok = [r.calls for r in runs if r.pattern == pattern and r.within_goal()]
        best = max(ok) if ok else 0
        print(f"largest N with every call's p95 <= {GOAL_MS:.0f} ms, {pattern}: {best or 'none'}")
    print(f"# {load_average()}")


def cli(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", default="1,2,4,8,16", help="simultaneous calls per run, comma-separated")
    parser.add_argument("--turns", type=int, default=4, help="questions per call (default 4)")
    parser.add_argument("--media-processes", type=int, default=1, help="media processes sharing the calls")
    args = parser.parse_args(argv)
    run_then_exit(lambda: main(args))


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    cli()
