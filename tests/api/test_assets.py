"""Audio assets a space uploads, over the API on both databases: WAV (any rate, mono or stereo), MP3 and Ogg are
decoded whole and stored as mono PCM16 WAV; every way an upload can be wrong is a 4xx with its reason; roles,
spaces, soft deletion refused while a flow or a campaign plays the asset; a flow's ``say`` accepts an upload."""

from __future__ import annotations

import asyncio
import io
import uuid
import wave
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from models.assets import AssetAction
from models.enums import CampaignStatus, Role
from models.tables import Asset, AssetAudit, Campaign
from tests.conftest import Platform, SpaceKeys, serve_api
from tests.support.assets import encoded, stored_asset, tone, upload_audio, wav_bytes
from voice.amd.message_audio import wav_frames
from voice.flow_audio import decode_wav

UPLOAD_LIMIT = 64 * 1024
MAX_SECONDS = 2.0


@pytest.fixture(scope="module")
async def assets_api(platform: Platform) -> AsyncIterator[Platform]:
    """The API with a small upload limit and a short longest audio, so that both can be passed cheaply."""
    settings = platform.settings.model_copy(
        update={"asset_upload_limit": UPLOAD_LIMIT, "asset_max_seconds": MAX_SECONDS}
    )
    async with serve_api(Platform(settings, platform.sessions, platform.admin_key)) as served:
        yield served


def _stored(api: Platform, key: str) -> bytes:
    assert api.app is not None
    return b"".join(api.app.state.store.read_range(key))


async def _row(api: Platform, asset_id: str) -> Asset:
    async with api.sessions() as session:
        asset = await session.get(Asset, asset_id)
    assert asset is not None
    return asset


async def _audits(api: Platform, asset_id: str, action: AssetAction) -> int:
    async with api.sessions() as session:
        count = await session.scalar(
            select(func.count()).where(AssetAudit.asset_id == asset_id, AssetAudit.action == action)
        )
    return int(count or 0)


async def test_wav_mp3_and_ogg_are_stored_as_mono_pcm16_wav(assets_api: Platform) -> None:
    api, space = assets_api, await assets_api.new_space()
    stereo = wav_bytes(tone(0.3, 44_100), 44_100, channels=2)  # 53 KB: under the test limit
    uploaded = await upload_audio(api.client, space.path(), space.admin, stereo, filename="C:\\prompts\\welcome.wav")
    assert uploaded.status_code == 201, uploaded.text
    body = uploaded.json()
    assert body["name"] == "welcome.wav" and body["status"] == "stored" and body["content_type"] == "audio/wav"
    assert body["sample_rate"] == 16_000 and body["duration_seconds"] == pytest.approx(0.3, abs=0.01)
    row = await _row(api, body["id"])
    assert row.space_id == space.id and row.size_bytes == body["size_bytes"]
    data = await asyncio.to_thread(_stored, api, row.storage_key)
    with wave.open(io.BytesIO(data)) as stored:
        assert (stored.getnchannels(), stored.getsampwidth(), stored.getframerate()) == (1, 2, 16_000)
        assert stored.getnframes() == pytest.approx(4800, abs=16)
    pcm, rate = decode_wav(data)  # what a flow's say plays
    assert rate == 16_000 and int(abs(pcm).max()) > 4000  # the tone, not silence
    assert len(wav_frames(data)) == 15  # what a voicemail message plays: 20 ms frames
    assert await _audits(api, body["id"], AssetAction.CREATED) == 1

    narrow = await upload_audio(api.client, space.path(), space.admin, wav_bytes(tone(0.5, 8000), 8000), name="menu")
    assert narrow.status_code == 201 and (narrow.json()["name"], narrow.json()["sample_rate"]) == ("menu", 8000)
    others = (("mp3", "libmp3lame", 44_100, "a.mp3"), ("ogg", "libopus", 48_000, "a.ogg"))
    for container, codec, rate, filename in others:
        audio = encoded(container, codec, tone(1.0, rate), rate)
        answer = await upload_audio(api.client, space.path(), space.admin, audio, filename=filename, content_type=None)
        assert answer.status_code == 201, (container, answer.text)
        assert answer.json()["sample_rate"] == 16_000
        assert answer.json()["duration_seconds"] == pytest.approx(1.0, abs=0.08)


