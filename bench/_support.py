"""Shared start-up for the benchmarks: a Temporal dev server (SQLite WAL in a temp dir), a migrated SQLite
database with a platform key, the API (``telephony api``) and workers as child processes, and a space with
a Twilio carrier account, an agent and a phone number. Every child is stopped by its PID on exit."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from cryptography.fernet import Fernet
from temporalio.client import Client

from models.payloads import DATA_CONVERTER
from models.settings import Settings
from workers.temporal_server import dev_server_command, temporal_binary, wait_until_ready
from workers.worker_role import WorkerRole

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]  # the repository: children import ``bench`` from here
ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "bench-auth-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Resident set size of a process, from /proc/<pid>/status (VmRSS), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def tree_pids(pid: int) -> list[int]:
    """A process and its descendants (an API supervisor and its worker processes)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    kids = [int(c) for c in children.read_text().split()] if children.exists() else []
    return [pid, *(p for kid in kids for p in tree_pids(kid))]


def tree_rss_mb(pid: int) -> float:
    """RSS of a process and its children (an API supervisor and its worker processes), in MB."""
    return sum(rss_mb(p) for p in tree_pids(pid))


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) of ``values`` (nearest rank), in the unit given."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def summary_ms(latencies_s: Sequence[float]) -> str:
    ms = [x * 1000 for x in latencies_s]
    if not ms:
        return "n=0"
    return f"p50 {pct(ms, 50):7.1f} ms  p99 {pct(ms, 99):7.1f} ms  mean {statistics.fmean(ms):7.1f} ms"


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    cells = [list(map(str, header))] + [[str(x) for x in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@dataclass
class Line:
    """A space's routable number, reached through the Twilio account below."""

    space_id: str
    e164: str
    agent_id: str
    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN


@dataclass
class Stack:
    dir: Path
    settings: Settings
    env: dict[str, str]
    client: Client
    children: list[Child] = field(default_factory=list)
    api_url: str = ""
    admin_key: str = ""

    def spawn(self, name: str, args: list[str]) -> Child:
        log = open(self.dir / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process' life)
        proc = subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir)
        child = Child(name, proc)
        self.children.append(child)
        return child

    async def start_api(self, workers: int = 1) -> Child:
        """``telephony api`` (uvicorn; ``workers`` processes sharing the port), as production runs it."""
        command = [str(BIN / "telephony"), "api", "--data-dir", str(self.dir), "--workers", str(workers)]
        child = self.spawn("api", command)
        async with httpx.AsyncClient() as http:
            for _ in range(300):
                if child.proc.poll() is not None:
                    raise RuntimeError(f"the API exited: see {self.dir / 'api.log'}")
                try:
                    if (await http.get(f"{self.api_url}/healthz")).status_code == 200:
                        return child
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError("the API did not start")

    def start_worker(self, args: list[str] | None = None, role: WorkerRole = WorkerRole.ALL) -> Child:
        """``telephony worker --role ROLE`` by default (both roles); ``args`` for another worker command line."""
        command = [str(BIN / "telephony"), "worker", "--role", role.value, "--data-dir", str(self.dir)]
        return self.spawn("worker", args or command)

    async def line(self, media_mode: str) -> Line:
        """A space with a Twilio account, an agent and a number routed to the agent (over the API)."""
        admin = {"Authorization": f"Bearer {self.admin_key}"}
        async with httpx.AsyncClient(base_url=self.api_url, timeout=30) as http:

            async def post(path: str, body: Mapping[str, object]) -> dict[str, str]:
                response = await http.post(path, json=body, headers=admin)
                if response.status_code != 201:
                    raise RuntimeError(f"POST {path}: {response.status_code} {response.text}")
                created: dict[str, str] = response.json()
                return created

            space = (await post("/v1/spaces", {"name": "bench"}))["id"]
            base = f"/v1/spaces/{space}"
            account = await post(
                f"{base}/carrier-accounts", {"name": "twilio", "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN}
            )
            agent = await post(f"{base}/agents", {"name": "front desk", "greeting": "Hello!"})
            e164 = f"+1415555{uuid.uuid4().int % 10000:04d}"
            number = {"e164": e164, "carrier_account_id": account["id"], "agent_id": agent["id"]}
            await post(f"{base}/phone-numbers", number | {"media_mode": media_mode})
        return Line(space, e164, agent["id"])


def _migrate_and_key(settings: Settings) -> str:
    from models.db import migrate
    from workers.bootstrap import create_platform_key

    migrate(settings.resolved_database_url)
    return asyncio.run(create_platform_key(settings, "bench"))


@asynccontextmanager
async def stack(name: str, **overrides: str) -> AsyncIterator[Stack]:
    """Temporal dev server + migrated SQLite DB in a temp dir; API and workers are started on demand.

    ``overrides`` become ``TELEPHONY_<NAME>`` variables for the children (and fields of ``settings``).
    """
    root = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    temporal_port, api_port = free_port(), free_port()
    values = {
        "data_dir": str(root),
        "database_url": f"sqlite+aiosqlite:///{root / 'telephony.db'}",
        "secret_keys": Fernet.generate_key().decode(),
        "temporal_address": f"127.0.0.1:{temporal_port}",
        "api_host": "127.0.0.1",
        "api_port": str(api_port),
        "public_url": f"http://127.0.0.1:{api_port}",
        "task_queue": f"bench-{name}",
        **overrides,
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEPHONY_")}
    env |= {f"TELEPHONY_{k.upper()}": v for k, v in values.items()}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    settings = Settings(**values)  # type: ignore[arg-type]
    command = dev_server_command(temporal_binary(), data_dir=root, port=temporal_port, ui_port=free_port())
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: ASYNC220
    temporal = Child("temporal", server)
    bench = Stack(root, settings, env, client=None)  # type: ignore[arg-type]
    bench.children.append(temporal)
    task = asyncio.current_task()
    if task is not None:  # SIGTERM (e.g. `timeout`) cancels the run, so the children are still stopped
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        started = time.monotonic()
        await wait_until_ready(
            settings.temporal_address, "default", within=30, keep_waiting=lambda: temporal.proc.poll() is None
        )
        bench.client = await Client.connect(settings.temporal_address, data_converter=DATA_CONVERTER)
        bench.admin_key = await asyncio.to_thread(_migrate_and_key, settings)
        bench.api_url = settings.public_url
        print(f"# temporal dev server (SQLite WAL) + migrated DB in {root} ready in {time.monotonic() - started:.1f} s")
        yield bench
    finally:
        for child in reversed(bench.children):
            child.stop()
        shutil.rmtree(root, ignore_errors=True)


def load_average() -> str:
    """The machine's load (other work on the 2 cores skews every figure)."""
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


def run_then_exit(main: Callable[[], Awaitable[None]]) -> None:
    """Run a bench's ``main``; SIGTERM (e.g. `timeout`) cancels it so its children are still stopped; a failure is
    reported; then leave without interpreter finalisation (``exit_now``)."""
    code = 0
    try:

        async def guarded() -> None:
            task = asyncio.current_task()
            if task is not None:
                asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
            await main()

        asyncio.run(guarded())
    except BaseException as exc:
        traceback.print_exc()
        print(f"benchmark failed: {exc!r}", file=sys.stderr)
        code = 1
    exit_now(code)


def exit_now(code: int = 0) -> None:
    """Leave without interpreter finalisation: the Temporal SDK sometimes aborts there (code 134)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
