"""Engine, sessions and schema migrations. Built from settings at start-up, never at import."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
T = TypeVar("T")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


class _SqliteWriter:
    """One thread with its own (synchronous) connection that runs a process's hot write transactions in turn."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = create_sync_engine(engine.url.set(drivername="sqlite"))
        event.listen(self.engine, "connect", _sqlite_pragmas)
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")

    def run(self, transaction: Callable[[Session], T]) -> T:
        with Session(self.engine, expire_on_commit=False) as session:
            return transaction(session)


_writers: WeakKeyDictionary[Engine, _SqliteWriter] = WeakKeyDictionary()


async def write(sessions: async_sessionmaker[AsyncSession], transaction: Callable[[Session], T]) -> T:
    """Run ``transaction`` (which commits) with a session of its own and answer what it returns.

    On a SQLite file it runs whole on the process's writer thread, one transaction after another: the asyncio
    session makes a round trip through the event loop per statement, and under ten concurrent call set-ups (a loop
    busy with workflow activations) writers held SQLite's lock across those round trips while the others polled it
    in the busy handler: one ``open_call`` waited 4.8 s (p99 2.8 s, bench.call_setup). On PostgreSQL (row locks) it
    runs in an ordinary session."""
    engine = sessions.kw.get("bind")
    if (
        isinstance(engine, AsyncEngine)
        and engine.dialect.name == "sqlite"
        and engine.url.database not in (None, "", ":memory:")
    ):
        writer = _writers.get(engine.sync_engine)
        if writer is None:
            writer = _writers[engine.sync_engine] = _SqliteWriter(engine)
        return await asyncio.get_running_loop().run_in_executor(writer.thread, writer.run, transaction)
    async with sessions() as session:
        return await session.run_sync(transaction)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = url
    return config


def migrate(url: str, revision: str = "head") -> None:
    """Upgrade the schema to ``revision`` (blocking; call from a thread inside an event loop)."""
    if url.startswith("sqlite"):
        db_path = url.split("///", 1)[-1]
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)
