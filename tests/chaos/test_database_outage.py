"""PostgreSQL stopped in the middle of a burst of carrier webhooks: while it is down the webhooks answer 503 (a
carrier retries those) and never another 5xx; once it is back every call exists exactly once, and the calls'
workflows, whose database activities retried through the outage, have each routed and opened their call."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from twilio.request_validator import RequestValidator

from api.temporal import TemporalGateway
from models.call_contract import call_workflow_id
from models.calls import CallStateView, HangupRequest
from models.enums import CallState
from models.settings import Settings
from models.tables import Call
from tests.api.resources import twilio_number
from tests.chaos.conftest import ChaosSize
from tests.conftest import SECRET_KEY, Platform, make_platform, serve_api
from tests.support.postgres import PostgresServer, start_postgres
from tests.twilio_standin import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TwilioStandIn
from workers.worker import activity_clients, build_worker
from workflows.call_client import CallClient, CallRef

PUBLIC = "https://telephony.example.com"
VOICE = "/webhooks/twilio/voice"
RETRY_SECONDS = 0.3  # how soon our carrier retries a 503


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    server = start_postgres()
    if server is None:
        pytest.skip("PostgreSQL binaries not installed")
    yield server
    server.stop()


async def _carrier_call(
    http: httpx.AsyncClient, e164: str, call_sid: str, answers: Counter[int], not_before: float
) -> None:
    """One call as Twilio places it: the voice webhook, retried while it answers 503."""
    await asyncio.sleep(max(0.0, not_before - time.monotonic()))
    params = {
        "CallSid": call_sid,
        "AccountSid": TEST_ACCOUNT_SID,
        "From": "+14155550199",
        "To": e164,
        "CallStatus": "ringing",
        "Direction": "inbound",
    }
    signature = RequestValidator(TEST_AUTH_TOKEN).compute_signature(PUBLIC + VOICE, params)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        response = await http.post(VOICE, data=params, headers={"X-Twilio-Signature": signature})
        answers[response.status_code] += 1
        if response.status_code != 503:
            assert response.status_code == 200 and "<Stream" in response.text, response.text
            return
        assert response.headers.get("retry-after"), "a 503 tells the carrier when to retry"
        await asyncio.sleep(RETRY_SECONDS)
    raise AssertionError("the webhook never succeeded after the database came back")


async def _settled_state(call: CallRef) -> CallStateView:
    """The call's state; a query may find a workflow task being retried (a worker busy catching up): ask again."""
    for _ in range(40):
        try:
            return await call.state()
        except RPCError:
            await asyncio.sleep(0.5)
    failures = [
        str(e.workflow_task_failed_event_attributes.failure.message)
        for e in (await call.handle.fetch_history()).events
        if e.HasField("workflow_task_failed_event_attributes")
    ]
    raise AssertionError(f"the call's workflow never settled; workflow task failures: {failures}")


async def test_postgres_stopped_during_a_webhook_burst(
    temporal_env: WorkflowEnvironment,
    postgres: PostgresServer,
    twilio_standin: TwilioStandIn,
    tmp_path: Path,
    size: ChaosSize,
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url=postgres.create_database(f"chaos_{uuid.uuid4().hex[:8]}"),
        secret_keys=SECRET_KEY,
        task_queue=f"chaos-{uuid.uuid4().hex[:8]}",
        public_url=PUBLIC,
        twilio_api_base_url=twilio_standin.url,  # hanging up a ringing call cancels it at the carrier
        directory_cache_seconds=0,  # every webhook needs the database: the outage is seen by all of them
    )
    platform: Platform = await make_platform(settings)
    async with (
        activity_clients(settings) as clients,
        build_worker(temporal_env.client, settings, clients),
        serve_api(platform, TemporalGateway(settings, temporal_env.client)) as api,
    ):
        space = await api.new_space()
        e164 = await twilio_number(
            api.client, space, media_mode="stream", account_sid=TEST_ACCOUNT_SID, auth_token=TEST_AUTH_TOKEN
        )
        count = int(size.burst_rate * size.burst_seconds)
        sids = ["CA" + uuid.uuid4().hex for _ in range(count)]
        answers: Counter[int] = Counter()
        began = time.monotonic()
        calls = [
            asyncio.create_task(_carrier_call(api.client, e164, sid, answers, began + index / size.burst_rate))
            for index, sid in enumerate(sids)
        ]

        await asyncio.sleep(size.burst_seconds * 0.3)
        await asyncio.to_thread(postgres.pause)
        stopped = time.monotonic()
        await asyncio.sleep(size.outage_seconds)
        await asyncio.to_thread(postgres.resume)
        print(f"\nPostgreSQL down for {time.monotonic() - stopped:.1f} s during {count} webhooks")

        await asyncio.gather(*calls)
        print(f"webhook answers: {dict(answers)}")
        assert set(answers) <= {200, 503}, answers
        assert answers[503] > 0, "no webhook arrived while the database was down"
        assert answers[200] == count  # each call answered once it could be

        calls_client = CallClient(temporal_env.client, settings.task_queue)
        deadline = time.monotonic() + 120
        while True:  # the workflows' database activities retried through the outage
            async with platform.sessions() as session:
                rows = await session.scalar(select(func.count()).select_from(Call).where(Call.space_id == space.id))
            if rows == count or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert rows == count, f"{rows} call rows for {count} calls"
        for sid in sids:
            call = calls_client.call(call_workflow_id(space.id, sid), space_id=space.id)
            view = await _settled_state(call)
            assert view.state is CallState.RINGING and view.conversation_id is not None
            await call.hangup(HangupRequest(by="chaos"))  # ends before the worker stops
        async with platform.sessions() as session:
            ids = list(await session.scalars(select(Call.id).where(Call.space_id == space.id)))
        assert len(ids) == len(set(ids)) == count
