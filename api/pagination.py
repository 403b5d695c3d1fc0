"""Keyset pagination over (created_at, id), with an opaque cursor."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from typing import Any, TypeVar

from fastapi import HTTPException, Query, status
from sqlalchemy import Select, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")

LimitQuery = Query(default=50, ge=1, le=200, description="Page size")
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
_ROW_ID = re.compile(r"[a-z]{2,4}_[0-9a-f]{32}")

CursorQuery = Query(default=None, max_length=200, description="`next_cursor` of the previous page")


def _encode(created_at: datetime, row_id: str) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{row_id}".encode()).decode()


def _invalid_cursor() -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "cursor: not a cursor from this API")


def _decode(cursor: str) -> tuple[datetime, str]:
    """A cursor this API issued: an aware UTC timestamp in a sane range and one of our ids. Anything else (a naive
    time, year 1, an offset that overflows, a forged id) is a 422, never a database error."""
    try:
        created, row_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        created_at = datetime.fromisoformat(created)
        if created_at.tzinfo is None:
            raise _invalid_cursor()
        created_at = created_at.astimezone(UTC)
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError) as exc:
        raise _invalid_cursor() from exc
    if not (EARLIEST <= created_at <= LATEST) or not _ROW_ID.fullmatch(row_id):
        raise _invalid_cursor()
    return created_at, row_id


async def paginate(
    session: AsyncSession, stmt: Select[Any], model: type[T], limit: int, cursor: str | None
) -> tuple[list[T], str | None]:
    created_col: Any = model.created_at  # type: ignore[attr-defined]
    id_col: Any = model.id  # type: ignore[attr-defined]
    if cursor:
        created_at, row_id = _decode(cursor)
        stmt = stmt.where(or_(created_col > created_at, and_(created_col == created_at, id_col > row_id)))
    rows: list[T] = list((await session.scalars(stmt.order_by(created_col, id_col).limit(limit + 1))).all())
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    return rows, _encode(last.created_at, last.id)  # type: ignore[attr-defined]
