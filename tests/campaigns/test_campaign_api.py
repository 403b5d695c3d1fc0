"""The campaigns REST API on the whole stack: CSV upload with malformed rows reported by line, status with live
progress, pause/resume/cancel (409 with the reason when illegal), per-contact results and their CSV export, the
do-not-call list, roles and isolation between spaces."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import numpy as np

from api.campaign_store import start_input
from models.assets import AssetStatus
from models.enums import Role
from models.tables import Campaign
from tests.campaigns.conftest import Line
from tests.conftest import unique_e164
from tests.support.assets import stored_asset, upload_audio, wav_bytes
from tests.support.stack import eventually
from tests.twilio_standin import TwilioStandIn
from tests.twilio_standin.dialing import CallScript


def _settings(line: Line, **limits: Any) -> str:
    limits = {"max_concurrent": 1, "calls_per_second": 5, **limits}
    return json.dumps({"name": "spring promo", "from_numbers": [line.e164], "limits": limits})


async def test_csv_upload_reports_bad_rows_and_the_campaign_runs(line: Line, twilio_standin: TwilioStandIn) -> None:
    space = line.space
    good = [unique_e164() for _ in range(3)]
    for n in good:
        twilio_standin.dial_plan[n] = CallScript("answered", ring_seconds=0.1, talk_seconds=0.3)
    text = "\n".join(
        [
            "phone,name,time_zone,plan",
            f"{good[0]},Ada,America/New_York,gold",
            "not-a-number,Bob,,silver",
            f"{good[1]},Cy,Mars/Base,gold",  # line 4: unknown zone
            f"{good[1]},Cy,,gold",
            f"{good[0]},Ada again,,gold",  # line 6: duplicate of line 2
            f"{good[2]},Dee,,",
            "+1415,short,,",  # line 8: too short
            "a,b",  # line 9: wrong number of cells
        ]
    )
    files = {"file": ("contacts.csv", text.encode(), "text/csv")}
    created = await line.stack.client.post(
        space.path("/campaigns/upload"), files=files, data={"settings": _settings(line)}, headers=space.admin
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["accepted"] == 3
    rejected = {r["line"]: r["reason"] for r in body["rejected"]}
    assert sorted(rejected) == [3, 4, 6, 8, 9]
    assert "E.164" in rejected[3] and "time zone" in rejected[4] and "duplicate of line 2" in rejected[6]
    assert "cells" in rejected[9]
    campaign = body["campaign"]

    async def done() -> dict[str, Any] | None:
        detail = (await line.stack.client.get(space.path(f"/campaigns/{campaign['id']}"), headers=space.viewer)).json()
        return detail if detail["status"] == "completed" else None

    detail = await eventually(done, within=120)
    assert detail["progress"]["answered"] == 3 and detail["progress"]["remaining"] == 0
    results = (
        await line.stack.client.get(space.path(f"/campaigns/{campaign['id']}/contacts"), headers=space.viewer)
    ).json()
    assert [(c["e164"], c["line"], c["outcome"]) for c in results["data"]] == [
        (good[0], 2, "answered"),
        (good[1], 5, "answered"),
        (good[2], 7, "answered"),
    ]
    exported = await line.stack.client.get(
        space.path(f"/campaigns/{campaign['id']}/contacts.csv"), headers=space.viewer
    )
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["phone"], r["outcome"], r["attempts"]) for r in rows] == [(n, "answered", "1") for n in good]
    # once over, it cannot be paused
    refused = await line.stack.client.post(space.path(f"/campaigns/{campaign['id']}/pause"), headers=space.admin)
    assert refused.status_code == 409


async def test_control_roles_isolation_and_do_not_call(line: Line, twilio_standin: TwilioStandIn) -> None:
    space, client = line.space, line.stack.client
    blocked, first, second = unique_e164(), unique_e164(), unique_e164()
    for n in (first, second):
        twilio_standin.dial_plan[n] = CallScript("answered", ring_seconds=0.1, talk_seconds=60)
    dnc = await client.post(space.path("/do-not-call"), json={"e164": blocked}, headers=space.as_role(Role.OPERATOR))
    again = await client.post(space.path("/do-not-call"), json={"e164": blocked}, headers=space.as_role(Role.OPERATOR))
    assert (dnc.status_code, again.status_code, again.json()["id"]) == (201, 200, dnc.json()["id"])
    body = {
        "name": "control",
        "from_numbers": [line.e164],
        "limits": {"max_concurrent": 1, "calls_per_second": 5},
        "contacts": [
            {"phone": blocked},
            {"phone": first, "variables": {"plan": "gold"}},
            {"phone": second},
            {"phone": "x"},
        ],
    }
    assert (await client.post(space.path("/campaigns"), json=body, headers=space.viewer)).status_code == 403
    bad_limits = body | {"limits": {"max_concurrent": 0}}
    assert (await client.post(space.path("/campaigns"), json=bad_limits, headers=space.admin)).status_code == 422
    bad_window = body | {"limits": {"window": {"start": "18:00", "end": "09:00"}}}
    refused = await client.post(space.path("/campaigns"), json=bad_window, headers=space.admin)
    assert refused.status_code == 422 and "start before" in refused.text
    created = await client.post(space.path("/campaigns"), json=body, headers=space.as_role(Role.OPERATOR))
    assert created.status_code == 201, created.text
    assert created.json()["rejected"] == [{"line": 4, "reason": created.json()["rejected"][0]["reason"]}]
    campaign_id = created.json()["campaign"]["id"]
    path = space.path(f"/campaigns/{campaign_id}")

    other = await line.stack.new_space("other")
    assert (await client.get(other.path(f"/campaigns/{campaign_id}"), headers=other.admin)).status_code == 404
    assert (await client.post(other.path(f"/campaigns/{campaign_id}/cancel"), headers=other.admin)).status_code == 404
    assert (await client.get(space.path("/do-not-call"), headers=other.admin)).status_code == 404

    async def first_live() -> bool:
        return any(c.to == first and c.status == "in-progress" for c in twilio_standin.calls.values())

    await eventually(first_live, within=120)
    paused = await client.post(f"{path}/pause", headers=space.as_role(Role.OPERATOR))
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    assert (await client.post(f"{path}/pause", headers=space.admin)).status_code == 409
    assert (await client.post(f"{path}/resume", headers=space.viewer)).status_code == 403
    assert (await client.post(f"{path}/resume", headers=space.admin)).json()["status"] == "running"
    cancelled = await client.post(f"{path}/cancel", json={"hang_up": True}, headers=space.admin)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelling"

    async def over() -> dict[str, Any] | None:
        detail = (await client.get(path, headers=space.viewer)).json()
        return detail if detail["status"] == "cancelled" else None

    detail = await eventually(over, within=120)
    assert detail["progress"]["opted_out"] == 1 and detail["progress"]["remaining"] == 0
    outcomes = {
        c["e164"]: c["outcome"] for c in (await client.get(f"{path}/contacts", headers=space.viewer)).json()["data"]
    }
    assert outcomes[blocked] == "opted-out" and outcomes[second] == "cancelled"
    assert outcomes[first] == "answered"  # it was answered before the hang-up
    assert not any(c.to == blocked for c in twilio_standin.calls.values())


async def test_a_recorded_voicemail_message_must_be_a_stored_wav_asset_of_the_space(line: Line) -> None:
    space, stack = line.space, line.stack
    wav = wav_bytes(np.zeros(800, dtype=np.int16), 8000)
    uploaded = await upload_audio(stack.client, space.path(), space.admin, wav, filename="message.wav")
    assert uploaded.status_code == 201, uploaded.text
    mine = uploaded.json()["id"]  # uploaded as a space admin would (POST /assets)
    other_space = await stack.new_space()
    theirs = await stored_asset(stack.sessions, stack.settings, other_space.id, wav)
    not_audio = await stored_asset(stack.sessions, stack.settings, space.id, b"{}", content_type="application/json")
    gone = await stored_asset(stack.sessions, stack.settings, space.id, wav, status=AssetStatus.DELETED)

    async def create(amd: dict[str, Any]) -> Any:
        body = json.loads(_settings(line)) | {"amd": amd, "contacts": [{"phone": unique_e164()}]}
        return await stack.client.post(space.path("/campaigns"), json=body, headers=space.admin)

    for asset_id, reason in ((theirs, "no stored asset"), (gone, "no stored asset"), (not_audio, "WAV audio")):
        refused = await create({"policy": "leave_message", "message_asset_id": asset_id})
        assert refused.status_code == 422, refused.text
        assert reason in refused.text and "message_asset_id" in refused.text
    nothing = await create({"policy": "leave_message"})
    assert nothing.status_code == 422 and "message_asset_id" in nothing.text
    created = await create({"policy": "leave_message", "message_asset_id": mine})
    assert created.status_code == 201, created.text
    campaign_id = created.json()["campaign"]["id"]
    async with stack.sessions() as session:
        row = await session.get(Campaign, campaign_id)
        assert row is not None
        start = start_input(row)
    assert start.amd is not None and start.amd.message_asset_id == mine and start.amd.message is None
    cancelled = await stack.client.post(
        space.path(f"/campaigns/{campaign_id}/cancel"), json={"hang_up": True}, headers=space.admin
    )
    assert cancelled.status_code == 200