async def test_list_and_get_by_viewers_of_the_space_only(assets_api: Platform) -> None:
    api = assets_api
    a, b = await api.new_space("a"), await api.new_space("b")
    first = (await upload_audio(api.client, a.path(), a.admin, wav_bytes(tone(0.2, 8000), 8000))).json()
    second = (await upload_audio(api.client, a.path(), a.admin, wav_bytes(tone(0.2, 8000), 8000))).json()
    recording = await stored_asset(api.sessions, api.settings, a.id, wav_bytes(tone(0.2, 8000), 8000))
    page = await api.client.get(a.path("/assets?limit=1"), headers=a.viewer)
    assert page.status_code == 200 and [x["id"] for x in page.json()["data"]] == [first["id"]]
    rest = await api.client.get(a.path(f"/assets?cursor={page.json()['next_cursor']}"), headers=a.viewer)
    assert [x["id"] for x in rest.json()["data"]] == [second["id"]]  # recordings are not uploads: not listed
    got = await api.client.get(a.path(f"/assets/{first['id']}"), headers=a.viewer)
    assert got.status_code == 200 and got.json() == first
    assert (await api.client.get(a.path(f"/assets/{recording}"), headers=a.viewer)).status_code == 404
    assert (await api.client.get(a.path(f"/assets/{first['id']}"))).status_code == 401
    assert (await api.client.get(b.path("/assets"), headers=b.viewer)).json()["data"] == []
    for role in Role:
        for path in (a.path(f"/assets/{first['id']}"), b.path(f"/assets/{first['id']}")):
            assert (await api.client.get(path, headers=b.as_role(role))).status_code == 404
        answer = await api.client.delete(b.path(f"/assets/{first['id']}"), headers=b.as_role(role))
        assert answer.status_code in (403, 404)  # viewer/operator: refused by role first; admin/owner: not found
    assert (await _row(api, first["id"])).deleted_at is None


