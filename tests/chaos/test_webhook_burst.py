"""A burst of signed voice webhooks over real HTTP (uvicorn on loopback): every call is started exactly once
(retried deliveries included), no answer is ever a 5xx, and each call's workflow routes and opens it."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
from sqlalchemy import func, select
from temporalio.testing import WorkflowEnvironment
from twilio.request_validator import RequestValidator

from models.call_contract import call_workflow_id
from models.calls import HangupRequest
from models.tables import Call
from tests.api.resources import twilio_number
from tests.chaos.conftest import ChaosSize
from tests.support.stack import running_stack, serve_http
from tests.twilio_standin import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TwilioStandIn
from workflows.call_client import CallClient

PUBLIC = "https://telephony.example.com"
VOICE = "/webhooks/twilio/voice"


async def test_a_burst_of_webhooks_starts_every_call_once_and_never_fails(
    temporal_env: WorkflowEnvironment, twilio_standin: TwilioStandIn, tmp_path: Path, size: ChaosSize
) -> None:
    async with running_stack(temporal_env, tmp_path, twilio_api_base_url=twilio_standin.url) as stack:
        space = await stack.new_space()
        e164 = await twilio_number(
            stack.client, space, media_mode="stream", account_sid=TEST_ACCOUNT_SID, auth_token=TEST_AUTH_TOKEN
        )
        count = int(size.burst_rate * size.burst_seconds)
        sids = ["CA" + uuid.uuid4().hex for _ in range(count)]
        answers: Counter[int] = Counter()
        latencies: list[float] = []
        assert stack.app is not None
        async with serve_http(stack.app) as base_url, httpx.AsyncClient(base_url=base_url, timeout=60) as http:
            validator = RequestValidator(TEST_AUTH_TOKEN)

            async def deliver(index: int, sid: str, not_before: float) -> None:
                await asyncio.sleep(max(0.0, not_before - time.monotonic()))
                params = {"CallSid": sid, "AccountSid": TEST_ACCOUNT_SID, "From": "+14155550199", "To": e164}
                params |= {"CallStatus": "ringing", "Direction": "inbound"}
                headers = {"X-Twilio-Signature": validator.compute_signature(PUBLIC + VOICE, params)}
                for _ in range(2 if index % 10 == 0 else 1):  # one delivery in ten is repeated, as carriers do
                    sent = time.monotonic()
                    response = await http.post(VOICE, data=params, headers=headers)
                    latencies.append(time.monotonic() - sent)
                    answers[response.status_code] += 1
                    assert response.status_code == 200 and "<Stream" in response.text, response.text

            began = time.monotonic()
            await asyncio.gather(*(deliver(i, sid, began + i / size.burst_rate) for i, sid in enumerate(sids)))
            elapsed = time.monotonic() - began
        latencies.sort()
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        rate = len(latencies) / elapsed
        print(f"\n{len(latencies)} webhooks in {elapsed:.1f} s ({rate:.0f}/s), p99 {p99 * 1000:.0f} ms")
        assert set(answers) == {200}, answers

        deadline = time.monotonic() + 120
        while True:
            async with stack.sessions() as session:
                rows = await session.scalar(select(func.count()).select_from(Call).where(Call.space_id == space.id))
            if rows == count or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert rows == count, f"{rows} call rows for {count} calls"  # repeated deliveries started nothing new
        calls = CallClient(temporal_env.client, stack.settings.task_queue)
        for sid in sids:
            await calls.call(call_workflow_id(space.id, sid), space_id=space.id).hangup(HangupRequest(by="chaos"))
