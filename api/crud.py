"""Helpers every resource route uses: space-scoped lookups, partial updates, conflict checks."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import HTTPException, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, SecretStr, ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import not_found
from models.secret_box import SecretBox

M = TypeVar("M")
S = TypeVar("S", bound=BaseModel)


async def get_in_space(session: AsyncSession, model: type[M], space_id: str, row_id: str, what: str) -> M:
    """The row if it exists in this space; 404 alike for a missing row and another space's row."""
    row = await session.get(model, row_id)
    if row is None or row.space_id != space_id:  # type: ignore[attr-defined]
        raise not_found(what)
    return row


async def ensure_unused(session: AsyncSession, column: Any, value: str, what: str) -> None:
    count = await session.scalar(select(func.count()).where(column == value))
    if count:
        raise HTTPException(status.HTTP_409_CONFLICT, f"{what} is still in use: remove its references first")


def revalidate(schema: type[S], merged: dict[str, Any]) -> S:
    """Validate the resource as it would be after a PATCH, so cross-field rules hold for updates too."""
    try:
        return schema.model_validate(merged)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False, include_context=False)) from exc


def apply(row: Any, values: dict[str, Any]) -> None:
    for name, value in values.items():
        setattr(row, name, value)


UNCHANGED_SECRET = "\x00unchanged-secret\x00"
"""Stands for a stored secret while a PATCH is revalidated: the plaintext is never decrypted for it."""


def encrypt_or_keep(box: SecretBox, secret: SecretStr | None, stored: str | None) -> str | None:
    plaintext = secret.get_secret_value() if secret else None
    if plaintext == UNCHANGED_SECRET:
        return stored
    return box.encrypt(plaintext) if plaintext else None
