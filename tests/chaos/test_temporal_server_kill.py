"""kill -9 of the Temporal dev server in the middle of calls, then a restart on the same database file: no call
is lost. The calls were ringing or active when the server died; afterwards each one still hears its events
(DTMF, hold, hang-up) and ends ENDED with its whole timeline. The worker is a real process that outlives the
server and reconnects by itself."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from livekit import api as lk
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from models.calls import ActiveEvent, CallStateView, ConnectedEvent, DtmfEvent, HangupRequest, HoldRequest
from models.db import create_engine, migrate, session_factory
from models.enums import CallState, EndReason
from tests.chaos.test_worker_kills import _retrying
from tests.livekit_standin import LiveKitStandIn
from tests.support.postgres import free_port
from tests.workflows.conftest import CallHarness
from tests.workflows.test_call_crash import WorkerProcess, events, until, worker_env
from workers.temporal_server import TemporalServerError, dev_server_command, temporal_binary, wait_until_ready
from workflows.calls import CallWorkflow

S = CallState


def _start_server(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    command = dev_server_command(temporal_binary(), data_dir=data_dir, port=port, ui_port=free_port())
    log = (data_dir / "temporal.log").open("ab")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


async def _ready(server: subprocess.Popen[bytes], data_dir: Path, port: int) -> bool:
    """Whether the server came up; False if it exited first (another test's process took one of the ports the dev
    server binds beside ``port``); its log is in the failure otherwise."""
    try:
        await wait_until_ready(f"127.0.0.1:{port}", "default", within=60, keep_waiting=lambda: server.poll() is None)
    except TemporalServerError as exc:
        if server.poll() is not None:
            return False
        log = (data_dir / "temporal.log").read_text(errors="replace")[-3000:]
        raise AssertionError(f"the Temporal server did not come up; its log ends:\n{log}") from exc
    return True


async def _first_server(data_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
    for _ in range(3):
        port = free_port()
        server = _start_server(data_dir, port)
        if await _ready(server, data_dir, port):
            return server, port
    log = (data_dir / "temporal.log").read_text(errors="replace")[-3000:]
    raise AssertionError(f"the Temporal server exited on each of 3 ports; its log ends:\n{log}")


async def test_kill_9_temporal_server_mid_call_and_restart_on_the_same_database(
    temporal_env: WorkflowEnvironment, livekit_standin: LiveKitStandIn, tmp_path: Path
) -> None:
    server, port = await _first_server(tmp_path)
    address = f"127.0.0.1:{port}"
    worker: WorkerProcess | None = None
    url = f"sqlite+aiosqlite:///{tmp_path / 'telephony.db'}"
    await asyncio.to_thread(migrate, url)
    engine = create_engine(url)
    lk_api = lk.LiveKitAPI(livekit_standin.url, livekit_standin.api_key, livekit_standin.api_secret)
    try:
        client = await Client.connect(address)
        queue = f"chaos-{uuid.uuid4().hex[:8]}"
        env = worker_env(temporal_env, livekit_standin, tmp_path, url, queue) | {
            "TELEPHONY_TEMPORAL_ADDRESS": address,
            "TELEPHONY_TEMPORAL_NAMESPACE": "default",
        }
        worker = WorkerProcess.start(env, tmp_path, "worker")
        await worker.wait_polling()
        calls = CallHarness(client, queue, session_factory(engine), livekit_standin, lk_api)

        # Two calls active and one still ringing when the server dies.
        handles: list[tuple[WorkflowHandle[Any, CallStateView], str]] = []
        for index in range(3):
            line = await calls.new_line()
            start = calls.inbound(line)
            assert start.room_name is not None
            caller = await livekit_standin.add_sip_caller(start.room_name, start.from_number, line.e164)
            handle = await calls.start(start)
            handles.append((handle, start.room_name))
            if index == 2:
                continue
            connected = ConnectedEvent(room_name=start.room_name, participant_identity=caller.identity)
            await handle.signal(CallWorkflow.connected, connected)
            await until(handle, lambda v: "agent_dispatched" in events(v))
            await handle.signal(CallWorkflow.active, ActiveEvent(agent_identity=f"agent-{index}"))
            await until(handle, lambda v: v.state is S.ACTIVE)
        await until(handles[2][0], lambda v: v.conversation_id is not None)

        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
        killed = time.monotonic()
        await asyncio.sleep(1.0)
        server = _start_server(tmp_path, port)
        assert await _ready(server, tmp_path, port), (tmp_path / "temporal.log").read_text(errors="replace")[-3000:]
        print(f"\nTemporal server back {time.monotonic() - killed:.1f} s after the kill")

        async def carry_on(handle: WorkflowHandle[Any, CallStateView], index: int) -> None:
            """The calls' next events, each retried until the restarted server takes it (ids: once each)."""
            dtmf = DtmfEvent(str(index), event_id=f"d{index}")
            await _retrying(lambda: handle.signal(CallWorkflow.dtmf_received, dtmf))
            if index < 2:
                hold = HoldRequest(by="chaos")
                await _retrying(lambda: handle.execute_update(CallWorkflow.hold, hold, id=f"{handle.id}-hold"))
            hangup = HangupRequest(by="chaos")
            await _retrying(lambda: handle.execute_update(CallWorkflow.hangup, hangup, id=f"{handle.id}-hangup"))

        for index, (handle, _) in enumerate(handles):
            await carry_on(handle, index)
        for index, (handle, room) in enumerate(handles):
            view = await asyncio.wait_for(handle.result(), timeout=60)
            assert view.state is S.ENDED and view.dtmf_received == str(index), view
            if index < 2:
                assert events(view) == [
                    "ringing",
                    "connected",
                    "agent_dispatched",
                    "active",
                    "dtmf_received",
                    "hold",
                    "hangup",
                ], events(view)
                assert view.end_reason is EndReason.COMPLETED
                assert len([d for d in livekit_standin.calls("CreateDispatch") if d.room == room]) == 1
            else:
                assert events(view) == ["ringing", "dtmf_received", "hangup"], events(view)
                assert view.end_reason is EndReason.CANCELED
        listed = [w.id async for w in client.list_workflows(f"TaskQueue = '{queue}'")]
        assert sorted(listed) == sorted(h.id for h, _ in handles)  # the server kept every call, and no other
        assert worker.stop() == 0, worker.output()
    finally:
        if worker is not None:
            worker.close()
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=30)
        await lk_api.aclose()
        await engine.dispose()
