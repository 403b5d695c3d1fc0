"""The test suite runs offline: any connection or DNS lookup to a non-loopback address is refused and recorded.

Installed once for the whole session (tests/conftest.py); the session fails if anything tried. It sees Python
sockets only: native code (onnxruntime's telemetry) is turned off by settings instead."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

_LOCAL_PREFIXES = ("127.", "::1", "localhost", "0.0.0.0")


def is_local(address: Any) -> bool:
    if isinstance(address, str | bytes):  # an AF_UNIX path
        return True
    host = str(address[0]) if isinstance(address, tuple) and address else ""
    return host == "" or host.startswith(_LOCAL_PREFIXES)


@contextmanager
def offline() -> Iterator[list[str]]:
    """Refuse non-loopback connects and lookups while active; yields the list of attempts."""
    attempts: list[str] = []
    patch = pytest.MonkeyPatch()
    real_connect, real_connect_ex, real_getaddrinfo = (
        socket.socket.connect,
        socket.socket.connect_ex,
        socket.getaddrinfo,
    )

    def refuse(what: str, target: Any) -> OSError:
        attempts.append(f"{what} {target!r}")
        return OSError(f"outbound network blocked in tests: {target!r}")

    def connect(self: socket.socket, address: Any) -> None:
        if not is_local(address):
            raise refuse("connect", address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if not is_local(address):
            raise refuse("connect_ex", address)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not is_local((host,)):
            raise refuse("getaddrinfo", host)
        return real_getaddrinfo(host, *args, **kwargs)

    patch.setattr(socket.socket, "connect", connect)
    patch.setattr(socket.socket, "connect_ex", connect_ex)
    patch.setattr(socket, "getaddrinfo", getaddrinfo)
    try:
        yield attempts
    finally:
        patch.undo()
