"""Blob storage for space assets: one small interface, a folder on disk or any S3-compatible service."""

from storage.base import BlobInfo, BlobNotFoundError, BlobStore, ByteRange, StoredBlob, space_key
from storage.factory import build_store
from storage.local import LocalStore, UrlSignatureError
from storage.s3 import S3Store

__all__ = [
    "BlobInfo",
    "BlobNotFoundError",
    "BlobStore",
    "ByteRange",
    "LocalStore",
    "S3Store",
    "StoredBlob",
    "UrlSignatureError",
    "build_store",
    "space_key",
]
