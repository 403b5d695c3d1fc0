"""Migrations build the schema the tables describe, from empty, and take it down again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import inspect

from models.db import create_engine, downgrade, migrate
from models.tables import Base
from tests.conftest import new_database_url
from tests.support.postgres import PostgresServer


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    await engine.dispose()
    return names


async def _columns(url: str, table: str) -> set[str]:
    engine = create_engine(url)
    async with engine.connect() as conn:
        cols = await conn.run_sync(lambda sync: {c["name"] for c in inspect(sync).get_columns(table)})
    await engine.dispose()
    return cols


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_upgrade_from_empty_then_downgrade(
    backend: str, tmp_path: Path, postgres_server: PostgresServer | None
) -> None:
    url = new_database_url(backend, tmp_path, postgres_server)
    await asyncio.to_thread(migrate, url)
    expected = set(Base.metadata.tables)
    assert expected <= await _tables(url)
    for name, table in Base.metadata.tables.items():
        assert {c.name for c in table.columns} == await _columns(url, name), name
    await asyncio.to_thread(migrate, url)  # idempotent at head
    await asyncio.to_thread(downgrade, url, "base")
    assert (await _tables(url)) - {"alembic_version"} == set()
    await asyncio.to_thread(migrate, url)
    assert expected <= await _tables(url)