async def test_every_bad_upload_is_a_4xx_with_its_reason(assets_api: Platform) -> None:
    api, space = assets_api, await assets_api.new_space()
    path, admin = space.path(), space.admin
    good = wav_bytes(tone(0.5, 8000), 8000)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"data": b"hello, this is text"}, 422, "not an audio file"),
        ({"data": b"", "content_type": None}, 422, "the file is empty"),
        ({"data": good[:40]}, 422, "corrupt"),  # a WAV header cut short
        ({"data": b"ID3" + bytes(range(256)) * 8, "filename": "x.mp3"}, 422, "corrupt"),  # header over garbage
        ({"data": good[:44]}, 422, "holds no audio"),  # a header and no samples
        ({"data": wav_bytes(tone(2.5, 8000), 8000)}, 422, f"longer than {MAX_SECONDS:g} seconds"),
        ({"data": wav_bytes(tone(1.0, 4000), 4000)}, 422, "sample rate 4000 Hz"),
        ({"data": good, "content_type": "text/plain"}, 415, "the file is text/plain"),
        ({"data": good, "content_type": "image/png"}, 415, "upload audio"),
        ({"data": good, "name": "bad\x00name"}, 422, "name"),
        ({"data": wav_bytes(tone(3.0, 16_000), 16_000)}, 413, f"larger than {UPLOAD_LIMIT} bytes"),
    ]
    for case, code, reason in cases:
        answer = await upload_audio(api.client, path, admin, **case)
        assert answer.status_code == code, (reason, answer.text)
        assert reason in answer.json()["detail"], (reason, answer.json())
    raw = await api.client.post(space.path("/assets"), content=good, headers={**admin, "Content-Type": "audio/wav"})
    assert raw.status_code == 415 and "multipart/form-data" in raw.json()["detail"]
    no_file = await api.client.post(space.path("/assets"), files={"other": ("a.wav", good)}, headers=admin)
    assert no_file.status_code == 422 and "file" in no_file.text
    chunked = await api.client.post(
        space.path("/assets"),
        content=_chunks(
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
            + b"x" * (UPLOAD_LIMIT + 1)
            + b"\r\n--b--\r\n"
        ),  # no Content-Length: counted as it streams in
        headers={**admin, "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert chunked.status_code == 413
    listed = await api.client.get(space.path("/assets"), headers=space.viewer)
    assert listed.json()["data"] == []  # nothing refused was stored
    for role in (Role.VIEWER, Role.OPERATOR):
        refused = await upload_audio(api.client, path, space.as_role(role), good)
        assert refused.status_code == 403, refused.text


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 8192):
        yield data[start : start + 8192]


async def test_a_flow_and_a_campaign_use_it_and_deleting_waits_for_them(assets_api: Platform) -> None:
    api, space = assets_api, await assets_api.new_space()
    asset = (await upload_audio(api.client, space.path(), space.admin, wav_bytes(tone(0.5, 8000), 8000))).json()
    steps = [{"id": "welcome", "type": "say", "asset_id": asset["id"]}, {"id": "bye", "type": "hangup"}]
    flow = await api.client.post(space.path("/flows"), json={"name": "hi", "steps": steps}, headers=space.admin)
    assert flow.status_code == 201, flow.text
    item = space.path(f"/assets/{asset['id']}")
    for role in (Role.VIEWER, Role.OPERATOR):
        assert (await api.client.delete(item, headers=space.as_role(role))).status_code == 403
    in_use = await api.client.delete(item, headers=space.admin)
    assert in_use.status_code == 409 and f"flow {flow.json()['id']} (step 'welcome')" in in_use.json()["detail"]
    text_only = [{"id": "welcome", "type": "say", "text": "Welcome."}, {"id": "bye", "type": "hangup"}]
    changed = await api.client.put(
        space.path(f"/flows/{flow.json()['id']}"), json={"name": "hi", "steps": text_only}, headers=space.admin
    )
    assert changed.status_code == 200, changed.text
    campaign = await _campaign_leaving(api, space, asset["id"])
    in_use = await api.client.delete(item, headers=space.admin)
    assert in_use.status_code == 409 and f"campaign {campaign}" in in_use.json()["detail"]
    async with api.sessions() as session:
        row = await session.get(Campaign, campaign)
        assert row is not None
        row.status = CampaignStatus.COMPLETED
        await session.commit()

    deleted = await api.client.delete(item, headers=space.admin)
    assert deleted.status_code == 204, deleted.text
    stored = await _row(api, asset["id"])
    assert stored.status == "deleted" and stored.deleted_at is not None
    assert api.app is not None and not await asyncio.to_thread(api.app.state.store.exists, stored.storage_key)
    assert await _audits(api, asset["id"], AssetAction.DELETED) == 1
    assert (await api.client.get(item, headers=space.viewer)).status_code == 410
    assert (await api.client.delete(item, headers=space.admin)).status_code == 410
    assert (await api.client.get(space.path("/assets"), headers=space.viewer)).json()["data"] == []
    refused = await api.client.post(space.path("/flows"), json={"name": "again", "steps": steps}, headers=space.admin)
    assert refused.status_code == 422 and "not found in this space" in refused.text


async def _campaign_leaving(api: Platform, space: SpaceKeys, asset_id: str) -> str:
    """A running campaign whose AMD leaves ``asset_id`` as its message (as the campaign routes store one; the
    campaign API accepting an upload is tested in tests/campaigns/test_campaign_api.py)."""
    async with api.sessions() as session:
        campaign = Campaign(
            space_id=space.id,
            name="reminders",
            status=CampaignStatus.RUNNING,
            workflow_id=f"campaign-test-{uuid.uuid4().hex}",
            from_numbers=[],
            limits={},
            amd={"policy": "leave_message", "message": None, "message_asset_id": asset_id},
        )
        session.add(campaign)
        await session.commit()
        return campaign.id
