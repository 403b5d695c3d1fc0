"""``telephony dev`` as a real process (Temporal dev server, API, worker), plus its building blocks."""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import pytest
from sqlalchemy import update

from models.credentials import split_key
from models.db import create_engine, migrate, session_factory
from models.enums import Role
from models.settings import SEARCH_ATTRIBUTES, Settings
from models.tables import ApiKey, Space, utcnow
from workers.bootstrap import BOOTSTRAP_KEY_NAME, create_platform_key, ensure_platform_key
from workers.child_processes import port_free
from workers.cli import build_parser, dev_settings, main
from workers.dev import ADMIN_KEY_PREFIX, READY_LINE, child_env
from workers.temporal_server import dev_server_command, temporal_binary

START_DEADLINE = 60.0
STOP_DEADLINE = 30.0  # the supervisor waits up to 10 s per stage before SIGKILL


# -- helpers -----------------------------------------------------------------------------------------


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, start time) of a live process, from /proc."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[19])


def descendants(root: int) -> dict[int, int]:
    """pid -> start time of every live descendant of ``root``."""
    parents: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _stat(int(entry.name))
        if stat is None or stat[0] == "Z":
            continue
        parents.setdefault(stat[1], []).append(int(entry.name))
        starts[int(entry.name)] = stat[2]
    found: dict[int, int] = {}
    todo = [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found[child] = starts[child]
                todo.append(child)
    return found


def still_running(processes: dict[int, int]) -> list[int]:
    alive = []
    for pid, started in processes.items():
        stat = _stat(pid)
        if stat is not None and stat[0] != "Z" and stat[2] == started:
            alive.append(pid)
    return alive


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@dataclass
class DevRun:
    """One ``telephony dev`` process with its stdout read line by line on a thread."""

    process: subprocess.Popen[str]
    stderr_path: Path
    lines: list[str] = field(default_factory=list)
    _queue: queue.Queue[str | None] = field(default_factory=queue.Queue)

    @classmethod
    def start(cls, data_dir: Path, ports: list[int], cwd: Path) -> DevRun:
        api_port, temporal_port, ui_port, media_port = ports
        env = {k: v for k, v in os.environ.items() if not k.startswith("TELEPHONY_")}
        stderr_path = cwd / f"dev-stderr-{time.monotonic_ns()}.log"
        with stderr_path.open("w") as stderr:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "workers.cli",
                    "dev",
                    "--data-dir",
                    str(data_dir),
                    "--api-port",
                    str(api_port),
                    "--temporal-port",
                    str(temporal_port),
                    "--ui-port",
                    str(ui_port),
                    "--media-port",
                    str(media_port),
                ],
                stdout=subprocess.PIPE,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
                text=True,
                cwd=cwd,
                env=env,
            )
        run = cls(process, stderr_path)
        threading.Thread(target=run._pump, args=(process.stdout,), daemon=True).start()
        return run

    def _pump(self, stream: IO[str] | None) -> None:
        assert stream is not None
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_for_line(self, wanted: Callable[[str], bool], timeout: float = START_DEADLINE) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no expected line within {timeout} s; stdout={self.lines}\n{self.stderr()}")
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(
                    f"telephony dev exited ({self.process.wait()}) early; stdout={self.lines}\n{self.stderr()}"
                )
            self.lines.append(line)
            if wanted(line):
                return line

    def wait_ready(self) -> None:
        self.wait_for_line(lambda line: line == READY_LINE)

    def admin_key(self) -> str | None:
        for line in self.lines:
            if line.startswith(ADMIN_KEY_PREFIX):
                return line.removeprefix(ADMIN_KEY_PREFIX).strip()
        return None

    def wait_exit(self, timeout: float = STOP_DEADLINE) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"telephony dev did not exit within {timeout} s\n{self.stderr()}") from None

    def kill(self) -> None:
        """Last-resort clean-up for a failed test: kill the supervisor's whole tree."""
        if self.process.poll() is None:
            tree = descendants(self.process.pid)
            self.process.kill()
            self.process.wait()
            for pid in tree:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)


@pytest.fixture
def dev_runs() -> Iterator[list[DevRun]]:
    runs: list[DevRun] = []
    yield runs
    for run in runs:
        run.kill()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# -- the whole thing as a process --------------------------------------------------------------------


