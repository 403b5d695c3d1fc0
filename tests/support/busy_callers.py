"""Callers in a process of their own (as the carrier's side is in production): each opens a Twilio media stream
to a media process and asks one question after another, hearing each answer out. It prints one line per answer,
so the process starting it knows the calls are in conversation, and runs until it is terminated.

    python -m tests.support.busy_callers < plan.json

The plan: ``{"url": ws-url, "signature": ..., "account_sid": ..., "calls": [parameters, ...], "questions":
[path of a 24 kHz int16 .npy, ...]}``."""

from __future__ import annotations

import asyncio
import json
import sys
from contextlib import AsyncExitStack
from typing import Any

import numpy as np

from tests.support.media_stream_client import TwilioMediaStream

REPLY_WITHIN = 120.0


async def _ask(phone: TwilioMediaStream, questions: list[np.ndarray], n: int) -> None:
    await phone.next_reply(within=REPLY_WITHIN)  # the greeting
    print(f"greeted {n}", flush=True)
    while True:
        for question in questions:
            await phone.say(question, 24000)
            await phone.next_reply(within=REPLY_WITHIN)
            print(f"answered {n}", flush=True)


async def main(plan: dict[str, Any]) -> None:
    questions = [np.load(path) for path in plan["questions"]]
    async with AsyncExitStack() as streams:
        askers = []
        for n, parameters in enumerate(plan["calls"]):
            phone = TwilioMediaStream(
                plan["url"], signature=plan["signature"], account_sid=plan["account_sid"], parameters=parameters
            )
            await streams.enter_async_context(phone)
            await phone.start()  # at once: the stream's line sends frames from now on
            askers.append(asyncio.create_task(_ask(phone, questions, n)))
        await asyncio.gather(*askers)


if __name__ == "__main__":
    asyncio.run(main(json.load(sys.stdin)))
