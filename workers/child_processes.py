"""The child processes ``telephony dev`` supervises: each follows its supervisor (the kernel's SIGTERM should the
supervisor die, ``PR_SET_PDEATHSIG`` on Linux), runs in a process group of its own and is stopped group by group
(SIGTERM, then SIGKILL after a timeout); and the port checks made before starting them."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
STOP_TIMEOUT = 10.0
SUPERVISOR_PID_ENV = "TELEPHONY_DEV_SUPERVISOR_PID"
_PR_SET_PDEATHSIG = 1


def _prctl() -> Callable[..., int] | None:
    if sys.platform != "linux":
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


def follow_supervisor() -> None:
    """Called first thing in a child of ``telephony dev``: get SIGTERM when the supervisor goes away."""
    expected = os.environ.get(SUPERVISOR_PID_ENV)
    if not expected:
        return
    prctl = _prctl()
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != int(expected):
        raise SystemExit("the telephony dev supervisor is gone")


def preexec_follow(parent_pid: int) -> Callable[[], None] | None:
    """``preexec_fn`` for a child that is not ours (Temporal): the kernel sends SIGTERM when we die.

    Only used before this process starts any thread (the Temporal SDK's runtime starts some).
    """
    prctl = _prctl()
    if prctl is None:
        return None

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent_pid:
            os._exit(1)

    return preexec


def port_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_accepts(port: int, host: str = HOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


def signal_group(child: Child, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.process.pid, sig)


def _wait_all(children: list[Child], deadline: float) -> None:
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(timeout=max(0.0, deadline - time.monotonic()))


def stop_children(children: list[Child], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM every child's process group, wait up to ``timeout``, then SIGKILL what is left."""
    for child in children:
        if child.alive:
            log.info("stopping a child process", extra={"child": child.name, "pid": child.process.pid})
            signal_group(child, signal.SIGTERM)
    _wait_all(children, time.monotonic() + timeout)
    stubborn = [child for child in children if child.alive]
    for child in stubborn:
        log.warning("child did not stop in time: killing it", extra={"child": child.name})
        signal_group(child, signal.SIGKILL)
    _wait_all(stubborn, time.monotonic() + timeout)
