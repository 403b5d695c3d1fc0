"""A LiveKit egress writes a call's recording where the space's storage keeps it: the S3 object key is the store's
per-space key under the store's prefix, so an upload made as egress makes it (straight to the bucket, by object
key) is found by the store and registered as the space's asset."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import boto3
from botocore.config import Config
from temporalio.testing import ActivityEnvironment

from activities.recording_assets import RecordingAssetActivities
from models.assets import RegisterEgressAssetInput
from storage import S3Store, build_store
from storage.egress import egress_target
from tests.activities.conftest import new_call
from tests.conftest import Platform
from tests.support.s3 import S3Server
from tests.support.stores import build_test_store, store_settings

AUDIO = b"OggS" + bytes(range(256)) * 8


async def test_s3_egress_lands_under_the_space_prefix(platform: Platform, s3_server: S3Server, tmp_path: Path) -> None:
    settings = store_settings("s3", tmp_path, s3_server, s3_key_prefix="/tenant-a/")
    store = build_test_store(settings)
    assert isinstance(store, S3Store)
    rows = await new_call(platform)
    target = egress_target(settings, rows.space_id, rows.call_id)
    assert target.store_key == f"spaces/{rows.space_id}/recordings/{rows.call_id}.ogg"
    assert target.filepath == f"tenant-a/{target.store_key}"

    # What LiveKit egress does with S3Upload(bucket=…) and filepath: a PUT of that object key in the bucket.
    egress = boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint_url,
        aws_access_key_id=s3_server.access_key_id,
        aws_secret_access_key=s3_server.secret_access_key,
        region_name="us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    egress.put_object(Bucket=settings.s3_bucket, Key=target.filepath, Body=AUDIO)

    registered = await ActivityEnvironment().run(
        RecordingAssetActivities(platform.sessions, store).register_egress_asset,
        RegisterEgressAssetInput(
            space_id=rows.space_id,
            call_id=rows.call_id,
            egress_id=f"EG_{uuid.uuid4().hex}",
            location=f"https://{s3_server.endpoint_url.split('//')[1]}/{settings.s3_bucket}/{target.filepath}",
        ),
    )
    assert registered.status == "stored", registered
    assert registered.sha256 == hashlib.sha256(AUDIO).hexdigest() and registered.size_bytes == len(AUDIO)
    assert b"".join(store.read_range(target.store_key)) == AUDIO


def test_local_egress_writes_the_store_key(tmp_path: Path) -> None:
    settings = store_settings("local", tmp_path, None)
    build_store(settings)
    target = egress_target(settings, "sp_a", "call_b")
    assert target.filepath == target.store_key == "spaces/sp_a/recordings/call_b.ogg"
