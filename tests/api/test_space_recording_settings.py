"""A space's recording consent and hold settings over REST: defaults, changes, bad values refused with a reason,
owners only, and another space's settings out of reach."""

from __future__ import annotations

from tests.conftest import Platform


async def test_defaults_changes_and_bad_values(api: Platform) -> None:
    space = await api.new_space("consent")
    got = (await api.client.get(space.path(), headers=space.viewer)).json()
    assert (got["recording_consent"], got["recording_announcement"], got["record_hold"]) == ("none", None, False)

    body = {"recording_consent": "require", "recording_announcement": "  May we record? Press 1. ", "record_hold": True}
    changed = await api.client.patch(space.path(), json=body, headers=space.owner)
    assert changed.status_code == 200, changed.text
    got = (await api.client.get(space.path(), headers=space.viewer)).json()
    assert (got["recording_consent"], got["recording_announcement"], got["record_hold"]) == (
        "require",
        "May we record? Press 1.",
        True,
    )

    for bad in ({"recording_consent": "maybe"}, {"recording_announcement": "x" * 501}, {"record_hold": "often"}):
        refused = await api.client.patch(space.path(), json=bad, headers=space.owner)
        assert refused.status_code == 422, (bad, refused.text)
        assert refused.json()["detail"], refused.text
    assert (await api.client.patch(space.path(), json={"record_hold": False}, headers=space.admin)).status_code == 403

    other = await api.new_space("other")
    assert (await api.client.patch(space.path(), json={"record_hold": False}, headers=other.owner)).status_code == 404
    created = await api.client.post(
        "/v1/spaces", json={"name": "announcing", "recording_consent": "announce"}, headers=api.admin
    )
    assert created.status_code == 201 and created.json()["recording_consent"] == "announce"
