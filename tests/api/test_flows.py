"""Flows over the REST API: JSON or YAML, every change a new immutable version, and every invalid flow a 422
whose reason names the step."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from models.assets import AssetStatus
from models.enums import AssetType, Role
from models.tables import Asset
from tests.api.resources import create, flow_body, sip_trunk_body
from tests.conftest import Platform, unique_e164

SAMPLE_YAML = """
name: Front desk
time_zone: America/New_York
business_hours:
  mon: ["09:00-17:00"]
  tue: ["09:00-17:00"]
steps:
  - id: hours
    type: branch
    routes:
      - when: {business_hours: false}
        goto: closed
    default: menu
  - id: menu
    type: gather
    prompt: Press 1 for sales, 2 for support, or stay on the line for our assistant.
    variable: department
    choices: ["1", "2"]
    on_no_input: assistant
  - id: route
    type: branch
    routes:
      - when: {variable: department, equals: "1"}
        goto: sales
    default: support
  - id: sales
    type: transfer
    target: "+14155550111"
    on_failure: assistant
  - id: support
    type: transfer
    target: "sip:support@pbx.example.com"
    on_failure: assistant
  - id: assistant
    type: agent
    agent_id: ag_0123456789abcdef0123456789abcdef
  - id: closed
    type: say
    text: We are closed.
    next: bye
  - id: bye
    type: hangup
