"""A throwaway PostgreSQL server for the test session (Debian's binaries, started on loopback)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


def find_pg_bin() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    bin_dir: Path
    root: Path
    port: int

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def _run(self, args: list[str]) -> None:
        if os.geteuid() == 0:
            # initdb refuses to run as root.
            args = ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(args)]
        subprocess.run(args, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(
            [str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-A", "trust", "-U", "postgres", "--no-sync"]
        )
        self.resume()

    def pause(self) -> None:
        """Stop the server (fast shutdown: open connections are dropped) and keep its data for ``resume``."""
        self._run([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"])

    def resume(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        self._run(
            [
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-o",
                f"'{options}'",
                "-w",
                "-l",
                str(self.root / "log"),
                "start",
            ]
        )

    def stop(self) -> None:
        try:
            self._run([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "stop"])
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def create_database(self, name: str) -> str:
        deadline = time.monotonic() + 10
        while True:
            result = subprocess.run(
                [
                    str(self.bin_dir / "psql"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-U",
                    "postgres",
                    "-c",
                    f"CREATE DATABASE {name}",
                ],
                capture_output=True,
                text=True,
                timeout=30,
            )
            if result.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        result.check_returncode()
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{name}"


def start_postgres() -> PostgresServer | None:
    bin_dir = find_pg_bin()
    if bin_dir is None:
        return None
    server = PostgresServer(bin_dir, Path(tempfile.mkdtemp(prefix="telephony-pg-")), free_port())
    server.start()
    return server
