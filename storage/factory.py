"""The store a process uses, built from its settings (at start-up, never at import)."""

from __future__ import annotations

from models.settings import Settings
from storage.base import BlobStore
from storage.local import LocalStore
from storage.s3 import S3Store


def build_store(settings: Settings) -> BlobStore:
    if settings.storage_backend == "s3":
        store = S3Store(
            settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key.get_secret_value()
            if settings.s3_secret_access_key
            else None,
            region=settings.s3_region,
            key_prefix=settings.s3_key_prefix,
        )
        if settings.s3_create_bucket:
            store.ensure_bucket()
        return store
    key = settings.storage_signing_key.get_secret_value() if settings.storage_signing_key else None
    return LocalStore(
        settings.storage_dir or settings.data_dir / "storage",
        LocalStore.signing_key_from(key, settings.data_dir),
        settings.public_url,
    )
