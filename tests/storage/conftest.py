from __future__ import annotations

from pathlib import Path

import pytest

from storage import BlobStore, S3Store
from tests.support.s3 import S3Server
from tests.support.stores import BACKENDS, build_test_store, store_settings


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    s3: S3Server | None = request.getfixturevalue("s3_server") if request.param == "s3" else None
    return build_test_store(store_settings(request.param, tmp_path, s3))


@pytest.fixture
def s3_store(s3_server: S3Server, tmp_path: Path) -> S3Store:
    store = build_test_store(store_settings("s3", tmp_path, s3_server))
    assert isinstance(store, S3Store)
    return store
