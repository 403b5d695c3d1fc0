"""Where a LiveKit egress writes a call's recording so that it lands in the space's storage: the same per-space key
the store uses (``spaces/<space>/recordings/<call>.ogg``), as the object key the backend really writes (an S3
store's key prefix first). ``activities/recording_assets.egress_key`` finds the store key back in the location the
egress reports, and the asset is registered under it."""

from __future__ import annotations

from dataclasses import dataclass

from models.settings import Settings
from storage.base import space_key
from storage.s3 import prefixed_key

RECORDINGS = "recordings"


@dataclass(frozen=True)
class EgressTarget:
    store_key: str  # the key our store reads it by
    filepath: str  # what the egress is told to write (S3: the object key, with the store's prefix)


def egress_target(settings: Settings, space_id: str, call_id: str) -> EgressTarget:
    key = space_key(space_id, RECORDINGS, f"{call_id}.ogg")
    if settings.storage_backend == "s3":
        return EgressTarget(key, prefixed_key(settings.s3_key_prefix, key))
    return EgressTarget(key, key)  # local: relative to the store's folder, where a co-located egress writes
