"""``telephony call`` as a real process against a running platform: it speaks a line synthesised locally,
prints the agent's answer from the knowledge base with the turn's latency, and exits with the call's end."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from models.enums import Role
from tests.voice.console_support import QUESTION, ConsoleLine, console_line, says_hours

TELEPHONY = str(Path(sys.executable).with_name("telephony"))


@pytest.fixture
async def line(temporal_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[ConsoleLine]:
    async with console_line(temporal_env, tmp_path) as running:
        yield running


async def _telephony_call(line: ConsoleLine, *args: str, key: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEPHONY_")} | {"TELEPHONY_API_KEY": key}
    process = await asyncio.create_subprocess_exec(
        TELEPHONY, "call", *args, "--api-url", line.base_url, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_telephony_call_speaks_text_and_prints_the_answer(line: ConsoleLine) -> None:
    code, out, err = await _telephony_call(line, line.agent_id, "--text", QUESTION, key=line.space.keys[Role.OPERATOR])
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "agent: Hello, thanks for calling."
    answers = [x for x in lines if x.startswith("agent: ") and says_hours(x)]
    assert answers and answers[0].endswith(" ms)"), out
    assert any(x.startswith("caller: ") and "opening hours" in x.lower() for x in lines), out
    assert lines[-1] == "call ended: completed"


async def test_telephony_call_json_and_refusals(line: ConsoleLine) -> None:
    operator = line.space.keys[Role.OPERATOR]
    code, out, err = await _telephony_call(
        line, line.agent_id, "--space", line.space.id, "--text", QUESTION, "--dtmf", "5", "--json", key=operator
    )
    assert code == 0, err
    document = json.loads(out)
    assert document["end_reason"] == "completed" and document["close_code"] == 1000
    agent = [t for t in document["turns"] if t["role"] == "agent" and t["latency_ms"] is not None]
    assert agent and says_hours(agent[0]["text"]) and agent[0]["latency_ms"] > 0

    code, out, err = await _telephony_call(line, line.agent_id, "--text", "Hello", key=line.space.keys[Role.VIEWER])
    assert code == 2 and "4403 calling needs role 'operator' (key has 'viewer')" in err, err
    code, out, err = await _telephony_call(
        line, line.other_agent_id, "--space", line.space.id, "--text", "Hello", key=operator
    )
    assert code == 2 and "4404 agent not found" in err, err
