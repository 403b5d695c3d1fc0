"""The same cases against the local folder and a real S3 server (SeaweedFS)."""

from __future__ import annotations

import base64
import hashlib
import io
import time
from pathlib import Path

import httpx
import pytest
from botocore.exceptions import ClientError

from storage import BlobNotFoundError, BlobStore, ByteRange, LocalStore, S3Store, UrlSignatureError, space_key

PAYLOAD = bytes(range(256)) * 5000  # 1.28 MB: more than one read chunk


def test_put_file_reports_size_and_sha256_and_reads_back(store: BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "rec.wav"
    source.write_bytes(PAYLOAD)
    key = space_key("sp_a", "recordings", "call_1.wav")
    stored = store.put_file(key, source, "audio/wav")
    assert (stored.key, stored.size, stored.sha256) == (key, len(PAYLOAD), hashlib.sha256(PAYLOAD).hexdigest())
    assert store.exists(key)
    info = store.stat(key)
    assert (info.size, info.content_type) == (len(PAYLOAD), "audio/wav")
    assert b"".join(store.read_range(key)) == PAYLOAD


def test_put_stream_and_byte_ranges(store: BlobStore) -> None:
    key = space_key("sp_a", "recordings", "call_2.wav")
    stored = store.put_stream(key, io.BytesIO(PAYLOAD), "audio/wav")
    assert stored.sha256 == hashlib.sha256(PAYLOAD).hexdigest()
    assert b"".join(store.read_range(key, ByteRange(0, 0))) == PAYLOAD[:1]
    assert b"".join(store.read_range(key, ByteRange(1000, 1_100_000))) == PAYLOAD[1000:1_100_001]
    last = len(PAYLOAD) - 1
    assert b"".join(store.read_range(key, ByteRange(last - 9, last))) == PAYLOAD[-10:]


def test_overwrite_delete_and_missing(store: BlobStore) -> None:
    key = space_key("sp_b", "recordings", "x.wav")
    store.put_stream(key, io.BytesIO(b"first"), "audio/wav")
    store.put_stream(key, io.BytesIO(b"second"), "audio/wav")
    assert b"".join(store.read_range(key)) == b"second"
    store.delete(key)
    store.delete(key)  # deleting twice is one effect
    assert not store.exists(key)
    with pytest.raises(BlobNotFoundError):
        store.stat(key)
    with pytest.raises(BlobNotFoundError):
        b"".join(store.read_range(key))


def test_keys_are_plain_names_under_the_space() -> None:
    assert space_key("sp_1", "recordings", "c.wav") == "spaces/sp_1/recordings/c.wav"
    for bad in ("../x", "a/b", "..", ""):
        with pytest.raises(ValueError):
            space_key("sp_1", "recordings", bad)


def _serve(url: str) -> httpx.Response:
    return httpx.get(url, timeout=10)


def test_s3_presigned_url_works_and_tampering_is_refused(s3_store: S3Store) -> None:
    """(Local URLs are served by the API: tests/api/test_recordings.py.)"""
    store = s3_store
    key = space_key("sp_c", "recordings", "y.wav")
    store.put_stream(key, io.BytesIO(PAYLOAD), "audio/wav")
    url = store.download_url(key, expires_in=60, filename="call.wav")
    ok = _serve(url)
    assert ok.status_code == 200 and ok.content == PAYLOAD
    other = space_key("sp_d", "recordings", "y.wav")
    store.put_stream(other, io.BytesIO(b"other space"), "audio/wav")
    assert _serve(url.replace("sp_c", "sp_d")).status_code == 403
    expired = store.download_url(key, expires_in=1)
    time.sleep(2.1)
    assert _serve(expired).status_code == 403


def test_s3_refuses_a_body_that_does_not_match_its_checksum(s3_store: S3Store) -> None:
    store = s3_store

    wrong = base64.b64encode(hashlib.sha256(b"something else").digest()).decode()
    with pytest.raises(ClientError):
        store._client.put_object(
            Bucket=store.bucket, Key="spaces/sp_e/recordings/z.wav", Body=b"payload", ChecksumSHA256=wrong
        )
    assert not store.exists("spaces/sp_e/recordings/z.wav")


def test_local_signature_checks(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s", b"k" * 32, "http://127.0.0.1:8000")
    url = httpx.URL(store.download_url("spaces/sp/recordings/a.wav", expires_in=60, filename="a.wav"))
    expires, name, sig = (url.params[k] for k in ("expires", "filename", "signature"))
    store.verify_signature("spaces/sp/recordings/a.wav", int(expires), name, sig)
    with pytest.raises(UrlSignatureError):
        store.verify_signature("spaces/sp/recordings/b.wav", int(expires), name, sig)
    with pytest.raises(UrlSignatureError):
        store.verify_signature("spaces/sp/recordings/a.wav", int(expires) + 1, name, sig)
    stale = httpx.URL(store.download_url("spaces/sp/recordings/a.wav", expires_in=-1))
    with pytest.raises(UrlSignatureError):
        store.verify_signature(
            "spaces/sp/recordings/a.wav", int(stale.params["expires"]), "", stale.params["signature"]
        )
    with pytest.raises(ValueError):
        store.exists("../../etc/passwd")
