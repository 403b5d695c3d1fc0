"""First-start set-up: the platform (admin) API key that lets an operator create spaces."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.credentials import generate_key
from models.db import create_engine, session_factory
from models.enums import Role
from models.settings import Settings
from models.tables import ApiKey

log = logging.getLogger(__name__)

BOOTSTRAP_KEY_NAME = "bootstrap admin"


def _new_platform_key(session: AsyncSession, name: str) -> str:
    new = generate_key()
    session.add(
        ApiKey(
            space_id=None,
            name=name,
            role=Role.OWNER,
            prefix=new.prefix,
            secret_hash=new.secret_hash,
            person_email=None,
        )
    )
    return new.plaintext


async def ensure_platform_key(settings: Settings) -> str | None:
    """Create an owner platform key when no live one exists and return its plaintext; else None.

    The schema must be migrated already.
    """
    engine = create_engine(settings.resolved_database_url)
    try:
        async with session_factory(engine)() as session:
            existing = await session.scalar(
                select(ApiKey.id).where(ApiKey.space_id.is_(None), ApiKey.revoked_at.is_(None)).limit(1)
            )
            if existing is not None:
                return None
            plaintext = _new_platform_key(session, BOOTSTRAP_KEY_NAME)
            await session.commit()
            log.info("created the bootstrap platform API key")
            return plaintext
    finally:
        await engine.dispose()


async def create_platform_key(settings: Settings, name: str) -> str:
    """A new owner platform key (whatever exists already); returns its plaintext. Schema must be migrated."""
    engine = create_engine(settings.resolved_database_url)
    try:
        async with session_factory(engine)() as session:
            plaintext = _new_platform_key(session, name)
            await session.commit()
            log.info("created a platform API key")
            return plaintext
    finally:
        await engine.dispose()
