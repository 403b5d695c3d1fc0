"""``telephony campaign`` as a real process against the running stack (API on a loopback port, worker, Twilio
stand-in): start from a CSV with a bad row, watch it to the end as JSON lines and with the progress bar, status,
and a refused action's exit code and reason."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from models.enums import Role
from tests.campaigns.conftest import Line
from tests.conftest import unique_e164
from tests.support.stack import serve_http
from tests.twilio_standin import TwilioStandIn
from tests.twilio_standin.dialing import CallScript

TELEPHONY = str(Path(sys.executable).with_name("telephony"))


async def _campaign(url: str, key: str, cwd: Path, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEPHONY_")} | {"TELEPHONY_API_KEY": key}
    process = await asyncio.create_subprocess_exec(
        TELEPHONY, "campaign", *args, "--api-url", url, env=env, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=180)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_start_watch_status_from_the_command_line(
    line: Line, twilio_standin: TwilioStandIn, tmp_path: Path
) -> None:
    numbers = [unique_e164() for _ in range(3)]
    for n in numbers:
        twilio_standin.dial_plan[n] = CallScript("answered", ring_seconds=0.1, talk_seconds=0.5)
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("phone,name,plan\n" + "".join(f"{n},P{i},gold\n" for i, n in enumerate(numbers)) + "12,x,y\n")
    key = line.space.keys[Role.OPERATOR]
    assert line.stack.app is not None
    async with serve_http(line.stack.app) as url:
        code, out, err = await _campaign(
            url, key, tmp_path, "start", str(contacts), "--from", line.e164, "--max-concurrency", "2", "--cps", "2",
            "--window", "00:00-24:00", "--days", "1-7", "--json",
        )  # fmt: skip
        assert code == 0, err
        created = json.loads(out)
        assert created["accepted"] == 3 and [r["line"] for r in created["rejected"]] == [5]
        campaign_id = created["campaign"]["id"]
        assert created["campaign"]["limits"]["window"] == {
            "start": "00:00",
            "end": "24:00",
            "days": [1, 2, 3, 4, 5, 6, 7],
        }

        code, out, err = await _campaign(url, key, tmp_path, "watch", campaign_id, "--json", "--interval", "0.5")
        assert code == 0, err
        polls = [json.loads(x) for x in out.splitlines()]
        assert polls[-1]["status"] == "completed" and polls[-1]["progress"]["answered"] == 3

        code, out, err = await _campaign(url, key, tmp_path, "watch", campaign_id)
        assert code == 0 and "completed: " in out and "3 answered" in out, out + err

        code, out, err = await _campaign(url, key, tmp_path, "status", campaign_id)
        assert code == 0 and out.startswith(f"{campaign_id} completed: 3 placed"), out

        code, out, err = await _campaign(url, key, tmp_path, "pause", campaign_id)
        assert code == 2 and "409" in err and "over" in err

        code, out, err = await _campaign(url, line.space.keys[Role.VIEWER], tmp_path, "cancel", campaign_id)
        assert code == 2 and "403" in err