"""


def _with_steps(*steps: dict[str, Any]) -> dict[str, Any]:
    return {"name": "broken", "steps": list(steps)}


async def test_yaml_upload_versions_and_reads(api: Platform) -> None:
    space = await api.new_space()
    created = await api.client.post(
        space.path("/flows"), content=SAMPLE_YAML, headers={**space.admin, "content-type": "application/yaml"}
    )
    assert created.status_code == 201, created.text
    flow = created.json()
    assert flow["version"] == 1 and flow["name"] == "Front desk"
    assert [s["id"] for s in flow["document"]["steps"]][:2] == ["hours", "menu"]

    path = space.path(f"/flows/{flow['id']}")
    changed = yaml.safe_load(SAMPLE_YAML)
    changed["steps"][1]["prompt"] = "Press 1 for sales or 2 for support."
    replaced = await api.client.put(path, json=changed, headers=space.admin)
    assert replaced.status_code == 200 and replaced.json()["version"] == 2
    renamed = await api.client.patch(path, json={"name": "Reception"}, headers=space.admin)
    assert renamed.status_code == 200 and renamed.json()["version"] == 3
    assert renamed.json()["document"]["steps"][1]["prompt"] == "Press 1 for sales or 2 for support."

    versions = (await api.client.get(f"{path}/versions", headers=space.viewer)).json()["data"]
    assert [v["version"] for v in versions] == [1, 2, 3]
    first = (await api.client.get(f"{path}/versions/1", headers=space.viewer)).json()
    assert first["document"]["steps"][1]["prompt"].startswith("Press 1 for sales, 2 for support")  # immutable
    assert (await api.client.get(f"{path}/versions/9", headers=space.viewer)).status_code == 404
    current = (await api.client.get(path, headers=space.viewer)).json()
    assert (current["name"], current["version"]) == ("Reception", 3)
    listed = (await api.client.get(space.path("/flows"), headers=space.viewer)).json()["data"]
    assert [f["id"] for f in listed] == [flow["id"]]


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (_with_steps({"id": "a", "type": "dance"}), "step 'a': unknown step type 'dance'"),
        (
            _with_steps({"id": "a", "type": "branch", "routes": [{"when": {}, "goto": "nowhere"}]}),
            "step 'a': routes.goto goes to 'nowhere'",
        ),
        (
            _with_steps({"id": "a", "type": "hangup"}, {"id": "b", "type": "say", "text": "never heard"}),
            "step 'b': unreachable",
        ),
        (
            _with_steps(
                {"id": "a", "type": "say", "text": "again", "next": "b"},
                {"id": "b", "type": "set", "values": {"x": "1"}, "next": "a"},
            ),
            "in a loop with no gather",
        ),
        (_with_steps({"id": "out", "type": "transfer"}), "step 'out': a transfer needs a target"),
        (_with_steps({"id": "out", "type": "transfer", "target": " "}), "step 'out': a transfer needs a target"),
        (
            _with_steps({"id": "a", "type": "say", "text": "x"}, {"id": "a", "type": "hangup"}),
            "step 'a': the id is used twice",
        ),
        (
            _with_steps({"id": "a", "type": "say", "text": "x", "asset_id": "as_1"}),
            "step 'a': a say has either text or an asset_id",
        ),
        (_with_steps({"id": "a", "type": "say"}), "step 'a': a say has either text or an asset_id"),
        ({"name": "tz", "time_zone": "Mars/Olympus", "steps": [{"id": "a", "type": "hangup"}]}, "unknown time zone"),
        (
            {"name": "h", "business_hours": {"mon": ["17:00-09:00"]}, "steps": [{"id": "a", "type": "hangup"}]},
            "a span ends after it starts",
        ),
    ],
)
async def test_invalid_flows_are_422_naming_the_step(api: Platform, document: dict[str, Any], reason: str) -> None:
    space = await api.new_space()
    response = await api.client.post(space.path("/flows"), json=document, headers=space.admin)
    assert response.status_code == 422, response.text
    assert reason in response.text


async def test_a_loop_through_a_gather_is_fine_and_bad_bodies_are_4xx(api: Platform) -> None:
    space = await api.new_space()
    looping = _with_steps(
        {"id": "menu", "type": "gather", "prompt": "Press 1 to hear it again.", "choices": ["1"], "on_no_input": "bye"},
        {"id": "again", "type": "say", "text": "Here it is again.", "next": "menu"},
        {"id": "bye", "type": "hangup"},
    )
    assert (await api.client.post(space.path("/flows"), json=looping, headers=space.admin)).status_code == 201
    yaml_headers = {**space.admin, "content-type": "application/yaml"}
    bad_yaml = await api.client.post(space.path("/flows"), content="steps: [unclosed", headers=yaml_headers)
    assert bad_yaml.status_code == 400
    not_a_mapping = await api.client.post(space.path("/flows"), content="- just\n- a list\n", headers=yaml_headers)
    assert not_a_mapping.status_code == 422
    tagged = await api.client.post(space.path("/flows"), content="!!python/object:os.system {}", headers=yaml_headers)
    assert tagged.status_code == 400  # the safe loader refuses object tags
    text = await api.client.post(
        space.path("/flows"), content="hello", headers={**space.admin, "content-type": "text/plain"}
    )
    assert text.status_code == 415
    viewer = await api.client.post(space.path("/flows"), json=flow_body(), headers=space.as_role(Role.OPERATOR))
    assert viewer.status_code == 403


async def test_a_flow_a_number_routes_to_cannot_be_deleted(api: Platform) -> None:
    space = await api.new_space()
    flow = await create(api.client, space, "flows", flow_body())
    trunk = await create(api.client, space, "sip-trunks", sip_trunk_body())
    number = {"e164": unique_e164(), "sip_trunk_id": trunk["id"], "route_type": "flow", "flow_id": flow["id"]}
    number_id = (await create(api.client, space, "phone-numbers", number))["id"]
    refused = await api.client.delete(space.path(f"/flows/{flow['id']}"), headers=space.admin)
    assert refused.status_code == 409
    await api.client.delete(space.path(f"/phone-numbers/{number_id}"), headers=space.admin)
    assert (await api.client.delete(space.path(f"/flows/{flow['id']}"), headers=space.admin)).status_code == 204
    assert (await api.client.get(space.path(f"/flows/{flow['id']}/versions"), headers=space.admin)).status_code == 404


async def _asset(
    api: Platform, space_id: str, content_type: str = "audio/wav", status: AssetStatus = AssetStatus.STORED
) -> str:
    async with api.sessions() as session:
        asset = Asset(space_id=space_id, type=AssetType.OTHER, storage_key=f"{space_id}/{unique_e164()}",
                      content_type=content_type, status=status)  # fmt: skip
        session.add(asset)
        await session.commit()
        return asset.id


async def test_a_say_plays_a_stored_wav_asset_of_the_space_checked_when_saved(api: Platform) -> None:
    space, other = await api.new_space(), await api.new_space()
    wav = await _asset(api, space.id)
    text = await _asset(api, space.id, "application/json")
    failed = await _asset(api, space.id, status=AssetStatus.FAILED)
    theirs = await _asset(api, other.id)

    def flow(asset_id: str) -> dict[str, Any]:
        return _with_steps({"id": "welcome", "type": "say", "asset_id": asset_id}, {"id": "bye", "type": "hangup"})

    created = await api.client.post(space.path("/flows"), json=flow(wav), headers=space.admin)
    assert created.status_code == 201, created.text
    assert created.json()["document"]["steps"][0]["asset_id"] == wav
    for asset_id, reason in [
        ("as_missing", "not found in this space"),
        (theirs, "not found in this space"),
        (text, "is not stored WAV audio (application/json)"),
        (failed, "is not stored WAV audio"),
    ]:
        refused = await api.client.post(space.path("/flows"), json=flow(asset_id), headers=space.admin)
        assert refused.status_code == 422 and f"step 'welcome': asset '{asset_id}' {reason}" in refused.text
        edited = await api.client.put(
            space.path(f"/flows/{created.json()['id']}"), json=flow(asset_id), headers=space.admin
        )
        assert edited.status_code == 422 and "step 'welcome'" in edited.text
