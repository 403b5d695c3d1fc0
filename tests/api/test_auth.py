"""API key authentication and the rules for who may mint which keys."""

from __future__ import annotations

from sqlalchemy import select

from models.enums import Role
from models.tables import ApiKey
from tests.conftest import Platform, bearer


async def test_requests_without_a_valid_key_are_401(api: Platform) -> None:
    for headers in (
        {},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer not-a-key"},
        bearer(api.admin_key[:-2] + "xx"),
        bearer("bt_ffffffffffff_" + "a" * 43),
    ):
        response = await api.client.get("/v1/spaces", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["detail"]


async def test_key_secret_is_shown_once_and_stored_hashed(api: Platform) -> None:
    space = await api.new_space()
    created = await api.client.post(space.path("/api-keys"), json={"name": "ci", "role": "viewer"}, headers=space.admin)
    body = created.json()
    assert body["key"].startswith("bt_") and body["service_account"] is True
    got = await api.client.get(space.path(f"/api-keys/{body['id']}"), headers=space.admin)
    assert "key" not in got.json()
    async with api.sessions() as session:
        row = await session.scalar(select(ApiKey).where(ApiKey.id == body["id"]))
        assert row is not None
        assert body["key"].split("_", 2)[2] not in row.secret_hash
    assert (await api.client.get(space.path(), headers=bearer(body["key"]))).status_code == 200


async def test_revoked_key_stops_working(api: Platform) -> None:
    space = await api.new_space()
    created = (
        await api.client.post(space.path("/api-keys"), json={"name": "tmp", "role": "operator"}, headers=space.admin)
    ).json()
    assert (await api.client.get(space.path(), headers=bearer(created["key"]))).status_code == 200
    assert (await api.client.delete(space.path(f"/api-keys/{created['id']}"), headers=space.admin)).status_code == 204
    response = await api.client.get(space.path(), headers=bearer(created["key"]))
    assert response.status_code == 401 and "revoked" in response.json()["detail"]
    listed = (await api.client.get(space.path("/api-keys"), headers=space.admin)).json()["data"]
    assert next(k for k in listed if k["id"] == created["id"])["revoked_at"] is not None


async def test_no_key_can_grant_more_than_it_holds(api: Platform) -> None:
    space = await api.new_space()
    owner_key = await api.client.post(
        space.path("/api-keys"),
        json={"name": "o2", "role": "owner", "person_email": "ana@example.com"},
        headers=space.owner,
    )
    assert owner_key.status_code == 201 and owner_key.json()["service_account"] is False
    escalate = await api.client.post(space.path("/api-keys"), json={"name": "x", "role": "owner"}, headers=space.admin)
    assert escalate.status_code == 403
    admin_made = await api.client.post(
        space.path("/api-keys"), json={"name": "x", "role": "admin"}, headers=space.admin
    )
    assert admin_made.status_code == 201
    promote = await api.client.patch(
        space.path(f"/api-keys/{admin_made.json()['id']}"), json={"role": "owner"}, headers=space.admin
    )
    assert promote.status_code == 403
    revoke_owner = await api.client.delete(space.path(f"/api-keys/{owner_key.json()['id']}"), headers=space.admin)
    assert revoke_owner.status_code == 403
    demote = await api.client.patch(
        space.path(f"/api-keys/{admin_made.json()['id']}"), json={"role": "viewer"}, headers=space.owner
    )
    assert demote.status_code == 200 and demote.json()["role"] == "viewer"
    assert (await api.client.get(space.path("/api-keys"), headers=bearer(admin_made.json()["key"]))).status_code == 403


async def test_platform_key_creates_and_sees_all_spaces(api: Platform) -> None:
    first = await api.new_space("one")
    second = await api.new_space("two")
    seen: set[str] = set()
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await api.client.get("/v1/spaces", params=params, headers=api.admin)).json()
        assert len(page["data"]) <= 2
        seen |= {s["id"] for s in page["data"]}
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert {first.id, second.id} <= seen
    assert (await api.client.get(first.path(), headers=second.as_role(Role.OWNER))).status_code == 404
    bad_cursor = await api.client.get("/v1/spaces", params={"cursor": "!!"}, headers=api.admin)
    assert bad_cursor.status_code == 422
