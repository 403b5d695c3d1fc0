"""Every space sees only its own data, and every role gets exactly what it is allowed."""

from __future__ import annotations

import pytest

from models.enums import Role
from tests.api.resources import KINDS, PATCHES, body_for, create
from tests.conftest import Platform

READ_ROLE = {"api-keys": Role.ADMIN}
WRITE_ROLE = Role.ADMIN


@pytest.mark.parametrize("kind", KINDS)
async def test_other_spaces_resources_answer_404_for_every_role(api: Platform, kind: str) -> None:
    a = await api.new_space("a")
    b = await api.new_space("b")
    row = await create(api.client, a, kind, await body_for(api.client, a, kind))

    for role in Role:
        headers = b.as_role(role)
        # A's resource under A's space: B's keys cannot even see that the space exists.
        for method, body in (("GET", None), ("PATCH", PATCHES[kind]), ("DELETE", None)):
            response = await api.client.request(method, a.path(f"/{kind}/{row['id']}"), headers=headers, json=body)
            assert response.status_code == 404, (role, method, response.text)
        listed = await api.client.get(a.path(f"/{kind}"), headers=headers)
        assert listed.status_code == 404
        # A's resource id under B's own space: not found either.
        own_path = b.path(f"/{kind}/{row['id']}")
        assert (await api.client.get(own_path, headers=b.owner)).status_code == 404
        assert (await api.client.patch(own_path, json=PATCHES[kind], headers=b.owner)).status_code == 404
        assert (await api.client.delete(own_path, headers=b.owner)).status_code == 404

    still_there = await api.client.get(a.path(f"/{kind}/{row['id']}"), headers=a.owner)
    assert still_there.status_code == 200
    listed_b = await api.client.get(b.path(f"/{kind}"), headers=b.owner)
    assert row["id"] not in {item["id"] for item in listed_b.json()["data"]}


@pytest.mark.parametrize("kind", KINDS)
async def test_roles_are_enforced(api: Platform, kind: str) -> None:
    space = await api.new_space()
    read_role = READ_ROLE.get(kind, Role.VIEWER)
    for role in Role:
        headers = space.as_role(role)
        may_read = role.allows(read_role)
        may_write = role.allows(WRITE_ROLE)

        listed = await api.client.get(space.path(f"/{kind}"), headers=headers)
        assert listed.status_code == (200 if may_read else 403), (role, listed.text)

        body = await body_for(api.client, space, kind)
        created = await api.client.post(space.path(f"/{kind}"), json=body, headers=headers)
        assert created.status_code == (201 if may_write else 403), (role, created.text)

        row = await create(api.client, space, kind, await body_for(api.client, space, kind))
        path = space.path(f"/{kind}/{row['id']}")
        got = await api.client.get(path, headers=headers)
        assert got.status_code == (200 if may_read else 403)
        patched = await api.client.patch(path, json=PATCHES[kind], headers=headers)
        assert patched.status_code == (200 if may_write else 403), (role, patched.text)
        deleted = await api.client.delete(path, headers=headers)
        assert deleted.status_code == (204 if may_write else 403), (role, deleted.text)


async def test_space_level_permissions(api: Platform) -> None:
    space = await api.new_space("mine")
    other = await api.new_space("theirs")
    for role in Role:
        headers = space.as_role(role)
        assert (await api.client.get(space.path(), headers=headers)).status_code == 200
        assert (await api.client.get(other.path(), headers=headers)).status_code == 404
        listed = await api.client.get("/v1/spaces", headers=headers)
        assert [s["id"] for s in listed.json()["data"]] == [space.id]
        assert (await api.client.post("/v1/spaces", json={"name": "x"}, headers=headers)).status_code == 403
        renamed = await api.client.patch(space.path(), json={"name": "new name"}, headers=headers)
        assert renamed.status_code == (200 if role is Role.OWNER else 403)
    assert (await api.client.delete(other.path(), headers=space.owner)).status_code == 404
    assert (await api.client.delete(space.path(), headers=space.admin)).status_code == 403
    assert (await api.client.delete(space.path(), headers=space.owner)).status_code == 204
    # The space and everything in it is gone, including the keys.
    assert (await api.client.get(space.path(), headers=api.admin)).status_code == 404
    assert (await api.client.get("/v1/spaces", headers=space.owner)).status_code == 401


async def test_conversations_and_messages_are_scoped(api: Platform) -> None:
    from models.enums import Channel, MessageRole
    from models.tables import Conversation, Message

    a = await api.new_space("a")
    b = await api.new_space("b")
    async with api.sessions() as session:
        conversation = Conversation(space_id=a.id, channel=Channel.VOICE, external_party="+14155550100")
        session.add(conversation)
        await session.flush()
        for i, speaker in enumerate([MessageRole.CALLER, MessageRole.AGENT]):
            session.add(
                Message(space_id=a.id, conversation_id=conversation.id, role=speaker, source="voice", text=f"turn {i}")
            )
        await session.commit()
    path = a.path(f"/conversations/{conversation.id}")
    for role in Role:
        got = await api.client.get(path, headers=a.as_role(role))
        assert got.status_code == 200 and got.json()["external_party"] == "+14155550100"
        messages = await api.client.get(f"{path}/messages", headers=a.as_role(role))
        assert [m["text"] for m in messages.json()["data"]] == ["turn 0", "turn 1"]
        assert (await api.client.get(path, headers=b.as_role(role))).status_code == 404
        assert (await api.client.get(f"{path}/messages", headers=b.as_role(role))).status_code == 404
        foreign = b.path(f"/conversations/{conversation.id}/messages")
        assert (await api.client.get(foreign, headers=b.as_role(role))).status_code == 404
        assert (await api.client.get(b.path("/conversations"), headers=b.as_role(role))).json()["data"] == []
