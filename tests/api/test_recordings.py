"""Recordings over the API, on both databases and both stores (local folder, real S3 server)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from models.assets import STEREO_LAYOUT, WAV, AssetAction, AssetStatus
from models.enums import AssetType, Role
from models.tables import Asset, AssetAudit
from storage import BlobStore, LocalStore, S3Store, space_key
from tests.conftest import Platform, SpaceKeys, serve_api
from tests.support.stores import BACKENDS, build_test_store, store_settings

CONTENT = hashlib.sha256(b"seed").digest() * 4096  # 128 KiB


@dataclass
class Served:
    api: Platform
    store: BlobStore


@pytest.fixture(scope="module", params=BACKENDS)
async def served(
    request: pytest.FixtureRequest, platform: Platform, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Served]:
    s3 = request.getfixturevalue("s3_server") if request.param == "s3" else None
    settings = store_settings(
        request.param,
        tmp_path_factory.mktemp("store"),
        s3,
        database_url=platform.settings.database_url,
        secret_keys=platform.settings.secret_keys,
        download_url_ttl_seconds=60,
    )
    store = build_test_store(settings)  # creates the bucket the app's store will use
    with_store = Platform(settings, platform.sessions, platform.admin_key)
    async with serve_api(with_store) as api:
        assert api.app is not None
        yield Served(api, api.app.state.store)
    assert type(store) is type(api.app.state.store)


async def add_recording(served: Served, space: SpaceKeys, *, status: AssetStatus = AssetStatus.STORED) -> Asset:
    """A stored recording as the worker's activity leaves it (tests/activities cover that activity)."""
    key = space_key(space.id, "recordings", f"{time.monotonic_ns()}.wav")
    blob = await asyncio.to_thread(served.store.put_stream, key, io.BytesIO(CONTENT), WAV)
    asset = Asset(
        space_id=space.id,
        type=AssetType.RECORDING,
        storage_key=key,
        content_type=WAV,
        size_bytes=blob.size,
        sha256=blob.sha256,
        status=status,
        duration_seconds=4.0,
        channel_layout=STEREO_LAYOUT,
    )
    async with served.api.sessions() as session:
        session.add(asset)
        await session.commit()
    return asset


async def audits(served: Served, asset_id: str, action: AssetAction) -> int:
    async with served.api.sessions() as session:
        count = await session.scalar(
            select(func.count()).where(AssetAudit.asset_id == asset_id, AssetAudit.action == action)
        )
    return int(count or 0)


