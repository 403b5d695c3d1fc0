"""``telephony api --workers N``: N API processes share the port (webhooks are CPU-bound), each built from the
same settings; SIGTERM stops them all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import SECRET_KEY
from tests.support.postgres import free_port

BIN = Path(sys.executable).parent


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def _gone(pid: int) -> bool:
    """Exited (a zombie waiting for a container's init to reap it counts as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


def test_api_runs_several_processes_on_one_port(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEPHONY_")}
    env |= {"TELEPHONY_API_PORT": str(port), "TELEPHONY_SECRET_KEYS": SECRET_KEY, "PYTHONUNBUFFERED": "1"}
    log = (tmp_path / "api.log").open("wb")
    api = subprocess.Popen(
        [str(BIN / "telephony"), "api", "--data-dir", str(tmp_path / "data"), "--workers", "2"],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        answered: set[int] = set()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            while len(answered) < 1 or len(_children(api.pid)) < 2:
                assert api.poll() is None, (tmp_path / "api.log").read_text()
                assert time.monotonic() < deadline, (tmp_path / "api.log").read_text()
                try:
                    if http.get("/healthz").status_code == 200:
                        answered.add(1)
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
            workers = [pid for pid in _children(api.pid) if "python" in Path(f"/proc/{pid}/cmdline").read_text()]
            assert len(workers) >= 2, _children(api.pid)
            refused = http.get("/v1/spaces")
            assert refused.status_code == 401 and refused.json()["detail"]  # the app itself, in each process
        api.send_signal(signal.SIGTERM)
        assert api.wait(timeout=30) == 0, (tmp_path / "api.log").read_text()
        # Orphans outliving their parent by a moment (multiprocessing's helpers exit once they see it gone) count
        # as stopped; one still running seconds later does not.
        stopped_by = time.monotonic() + 10
        while not all(_gone(pid) for pid in workers) and time.monotonic() < stopped_by:
            time.sleep(0.1)
        assert all(_gone(pid) for pid in workers), [pid for pid in workers if not _gone(pid)]
    finally:
        if api.poll() is None:
            api.kill()
            api.wait()
        log.close()