@pytest.mark.slow
def test_dev_starts_stops_cleanly_and_restarts_on_the_same_data(tmp_path: Path, dev_runs: list[DevRun]) -> None:
    data_dir = tmp_path / "data"
    api_port, _, ui_port, _ = ports = free_ports(4)
    api = f"http://127.0.0.1:{api_port}"

    started = time.monotonic()
    first = DevRun.start(data_dir, ports, tmp_path)
    dev_runs.append(first)
    first.wait_for_line(lambda line: line.startswith(ADMIN_KEY_PREFIX))
    first.wait_ready()
    first_start = time.monotonic() - started
    key = first.admin_key()
    assert key is not None and split_key(key) is not None

    with httpx.Client(timeout=10) as http:
        assert http.get(f"{api}/healthz").status_code == 200
        assert http.get(f"http://127.0.0.1:{ui_port}/").status_code == 200
        assert http.get(f"{api}/v1/spaces").status_code == 401
        spaces = http.get(f"{api}/v1/spaces", headers=bearer(key))
        assert spaces.status_code == 200, spaces.text
        created = http.post(f"{api}/v1/spaces", json={"name": "kept"}, headers=bearer(key))
        assert created.status_code == 201, created.text

    children = descendants(first.process.pid)
    commands = [_cmdline(pid) for pid in children]
    assert any("server start-dev" in c for c in commands), commands
    assert any("workers.cli api" in c for c in commands), commands
    for role in ("calls", "speech"):  # the two worker roles, in two processes
        assert any(f"workers.cli worker --role {role}" in c for c in commands), commands
    for pid in children:  # every child in a process group of its own, so Ctrl-C reaches only the supervisor
        assert os.getpgid(pid) != os.getpgid(first.process.pid)
    assert (data_dir / "temporal.db").exists()
    assert (data_dir / "telephony.db").exists()
    assert key not in first.stderr()  # the key is printed once, on stdout only

    first.process.send_signal(signal.SIGINT)
    assert first.wait_exit() == 0, first.stderr()
    assert still_running(children) == [], [_cmdline(pid) for pid in still_running(children)]

    # Second start on the same data dir: no new key, the first key and the data are still there.
    started = time.monotonic()
    second = DevRun.start(data_dir, ports, tmp_path)
    dev_runs.append(second)
    second.wait_ready()
    second_start = time.monotonic() - started
    assert second.admin_key() is None
    assert any("create-admin-key" in line for line in second.lines), second.lines
    with httpx.Client(timeout=10) as http:
        spaces = http.get(f"{api}/v1/spaces", headers=bearer(key))
        assert spaces.status_code == 200, spaces.text
        assert [s["name"] for s in spaces.json()["data"]] == ["kept"]
        assert http.get(f"http://127.0.0.1:{ui_port}/").status_code == 200

    children = descendants(second.process.pid)
    assert len(children) >= 3
    second.process.send_signal(signal.SIGTERM)
    assert second.wait_exit() == 0, second.stderr()
    assert still_running(children) == []
    print(f"telephony dev ready: first start {first_start:.1f} s, second start {second_start:.1f} s")


@pytest.mark.slow
def test_dev_stops_everything_when_a_child_dies(tmp_path: Path, dev_runs: list[DevRun]) -> None:
    run = DevRun.start(tmp_path / "data", free_ports(4), tmp_path)
    dev_runs.append(run)
    run.wait_ready()
    children = descendants(run.process.pid)
    worker = next(pid for pid in children if "workers.cli worker" in _cmdline(pid))

    os.kill(worker, signal.SIGKILL)

    assert run.wait_exit() == 1
    assert "worker exited unexpectedly" in run.stderr()
    assert still_running(children) == []


def test_dev_refuses_a_busy_port_before_starting_anything(tmp_path: Path, dev_runs: list[DevRun]) -> None:
    ports = free_ports(4)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", ports[0]))
        busy.listen()
        run = DevRun.start(tmp_path / "data", ports, tmp_path)
        dev_runs.append(run)
        assert run.wait_exit(timeout=START_DEADLINE) == 1
    assert f"API port {ports[0]}" in run.stderr()
    assert not (tmp_path / "data" / "temporal.db").exists()


# -- building blocks ---------------------------------------------------------------------------------


def test_temporal_command_line(tmp_path: Path) -> None:
    command = dev_server_command("/opt/temporal", data_dir=tmp_path, port=7301, ui_port=8301, namespace="calls")

    assert command[:3] == ["/opt/temporal", "server", "start-dev"]

    def values(flag: str) -> list[str]:
        return [command[i + 1] for i, arg in enumerate(command) if arg == flag]

    assert values("--ip") == ["127.0.0.1"]
    assert values("--port") == ["7301"]
    assert values("--ui-port") == ["8301"]
    assert values("--db-filename") == [str(tmp_path / "temporal.db")]
    assert values("--sqlite-pragma") == ["journal_mode=wal", "synchronous=normal"]
    assert values("--namespace") == ["calls"]
    assert values("--search-attribute") == [f"{name}={kind}" for name, kind in SEARCH_ATTRIBUTES.items()]
    assert values("--log-level") == ["warn"]
    assert "--ui-disable-news-fetch" in command


def test_temporal_binary_is_the_one_installed_beside_python() -> None:
    binary = Path(temporal_binary())
    assert binary.is_file() and os.access(binary, os.X_OK)
    assert binary.parent == Path(sys.executable).parent


