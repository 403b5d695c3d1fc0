"""Structured logs: every process's records carry their fields, as JSON lines (production) or key=value lines
(``telephony dev``), and personal data is masked whatever a module passes."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from workers.logs import configure_logging, mask_phone


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    yield io.StringIO()
    root.handlers, root.level = saved, level


def test_json_lines_carry_the_fields_and_mask_personal_data(captured: io.StringIO) -> None:
    configure_logging("json", stream=captured)
    fields = {"call_id": "call_1", "from_number": "+14155550123", "digits": "1234", "text": "my card is 4111"}
    logging.getLogger("activities.calls").info("call opened", extra=fields)
    line = json.loads(captured.getvalue().strip().splitlines()[-1])
    assert line["event"] == "call opened" and line["logger"] == "activities.calls" and line["level"] == "info"
    assert line["call_id"] == "call_1" and line["from_number"] == "+1********23"
    assert line["digits"] == "<4 chars>" and line["text"] == "<15 chars>"
    assert "4155550123" not in captured.getvalue() and "4111" not in captured.getvalue()


def test_console_lines_are_key_value(captured: io.StringIO) -> None:
    configure_logging("console", stream=captured)
    logging.getLogger("workers.dev").warning(
        "worker exited unexpectedly", extra={"child": "worker", "to_number": "+44 20 7946 0958"}
    )
    line = captured.getvalue().strip().splitlines()[-1]
    assert "worker exited unexpectedly" in line and "child=worker" in line and "7946" not in line


def test_mask_phone_keeps_country_code_and_last_two() -> None:
    assert mask_phone("+14155550123") == "+1********23"
    assert mask_phone("123") == "***"


def test_a_process_logs_json_by_default(tmp_path: Path) -> None:
    env = {**os.environ, "TELEPHONY_DATA_DIR": str(tmp_path)}
    env.pop("TELEPHONY_LOG_FORMAT", None)
    telephony = Path(sys.executable).parent / "telephony"
    result = subprocess.run([str(telephony), "migrate"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert any(line["event"] == "database schema is up to date" and line["logger"] == "workers.cli" for line in lines)
