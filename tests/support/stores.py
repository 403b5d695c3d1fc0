"""Blob stores for tests: the local folder and the real S3 server, configured the way ``build_store`` does."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import SecretStr

from models.settings import Settings
from storage import BlobStore, build_store
from tests.support.s3 import S3Server

BACKENDS = ["local", "s3"]


def store_settings(backend: str, data_dir: Path, s3: S3Server | None, **overrides: object) -> Settings:
    if backend == "local":
        return Settings(data_dir=data_dir, storage_backend="local", **overrides)  # type: ignore[arg-type]
    assert s3 is not None
    return Settings(
        data_dir=data_dir,
        storage_backend="s3",
        s3_endpoint_url=s3.endpoint_url,
        s3_bucket=f"t-{uuid.uuid4().hex[:12]}",
        s3_access_key_id=s3.access_key_id,
        s3_secret_access_key=SecretStr(s3.secret_access_key),
        s3_create_bucket=True,
        **overrides,  # type: ignore[arg-type]
    )


def build_test_store(settings: Settings) -> BlobStore:
    """``build_store``, retried while a just-started S3 server is still coming up."""
    deadline = time.monotonic() + 20
    while True:
        try:
            return build_store(settings)
        except (BotoCoreError, ClientError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