def test_port_free(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        assert not port_free(sock.getsockname()[1])
    assert port_free(free_ports(1)[0])


def test_dev_settings_follow_the_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("TELEPHONY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)

    settings = dev_settings("data", 18001, 17301)
    assert settings.data_dir == tmp_path / "data"
    assert settings.api_port == 18001
    assert settings.api_host == "127.0.0.1"
    assert settings.temporal_address == "127.0.0.1:17301"
    assert settings.public_url == "http://127.0.0.1:18001"
    env = child_env(settings)
    assert env["TELEPHONY_DATA_DIR"] == str(tmp_path / "data")
    assert env["TELEPHONY_TEMPORAL_ADDRESS"] == "127.0.0.1:17301"
    assert env["TELEPHONY_API_PORT"] == "18001"

    defaults = dev_settings(None, None, 7233)
    assert defaults.data_dir == tmp_path / ".telephony"
    assert defaults.api_port == 8000

    monkeypatch.setenv("TELEPHONY_PUBLIC_URL", "https://calls.example.com")
    monkeypatch.setenv("TELEPHONY_DATA_DIR", str(tmp_path / "from-env"))
    configured = dev_settings(None, 18002, 7233)
    assert configured.public_url == "https://calls.example.com"  # a configured public URL is kept
    assert configured.data_dir == tmp_path / "from-env"


def test_cli_parses_every_command() -> None:
    parser = build_parser()
    args = parser.parse_args(["dev", "--data-dir", "d", "--api-port", "9000", "--ui-port", "9233"])
    assert (args.data_dir, args.api_port, args.temporal_port, args.ui_port) == ("d", 9000, 7233, 9233)
    for command in ("api", "worker", "voice", "migrate", "create-admin-key"):
        assert parser.parse_args([command]).command == command
    assert parser.parse_args(["create-admin-key", "--name", "ops"]).name == "ops"
    with pytest.raises(SystemExit):
        parser.parse_args(["dev", "--api-port", "70000"])


def test_voice_without_livekit_says_what_is_missing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("TELEPHONY_LIVEKIT_URL", "TELEPHONY_LIVEKIT_API_KEY", "TELEPHONY_LIVEKIT_API_SECRET"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SystemExit) as exited:
        main(["voice"])
    assert exited.value.code == 2
    assert "TELEPHONY_LIVEKIT_URL" in capsys.readouterr().err


def test_create_admin_key_command_prints_a_working_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEPHONY_")}
    result = subprocess.run(
        [sys.executable, "-m", "workers.cli", "create-admin-key", "--data-dir", str(tmp_path), "--name", "ops"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    assert split_key(key) is not None
    assert key not in result.stderr


# -- platform key bootstrap --------------------------------------------------------------------------


async def _migrated(tmp_path: Path) -> Settings:
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}")
    await asyncio.to_thread(migrate, settings.resolved_database_url)
    return settings


async def _keys(settings: Settings) -> list[ApiKey]:
    from sqlalchemy import select

    engine = create_engine(settings.resolved_database_url)
    try:
        async with session_factory(engine)() as session:
            return list(await session.scalars(select(ApiKey).order_by(ApiKey.created_at)))
    finally:
        await engine.dispose()


async def test_ensure_platform_key_creates_one_owner_key_once(tmp_path: Path) -> None:
    settings = await _migrated(tmp_path)

    plaintext = await ensure_platform_key(settings)
    assert plaintext is not None
    assert await ensure_platform_key(settings) is None

    [key] = await _keys(settings)
    assert key.space_id is None
    assert key.role == Role.OWNER
    assert key.name == BOOTSTRAP_KEY_NAME
    assert key.person_email is None
    parts = split_key(plaintext)
    assert parts is not None and parts[0] == key.prefix
    assert parts[1] not in key.secret_hash


async def test_ensure_platform_key_ignores_space_keys_and_revoked_keys(tmp_path: Path) -> None:
    settings = await _migrated(tmp_path)
    engine = create_engine(settings.resolved_database_url)
    async with session_factory(engine)() as session:
        space = Space(name="tenant")
        session.add(space)
        await session.flush()
        session.add(ApiKey(space_id=space.id, name="space owner", role=Role.OWNER, prefix="s1", secret_hash="x"))
        await session.commit()
    await engine.dispose()

    first = await ensure_platform_key(settings)
    assert first is not None  # a space key is no platform key

    engine = create_engine(settings.resolved_database_url)
    async with session_factory(engine)() as session:
        await session.execute(update(ApiKey).where(ApiKey.space_id.is_(None)).values(revoked_at=utcnow()))
        await session.commit()
    await engine.dispose()

    second = await ensure_platform_key(settings)
    assert second is not None and second != first  # only revoked platform keys left: a new one
    assert await ensure_platform_key(settings) is None


async def test_create_platform_key_always_adds_one(tmp_path: Path) -> None:
    settings = await _migrated(tmp_path)
    assert await ensure_platform_key(settings) is not None
    extra = await create_platform_key(settings, "ops")
    keys = await _keys(settings)
    assert [k.name for k in keys] == [BOOTSTRAP_KEY_NAME, "ops"]
    assert all(k.space_id is None and k.role == Role.OWNER for k in keys)
    assert split_key(extra) is not None
