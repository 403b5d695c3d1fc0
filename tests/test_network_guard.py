"""The suite-wide guard is in force: outbound connections and lookups fail, loopback works."""

from __future__ import annotations

import socket

import pytest


def test_outbound_connections_and_lookups_are_refused(no_outbound_network: list[str]) -> None:
    before = len(no_outbound_network)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s, pytest.raises(OSError, match="blocked"):
        s.connect(("93.184.216.34", 443))
    with pytest.raises(OSError, match="blocked"):
        socket.getaddrinfo("huggingface.co", 443)
    assert len(no_outbound_network) == before + 2
    del no_outbound_network[before:]  # these two were the test's own, not the suite's


def test_loopback_is_allowed() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=2):
            pass
