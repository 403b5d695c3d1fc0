"""The LiveKit transport's pieces that run without a LiveKit server: DTMF mapping and the worker's set-up."""

from __future__ import annotations

import pytest
from livekit.agents import AgentServer

from models.settings import Settings
from voice.livekit_worker import build_server, dtmf_codes


def test_dtmf_keys_map_to_rfc4733_event_codes() -> None:
    assert dtmf_codes("0129*#AD") == [
        (0, "0"),
        (1, "1"),
        (2, "2"),
        (9, "9"),
        (10, "*"),
        (11, "#"),
        (12, "A"),
        (15, "D"),
    ]
    assert dtmf_codes("1w2") == [(1, "1"), (-1, "w"), (2, "2")]
    assert dtmf_codes("x!") == []


def test_worker_needs_livekit_settings() -> None:
    with pytest.raises(RuntimeError, match="TELEPHONY_LIVEKIT_URL"):
        build_server(Settings(livekit_url=None))


def test_worker_registers_the_agent_name_it_is_dispatched_by() -> None:
    settings = Settings(
        livekit_url="ws://127.0.0.1:7880",
        livekit_api_key="devkey",
        livekit_api_secret="s" * 32,
        livekit_agent_name="front-desk",
    )
    server = build_server(settings)
    assert isinstance(server, AgentServer)
    assert server._agent_name == "front-desk"
