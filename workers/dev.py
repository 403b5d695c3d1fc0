"""``telephony dev``: the Temporal dev server, the API and the workers on one machine, supervised.

Everything listens on 127.0.0.1 only. The supervisor starts Temporal, waits until it answers, migrates
the database, makes sure a platform key exists, starts ``telephony api``, ``telephony media`` and the two
worker roles (``telephony worker --role calls`` and ``--role speech``, as a deployment runs them: the call worker
never loads the speech stack) as child processes and waits for the API's ``/healthz``. Then it watches: a child
that dies stops everything (exit 1); SIGINT/SIGTERM stop the API and the workers first, Temporal last (exit 0).

Each child runs in its own process group (a terminal's Ctrl-C reaches only the supervisor, which then
stops the children in order) and, on Linux, gets SIGTERM from the kernel should the supervisor die
without cleaning up (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from types import FrameType
from typing import IO, Any

import httpx

from models.console_protocol import PAGE_PATH as CONSOLE_PAGE
from models.db import migrate
from models.settings import Settings
from workers.bootstrap import ensure_platform_key
from workers.child_processes import (
    HOST,
    SUPERVISOR_PID_ENV,
    Child,
    port_accepts,
    port_free,
    preexec_follow,
    stop_children,
)
from workers.temporal_server import (
    TemporalServerError,
    dev_server_command,
    temporal_binary,
    wait_until_ready,
)
from workers.worker_role import WorkerRole

log = logging.getLogger(__name__)

READY_TIMEOUT = 60.0
POLL_INTERVAL = 0.2
TEMPORAL_LOG = "temporal.log"
LOCK_FILE = "dev.lock"
READY_LINE = "Press Ctrl-C to stop."
ADMIN_KEY_PREFIX = "Admin API key: "


class DevError(Exception):
    """Start-up or supervision failed; the message is meant for the operator."""


class _Interrupted(Exception):
    pass


def child_env(settings: Settings) -> dict[str, str]:
    """The environment of ``telephony api``/``worker`` under ``dev``: the supervisor's settings as env vars."""
    env = dict(os.environ)
    env.update(
        {
            "TELEPHONY_DATA_DIR": str(settings.data_dir),
            "TELEPHONY_TEMPORAL_ADDRESS": settings.temporal_address,
            "TELEPHONY_TEMPORAL_NAMESPACE": settings.temporal_namespace,
            "TELEPHONY_API_HOST": HOST,
            "TELEPHONY_API_PORT": str(settings.api_port),
            "TELEPHONY_PUBLIC_URL": settings.public_url,
            "TELEPHONY_MEDIA_HOST": HOST,
            "TELEPHONY_MEDIA_PORT": str(settings.media_port),
            "TELEPHONY_MEDIA_PUBLIC_URL": settings.stream_public_url,
            "TELEPHONY_MEDIA_REUSE_PORT": "1" if settings.media_processes > 1 or settings.media_reuse_port else "0",
            "TELEPHONY_MEDIA_PROCESSES": str(settings.media_processes),  # each sizes its Whisper threads by it
            SUPERVISOR_PID_ENV: str(os.getpid()),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


class DevSupervisor:
    def __init__(
        self,
        settings: Settings,
        *,
        temporal_port: int,
        ui_port: int,
        out: IO[str] | None = None,
        ready_timeout: float = READY_TIMEOUT,
    ) -> None:
        self.settings = settings
        self.temporal_port = temporal_port
        self.ui_port = ui_port
        self.out = out or sys.stdout
        self.ready_timeout = ready_timeout
        self.temporal: Child | None = None
        self.services: list[Child] = []  # api, media, workers: stopped before Temporal
        self.admin_key: str | None = None
        self.stop_signal: int | None = None
        self._admin_key_shown = False

    # -- signals -----------------------------------------------------------------------------------
    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stop_signal = signum

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _check_interrupted(self) -> None:
        if self.stop_signal is not None:
            raise _Interrupted

    # -- output ------------------------------------------------------------------------------------
    def _say(self, line: str = "") -> None:
        print(line, file=self.out, flush=True)

    def _show_admin_key(self) -> None:
        if self.admin_key is not None and not self._admin_key_shown:
            self._admin_key_shown = True
            self._say(f"{ADMIN_KEY_PREFIX}{self.admin_key}")
            self._say("  (shown once: keep it; it authenticates as a platform owner)")

    # -- start-up ----------------------------------------------------------------------------------
    def _lock_data_dir(self) -> IO[str]:
        handle = (self.settings.data_dir / LOCK_FILE).open("w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            handle.close()
            raise DevError(f"another 'telephony dev' is already using the data dir {self.settings.data_dir}") from exc
        return handle

    def _check_ports(self) -> None:
        ports = {
            "API": self.settings.api_port,
            "media server": self.settings.media_port,
            "Temporal": self.temporal_port,
            "Temporal UI": self.ui_port,
        }
        if len(set(ports.values())) != len(ports):
            raise DevError(f"the API, media server, Temporal and Temporal UI ports must differ: {ports}")
        busy = [f"{name} port {port}" for name, port in ports.items() if not port_free(port)]
        if busy:
            raise DevError(
                f"already in use on {HOST}: {', '.join(busy)} "
                "(choose others with --api-port/--media-port/--temporal-port/--ui-port)"
            )

    def _start_temporal(self) -> None:
        data_dir = self.settings.data_dir
        command = dev_server_command(
            temporal_binary(),
            data_dir=data_dir,
            port=self.temporal_port,
            ui_port=self.ui_port,
            namespace=self.settings.temporal_namespace,
        )
        log.info("starting the Temporal dev server")
        with (data_dir / TEMPORAL_LOG).open("ab") as log_file:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=preexec_follow(os.getpid()),  # before any thread exists
            )
        self.temporal = Child("Temporal dev server", process)

    def _temporal_log_tail(self, lines: int = 15) -> str:
        path = self.settings.data_dir / TEMPORAL_LOG
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _wait_for_temporal(self) -> None:
        temporal = self.temporal
        assert temporal is not None

        def keep_waiting() -> bool:
            return temporal.alive and self.stop_signal is None

        try:
            asyncio.run(
                wait_until_ready(
                    self.settings.temporal_address,
                    self.settings.temporal_namespace,
                    within=self.ready_timeout,
                    keep_waiting=keep_waiting,
                )
            )
        except TemporalServerError as exc:
            self._check_interrupted()
            tail = self._temporal_log_tail()
            detail = f"; its log ({self.settings.data_dir / TEMPORAL_LOG}) ends with:\n{tail}" if tail else ""
            if not temporal.alive:
                raise DevError(
                    f"the Temporal dev server exited with code {temporal.process.returncode}{detail}"
                ) from exc
            raise DevError(f"{exc}{detail}") from exc
        deadline = time.monotonic() + self.ready_timeout
        while not port_accepts(self.ui_port):
            self._check_interrupted()
            if not temporal.alive or time.monotonic() > deadline:
                raise DevError(f"the Temporal UI did not open port {self.ui_port}")
            time.sleep(POLL_INTERVAL)

    def _start_service(self, name: str, *command: str) -> None:
        try:
            stream: int | None = sys.stderr.fileno()  # children's logs go to our stderr, not our stdout
        except (AttributeError, ValueError, OSError):
            stream = None
        process = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", *command],
            stdin=subprocess.DEVNULL,
            stdout=stream,
            stderr=stream,
            env=child_env(self.settings),
            start_new_session=True,
        )
        self.services.append(Child(name, process))

    def _dead_child(self) -> Child | None:
        for child in [self.temporal, *self.services]:
            if child is not None and not child.alive:
                return child
        return None

    def _raise_if_child_died(self) -> None:
        dead = self._dead_child()
        if dead is not None:
            raise DevError(f"the {dead.name} exited unexpectedly with code {dead.process.returncode}")

    def _wait_for_api(self) -> None:
        self._wait_for_health("API", self.settings.api_port)

    def _wait_for_health(self, name: str, port: int) -> None:
        url = f"http://{HOST}:{port}/healthz"
        deadline = time.monotonic() + self.ready_timeout
        with httpx.Client(timeout=2.0) as http:
            while True:
                self._check_interrupted()
                self._raise_if_child_died()
                with contextlib.suppress(httpx.HTTPError):
                    if http.get(url).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise DevError(f"the {name} did not answer {url} within {self.ready_timeout:.0f} s")
                time.sleep(POLL_INTERVAL)

    def start(self) -> None:
        settings = self.settings
        self._check_ports()
        self._start_temporal()
        self._wait_for_temporal()
        self._check_interrupted()
        log.info("migrating the database")
        migrate(settings.resolved_database_url)
        self.admin_key = asyncio.run(ensure_platform_key(settings))
        self._check_interrupted()
        self._start_service("API", "api")
        for n in range(settings.media_processes):  # several share the media port (SO_REUSEPORT)
            self._start_service("media server" if settings.media_processes == 1 else f"media server {n + 1}", "media")
        for role in (WorkerRole.CALLS, WorkerRole.SPEECH):
            self._start_service(f"{role} worker", "worker", "--role", role.value)
        self._wait_for_api()
        self._wait_for_health("media server", self.settings.media_port)
        self._raise_if_child_died()

    def _banner(self, elapsed: float) -> None:
        api = f"http://{HOST}:{self.settings.api_port}"
        self._say(f"Bivariant Telephony dev is up ({elapsed:.1f} s):")
        self._say(f"  API:          {api}")
        self._say(f"  API docs:     {api}/docs")
        self._say(f"  Media:        {self.settings.stream_public_url} (carrier media streams)")
        self._say(f"  Console:      {api}{CONSOLE_PAGE}   (talk to your agents in the browser)")
        self._say(f"  Temporal UI:  http://{HOST}:{self.ui_port}")
        self._say(f"  Temporal:     {self.settings.temporal_address} (gRPC)")
        self._say(f"  Data dir:     {self.settings.data_dir}")
        self._say(f"  Temporal log: {self.settings.data_dir / TEMPORAL_LOG}")
        if self.admin_key is not None:
            self._show_admin_key()
        else:
            self._say(
                "A platform API key exists already; create another with: "
                f"telephony create-admin-key --data-dir {self.settings.data_dir}"
            )
        self._say(READY_LINE)

    # -- running -----------------------------------------------------------------------------------
    def _supervise(self) -> int:
        while self.stop_signal is None:
            dead = self._dead_child()
            if dead is not None:
                print(
                    f"telephony dev: the {dead.name} exited unexpectedly with code "
                    f"{dead.process.returncode}; stopping everything",
                    file=sys.stderr,
                    flush=True,
                )
                return 1
            time.sleep(POLL_INTERVAL)
        log.info("stop requested")
        return 0

    def stop(self) -> None:
        """API, media servers and workers first (so the workers drain while Temporal still answers), Temporal last."""
        stop_children(self.services)
        if self.temporal is not None:
            stop_children([self.temporal])

    def run(self) -> int:
        started = time.monotonic()
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        with self._signals():
            try:
                lock = self._lock_data_dir()
            except DevError as exc:
                print(f"telephony dev: {exc}", file=sys.stderr, flush=True)
                return 1
            try:
                try:
                    self.start()
                except _Interrupted:
                    self.stop()
                    self._show_admin_key()
                    return 0
                except (DevError, TemporalServerError) as exc:
                    print(f"telephony dev: {exc}", file=sys.stderr, flush=True)
                    self.stop()
                    self._show_admin_key()  # it is in the database already: never lose it
                    return 1
                except BaseException:
                    self.stop()
                    self._show_admin_key()
                    raise
                self._banner(time.monotonic() - started)
                code = self._supervise()
                self.stop()
                return code
            finally:
                lock.close()


def run_dev(settings: Settings, *, temporal_port: int, ui_port: int, **kwargs: Any) -> int:
    return DevSupervisor(settings, temporal_port=temporal_port, ui_port=ui_port, **kwargs).run()