async def test_list_get_and_content_with_ranges(served: Served) -> None:
    client, space = served.api.client, await served.api.new_space()
    asset = await add_recording(served, space)
    listed = await client.get(space.path("/recordings"), headers=space.viewer)
    assert [r["id"] for r in listed.json()["data"]] == [asset.id]
    detail = (await client.get(space.path(f"/recordings/{asset.id}"), headers=space.viewer)).json()
    assert (detail["size_bytes"], detail["channel_layout"], detail["status"]) == (len(CONTENT), STEREO_LAYOUT, "stored")

    url = space.path(f"/recordings/{asset.id}/content")
    whole = await client.get(url, headers=space.viewer)
    assert whole.status_code == 200 and whole.content == CONTENT
    assert whole.headers["accept-ranges"] == "bytes" and whole.headers["content-type"] == WAV
    part = await client.get(url, headers={**space.viewer, "Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == CONTENT[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(CONTENT)}"
    tail = await client.get(url, headers={**space.viewer, "Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == CONTENT[-10:]
    open_ended = await client.get(url, headers={**space.viewer, "Range": f"bytes={len(CONTENT) - 5}-"})
    assert open_ended.content == CONTENT[-5:]
    beyond = await client.get(url, headers={**space.viewer, "Range": f"bytes={len(CONTENT)}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(CONTENT)}"
    assert await audits(served, asset.id, AssetAction.DOWNLOADED) == 4  # every content served; the 416 served nothing


async def test_download_url_serves_the_file_and_refuses_tampering(served: Served) -> None:
    client, space = served.api.client, await served.api.new_space()
    asset = await add_recording(served, space)
    other = await add_recording(served, space)
    issued = await client.post(space.path(f"/recordings/{asset.id}/download-url"), headers=space.viewer)
    assert issued.status_code == 200, issued.text
    url = httpx.URL(issued.json()["url"])
    assert datetime.fromisoformat(issued.json()["expires_at"]) <= datetime.now(UTC) + timedelta(seconds=61)
    assert await audits(served, asset.id, AssetAction.DOWNLOADED) == 1

    if isinstance(served.store, S3Store):
        ok = await httpx.AsyncClient().get(str(url))
        assert ok.status_code == 200 and ok.content == CONTENT
        forged = str(url).replace(asset.storage_key.rsplit("/", 1)[1], other.storage_key.rsplit("/", 1)[1])
        assert (await httpx.AsyncClient().get(forged)).status_code == 403
        return

    assert isinstance(served.store, LocalStore)
    path = url.raw_path.decode()
    ok = await client.get(path)  # no API key: the signature is the authority
    assert ok.status_code == 200 and ok.content == CONTENT
    assert ok.headers["content-disposition"] == f'attachment; filename="{asset.id}.wav"'
    ranged = await client.get(path, headers={"Range": "bytes=0-3"})
    assert ranged.status_code == 206 and ranged.content == CONTENT[:4]
    forged_key = path.replace(asset.storage_key.rsplit("/", 1)[1], other.storage_key.rsplit("/", 1)[1])
    assert (await client.get(forged_key)).status_code == 403
    later = str(int(url.params["expires"]) + 3600)
    assert (await client.get(path.replace(f"expires={url.params['expires']}", f"expires={later}"))).status_code == 403
    expired = httpx.URL(served.store.download_url(asset.storage_key, expires_in=-1))
    refused = await client.get(expired.raw_path.decode())
    assert refused.status_code == 403 and "expired" in refused.json()["detail"]


async def test_roles_spaces_and_deleted(served: Served) -> None:
    client = served.api.client
    a, b = await served.api.new_space("a"), await served.api.new_space("b")
    asset = await add_recording(served, a)
    for suffix in ("", "/content"):
        assert (await client.get(a.path(f"/recordings/{asset.id}{suffix}"))).status_code == 401
        for role in Role:
            assert (
                await client.get(a.path(f"/recordings/{asset.id}{suffix}"), headers=b.as_role(role))
            ).status_code == 404
            assert (
                await client.get(b.path(f"/recordings/{asset.id}{suffix}"), headers=b.as_role(role))
            ).status_code == 404
    assert (await client.post(b.path(f"/recordings/{asset.id}/download-url"), headers=b.owner)).status_code == 404
    hold = a.path(f"/recordings/{asset.id}/legal-hold")
    for role in (Role.VIEWER, Role.OPERATOR):
        assert (await client.put(hold, json={"legal_hold": True}, headers=a.as_role(role))).status_code == 403
    assert (await client.put(hold, json={"legal_hold": "maybe"}, headers=a.admin)).status_code == 422
    on = await client.put(hold, json={"legal_hold": True}, headers=a.admin)
    assert on.status_code == 200 and on.json()["legal_hold"] is True
    assert await audits(served, asset.id, AssetAction.LEGAL_HOLD_ON) == 1

    gone = await add_recording(served, a, status=AssetStatus.DELETED)
    for method, suffix in (("GET", ""), ("GET", "/content"), ("POST", "/download-url")):
        response = await client.request(method, a.path(f"/recordings/{gone.id}{suffix}"), headers=a.viewer)
        assert response.status_code == 410, (suffix, response.text)
    in_progress = await add_recording(served, a, status=AssetStatus.RECORDING)
    assert (await client.get(a.path(f"/recordings/{in_progress.id}/content"), headers=a.viewer)).status_code == 409
    listed = await client.get(a.path("/recordings?status=deleted"), headers=a.viewer)
    assert [r["id"] for r in listed.json()["data"]] == [gone.id]


async def test_retention_policy_recomputes_deadlines(served: Served) -> None:
    client, space = served.api.client, await served.api.new_space()
    asset = await add_recording(served, space)
    policy = space.path("/retention-policy")
    assert (await client.get(policy, headers=space.viewer)).json()["recording_days"] is None
    assert (await client.put(policy, json={"recording_days": 7}, headers=space.viewer)).status_code == 403
    assert (await client.put(policy, json={"recording_days": 0}, headers=space.admin)).status_code == 422
    changed = await client.put(policy, json={"recording_days": 7, "transcript_days": 30}, headers=space.admin)
    assert changed.status_code == 200 and changed.json()["assets_updated"] == 1
    detail = (await client.get(space.path(f"/recordings/{asset.id}"), headers=space.viewer)).json()
    deadline = datetime.fromisoformat(detail["retention_until"])
    assert abs(deadline - (asset.created_at + timedelta(days=7))) < timedelta(seconds=1)
    cleared = await client.put(policy, json={"recording_days": None}, headers=space.admin)
    assert cleared.json()["transcript_days"] is None
    detail = (await client.get(space.path(f"/recordings/{asset.id}"), headers=space.viewer)).json()
    assert detail["retention_until"] is None
