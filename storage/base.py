"""The interface every blob store implements, and the helpers they share.

The interface is synchronous (boto3 and file I/O are): async callers run it with ``asyncio.to_thread``.
Keys are ``spaces/<space id>/<kind>/<name>``: one prefix per space, so a space's blobs can be listed,
exported or purged together, and an S3 bucket policy can be scoped to it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

CHUNK = 1024 * 1024
_SAFE_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


class BlobNotFoundError(Exception):
    pass


@dataclass(frozen=True)
class StoredBlob:
    key: str
    size: int
    sha256: str  # hex


@dataclass(frozen=True)
class BlobInfo:
    key: str
    size: int
    content_type: str | None


@dataclass(frozen=True)
class ByteRange:
    """Inclusive byte positions, as in HTTP ``Range``/``Content-Range``."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def space_key(space_id: str, kind: str, name: str) -> str:
    """The key of a space's blob; every part must be a plain name (no slashes, no dot segments)."""
    for part in (space_id, kind, name):
        if not _SAFE_PART.match(part) or part in (".", ".."):
            raise ValueError("storage key parts must be plain names")
    return f"spaces/{space_id}/{kind}/{name}"


def file_digest(path: Path) -> StoredBlob:
    """Size and sha256 of a local file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return StoredBlob(key="", size=size, sha256=digest.hexdigest())


class BlobStore(Protocol):
    """Where assets' bytes live. ``put_*`` overwrite; ``delete`` of a missing key is not an error."""

    def put_file(self, key: str, path: Path, content_type: str) -> StoredBlob: ...

    def put_stream(self, key: str, stream: BinaryIO, content_type: str) -> StoredBlob: ...

    def stat(self, key: str) -> BlobInfo:
        """Raises :class:`BlobNotFoundError`."""
        ...

    def exists(self, key: str) -> bool: ...

    def read_range(self, key: str, byte_range: ByteRange | None = None) -> Iterator[bytes]:
        """The blob's bytes (or one inclusive range of them) in chunks; raises :class:`BlobNotFoundError`."""
        ...

    def delete(self, key: str) -> None: ...

    def download_url(self, key: str, *, expires_in: int, filename: str | None = None) -> str:
        """A URL anyone holding it may GET for ``expires_in`` seconds (signed, so it cannot be altered)."""
        ...
