"""A folder on disk as blob store (the embedded default), with HMAC-signed, expiring download URLs.

The URLs point at the API's ``/v1/blobs/{key}`` route (api/routes/recordings.py), which checks the signature
with :meth:`LocalStore.verify_signature` before serving the file.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, urlencode

from storage.base import CHUNK, BlobInfo, BlobNotFoundError, ByteRange, StoredBlob

BLOB_ROUTE = "/v1/blobs"


class UrlSignatureError(Exception):
    pass


class LocalStore:
    def __init__(self, root: Path, signing_key: bytes, public_url: str) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._key = signing_key
        self._public_url = public_url.rstrip("/")

    @staticmethod
    def signing_key_from(value: str | None, data_dir: Path) -> bytes:
        """The setting's key, or one generated once into ``data_dir/storage-signing.key``."""
        if value:
            return value.encode()
        key_file = data_dir / "storage-signing.key"
        if not key_file.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            key_file.write_text(secrets.token_hex(32))
            key_file.chmod(0o600)
        return key_file.read_text().strip().encode()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise ValueError("storage key escapes the store")
        return path

    def put_file(self, key: str, path: Path, content_type: str) -> StoredBlob:
        with path.open("rb") as f:
            return self.put_stream(key, f, content_type)

    def put_stream(self, key: str, stream: BinaryIO, content_type: str) -> StoredBlob:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        # Written aside then renamed: a reader never sees half a blob, a crash leaves no partial one.
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            target.with_name(target.name + ".type").write_text(content_type)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return StoredBlob(key=key, size=size, sha256=digest.hexdigest())

    def stat(self, key: str) -> BlobInfo:
        path = self._path(key)
        if not path.is_file():
            raise BlobNotFoundError(key)
        type_file = path.with_name(path.name + ".type")
        content_type = type_file.read_text() if type_file.exists() else None
        return BlobInfo(key=key, size=path.stat().st_size, content_type=content_type)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def read_range(self, key: str, byte_range: ByteRange | None = None) -> Iterator[bytes]:
        path = self._path(key)
        try:
            f = path.open("rb")
        except FileNotFoundError as exc:
            raise BlobNotFoundError(key) from exc
        return self._chunks(f, byte_range)

    @staticmethod
    def _chunks(f: BinaryIO, byte_range: ByteRange | None) -> Iterator[bytes]:
        with f:
            remaining = -1
            if byte_range is not None:
                f.seek(byte_range.start)
                remaining = byte_range.length
            while remaining != 0:
                chunk = f.read(CHUNK if remaining < 0 else min(CHUNK, remaining))
                if not chunk:
                    return
                if remaining > 0:
                    remaining -= len(chunk)
                yield chunk

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        path.with_name(path.name + ".type").unlink(missing_ok=True)

    def _signature(self, key: str, expires: int, filename: str) -> str:
        message = f"{key}\n{expires}\n{filename}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def download_url(self, key: str, *, expires_in: int, filename: str | None = None) -> str:
        expires = int(time.time()) + expires_in
        name = filename or ""
        query = {"expires": str(expires), "filename": name, "signature": self._signature(key, expires, name)}
        return f"{self._public_url}{BLOB_ROUTE}/{quote(key)}?{urlencode(query)}"

    def verify_signature(self, key: str, expires: int, filename: str, signature: str) -> None:
        """Raises :class:`UrlSignatureError` for an altered or expired URL."""
        if not hmac.compare_digest(self._signature(key, expires, filename), signature):
            raise UrlSignatureError("signature does not match")
        if expires < time.time():
            raise UrlSignatureError("URL expired")
