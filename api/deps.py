"""FastAPI dependencies: per-request session, the authenticated principal, space access by role."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Request
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Principal, authenticate, authorize_space
from api.carrier_directory import CarrierDirectory
from api.errors import database_unavailable
from api.temporal import TemporalGateway
from models.enums import Role
from models.secret_box import SecretBox
from models.settings import Settings
from models.tables import Space

log = logging.getLogger(__name__)


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    session: AsyncSession = request.app.state.sessions()
    try:
        yield session
    finally:
        try:
            await session.close()
        except Exception as exc:  # the database went away after the answer was made: nothing left to undo
            if not database_unavailable(exc):
                raise
            log.warning("database session closed on a broken connection", extra={"path": request.url.path})


# The dependencies below only read the app's state, and are async so that FastAPI calls them in place: a plain
# `def` dependency runs on the thread pool, a round trip per dependency per request (13 % of the API's CPU under a
# webhook burst, bench.ingress).
async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _secret_box(request: Request) -> SecretBox:
    box: SecretBox = request.app.state.secret_box
    return box


async def _directory(request: Request) -> CarrierDirectory:
    directory: CarrierDirectory = request.app.state.directory
    return directory


async def _temporal(request: Request) -> TemporalGateway:
    gateway: TemporalGateway = request.app.state.temporal
    return gateway


# Every id we issue: a short table prefix, "_", 32 hex digits (models.tables.new_id). Anything else in a path is a
# 422 before any lookup; the pattern is checked whole (pydantic's regex engine: "$" is the end of the text).
RESOURCE_ID_PATTERN = r"^[a-z]{2,4}_[0-9a-f]{32}$"
ResourceId = Annotated[str, Path(min_length=35, max_length=37, pattern=RESOURCE_ID_PATTERN)]

SessionDep = Annotated[AsyncSession, Depends(_session)]
SettingsDep = Annotated[Settings, Depends(_settings)]
SecretBoxDep = Annotated[SecretBox, Depends(_secret_box)]
TemporalDep = Annotated[TemporalGateway, Depends(_temporal)]
DirectoryDep = Annotated[CarrierDirectory, Depends(_directory)]


async def _forgets_directory(request: Request, directory: DirectoryDep) -> AsyncIterator[None]:
    """A write to carrier accounts or numbers: the webhooks' cache forgets them before and after it."""
    writes = request.method not in ("GET", "HEAD", "OPTIONS")
    if writes:
        directory.forget()
    yield
    if writes:
        directory.forget()


ForgetsCarrierDirectory = Depends(_forgets_directory)


async def _principal(
    session: SessionDep,
    authorization: Annotated[str | None, Header(description="Bearer <api key>")] = None,
) -> Principal:
    return await authenticate(session, authorization)


PrincipalDep = Annotated[Principal, Depends(_principal)]


@dataclass(frozen=True)
class SpaceContext:
    space: Space
    principal: Principal

    @property
    def space_id(self) -> str:
        return self.space.id


def space_access(needed: Role) -> Callable[..., Coroutine[Any, Any, SpaceContext]]:
    async def dependency(session: SessionDep, principal: PrincipalDep, space_id: ResourceId) -> SpaceContext:
        space = await authorize_space(session, principal, space_id, needed)
        return SpaceContext(space=space, principal=principal)

    return dependency


Viewer = Annotated[SpaceContext, Depends(space_access(Role.VIEWER))]
Operator = Annotated[SpaceContext, Depends(space_access(Role.OPERATOR))]
Admin = Annotated[SpaceContext, Depends(space_access(Role.ADMIN))]
Owner = Annotated[SpaceContext, Depends(space_access(Role.OWNER))]
