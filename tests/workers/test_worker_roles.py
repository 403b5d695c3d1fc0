"""The two worker roles as real ``telephony worker --role`` processes: the call role (which holds every open call)
never imports the speech stack; the speech role does, at start. Each process reports its imports itself
(``PYTHONPROFILEIMPORTTIME``: one stderr line per module it imports) and ``/proc/<pid>/maps`` shows the native
libraries it loaded. The work of each role across the two of them (SMS threads, transcriptions after a call) is
tested end to end by the tests that run ``tests.support.stack.running_stack``, which starts the roles apart."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from models.db import migrate
from tests.workflows.test_call_crash import ROOT, WorkerProcess, worker_env, workers  # noqa: F401 (a fixture)
from workers.worker_role import WorkerRole

SPEECH_STACK = ("livekit.agents", "onnxruntime", "faster_whisper", "ctranslate2", "av")
NATIVE_SPEECH_LIBS = ("onnxruntime", "ctranslate2", "libavcodec", "libavformat", "livekit_ffi")
IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(?P<module>\S+)\s*$", re.M)


def speech_modules(modules: set[str]) -> set[str]:
    return {m for m in modules if any(m == top or m.startswith(f"{top}.") for top in SPEECH_STACK)}


def imported_modules(log: str) -> set[str]:
    return {match["module"] for match in IMPORT_LINE.finditer(log)}


def native_libraries(pid: int) -> set[str]:
    paths = {line.split()[-1] for line in Path(f"/proc/{pid}/maps").read_text().splitlines() if ".so" in line}
    return {p for p in paths if any(lib in Path(p).name for lib in NATIVE_SPEECH_LIBS)}


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    kb = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    assert kb is not None
    return int(kb[1]) / 1024


def test_importing_the_call_role_leaves_the_speech_stack_out() -> None:
    """Everything ``telephony worker --role calls`` imports before it polls (CLI, role wiring, call workflows and
    activities, the API-side clients of SMS threads and transcriptions) loads none of the speech stack."""
    code = (
        "import sys, workers.cli, workers.worker, workers.call_worker, workflows.sms_client, "
        "workflows.transcription_client; print('\\n'.join(sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    modules = set(out.split())
    assert "workflows.calls" in modules
    assert speech_modules(modules) == set()


@pytest.mark.slow
async def test_a_call_worker_process_polls_without_the_speech_stack(
    temporal_env: WorkflowEnvironment,
    tmp_path: Path,
    workers: list[WorkerProcess],  # noqa: F811 (the fixture imported above)
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'telephony.db'}"
    await asyncio.to_thread(migrate, url)
    env = worker_env(temporal_env, None, tmp_path, url, f"roles-{uuid.uuid4().hex[:8]}")
    env["PYTHONPROFILEIMPORTTIME"] = "1"  # each import, as a stderr line (the process's log)
    calls = WorkerProcess.start(env, tmp_path, "calls", WorkerRole.CALLS)
    workers.append(calls)
    speech = WorkerProcess.start(env, tmp_path, "speech", WorkerRole.SPEECH)
    workers.append(speech)
    await calls.wait_polling()
    await speech.wait_polling()

    calls_imports, speech_imports = imported_modules(calls.output()), imported_modules(speech.output())
    assert "workflows.calls" in calls_imports and "workflows.sms_thread" not in calls_imports
    assert speech_modules(calls_imports) == set()
    assert native_libraries(calls.process.pid) == set()
    # The probe sees the stack where it is: the speech role loads it before it polls.
    assert {"livekit.agents", "onnxruntime", "av"} <= speech_imports
    assert native_libraries(speech.process.pid)
    print(f"RSS after start: calls role {rss_mb(calls.process.pid):.0f} MB, speech {rss_mb(speech.process.pid):.0f} MB")
    assert calls.stop() == 0
    assert speech.stop() == 0
