"""Any S3-compatible service as blob store (boto3): one bucket, keys under a per-space prefix.

Uploads carry the sha256 we computed (``ChecksumSHA256``): the server recomputes it and refuses a body that
differs, so what is stored is what was recorded. Downloads are presigned GETs.
"""

from __future__ import annotations

import base64
import hashlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from storage.base import CHUNK, BlobInfo, BlobNotFoundError, ByteRange, StoredBlob, file_digest

_MISSING = {"404", "NoSuchKey", "NotFound"}


def prefixed_key(key_prefix: str | None, key: str) -> str:
    """The object key of a store key in the bucket: under the configured prefix, if any."""
    prefix = (key_prefix or "").strip("/")
    return f"{prefix}/{key}" if prefix else key


class S3Store:
    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None,
        access_key_id: str | None,
        secret_access_key: str | None,
        region: str,
        key_prefix: str = "",
    ) -> None:
        self.bucket = bucket
        self._prefix = key_prefix
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            region_name=region,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        )

    def _key(self, key: str) -> str:
        return prefixed_key(self._prefix, key)

    def ensure_bucket(self) -> None:
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self._client.create_bucket(Bucket=self.bucket)

    def put_file(self, key: str, path: Path, content_type: str) -> StoredBlob:
        digest = file_digest(path)
        with path.open("rb") as body:
            self._client.put_object(
                Bucket=self.bucket,
                Key=self._key(key),
                Body=body,
                ContentType=content_type,
                ChecksumSHA256=base64.b64encode(bytes.fromhex(digest.sha256)).decode(),
            )
        return StoredBlob(key=key, size=digest.size, sha256=digest.sha256)

    def put_stream(self, key: str, stream: BinaryIO, content_type: str) -> StoredBlob:
        # Spooled so the checksum is known before the upload starts (and the body can be re-sent on retry).
        with tempfile.SpooledTemporaryFile(max_size=16 * CHUNK) as spool:
            digest = hashlib.sha256()
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
                spool.write(chunk)
            size = spool.tell()
            spool.seek(0)
            self._client.put_object(
                Bucket=self.bucket,
                Key=self._key(key),
                Body=spool,
                ContentLength=size,
                ContentType=content_type,
                ChecksumSHA256=base64.b64encode(digest.digest()).decode(),
            )
        return StoredBlob(key=key, size=size, sha256=digest.hexdigest())

    def stat(self, key: str) -> BlobInfo:
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                raise BlobNotFoundError(key) from exc
            raise
        return BlobInfo(key=key, size=int(head["ContentLength"]), content_type=head.get("ContentType"))

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except BlobNotFoundError:
            return False
        return True

    def read_range(self, key: str, byte_range: ByteRange | None = None) -> Iterator[bytes]:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if byte_range is not None:
            kwargs["Range"] = f"bytes={byte_range.start}-{byte_range.end}"
        try:
            body = self._client.get_object(**kwargs)["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                raise BlobNotFoundError(key) from exc
            raise
        return self._chunks(body)

    @staticmethod
    def _chunks(body: Any) -> Iterator[bytes]:
        try:
            yield from body.iter_chunks(CHUNK)
        finally:
            body.close()

    def delete(self, key: str) -> None:
        self._client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def download_url(self, key: str, *, expires_in: int, filename: str | None = None) -> str:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if filename:
            params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
        url: str = self._client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)
        return url
