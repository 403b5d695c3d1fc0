"""One error model for the whole API: every non-2xx answer is an ``ErrorBody``, whatever raised it, and the OpenAPI
documents each operation's error answers with that schema."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from asyncpg import exceptions as asyncpg_exc
from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models.schemas.errors import ErrorBody, FieldError

log = logging.getLogger(__name__)

DESCRIPTIONS = {
    400: "Malformed request (the reason says which part)",
    401: "Missing or invalid credentials or signature",
    403: "Authenticated, but not allowed (role too low, or a forged carrier signature)",
    404: "No such resource in this space (another space's resources answer the same)",
    409: "Conflicts with the current state or an existing resource",
    410: "The resource was deleted",
    413: "Request body larger than this route accepts",
    415: "Content type this route does not accept",
    422: "Invalid field values; `errors` names each one",
    502: "The carrier or LiveKit refused or failed",
    503: "A dependency (the database, the workflow engine, a call's workflow) is unavailable: retry shortly",
}
RETRY_AFTER_SECONDS = "2"


def database_unavailable(exc: BaseException) -> bool:
    """The database cannot be reached or failed on its side (stopped, restarting, a connection dropped mid-query or
    while connecting, locked, pool exhausted, a session left unusable by such a drop): a retry may work. A statement
    it refused as wrong (data, programming, integrity errors) is ours to fix, not to retry. The cause chain is
    followed because drivers and pools wrap the socket error they met."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, BaseExceptionGroup):
            return all(database_unavailable(inner) for inner in current.exceptions)
        if isinstance(current, _REFUSED_STATEMENTS):
            return False
        if isinstance(current, _UNAVAILABLE):
            return True
        current = current.__cause__ or current.__context__
    return False


_REFUSED_STATEMENTS = (sa_exc.IntegrityError, sa_exc.DataError, sa_exc.ProgrammingError, sa_exc.NotSupportedError)
_UNAVAILABLE = (
    sa_exc.DBAPIError,
    sa_exc.TimeoutError,
    sa_exc.DisconnectionError,
    sa_exc.PendingRollbackError,  # the session's connection broke in an earlier statement of this request
    ConnectionError,
    TimeoutError,
    asyncpg_exc.PostgresConnectionError,
    asyncpg_exc.InterfaceError,
    asyncpg_exc.OperatorInterventionError,  # shutting down, starting up, crashed
)


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` documenting these error answers with the common schema."""
    return {code: {"model": ErrorBody, "description": DESCRIPTIONS[code]} for code in codes}


def error_json(status_code: int, detail: str, errors: Sequence[FieldError] = (), **kwargs: Any) -> JSONResponse:
    body = ErrorBody(detail=detail, errors=list(errors))
    return JSONResponse(body.model_dump(mode="json"), status_code=status_code, **kwargs)


def _field_errors(raw: Sequence[Any]) -> list[FieldError]:
    fields = []
    for error in raw:
        loc = [part if isinstance(part, int) else str(part) for part in error.get("loc", ())]
        fields.append(
            FieldError(loc=loc, msg=str(error.get("msg", "invalid")), type=str(error.get("type", "value_error")))
        )
    return fields


def _summary(fields: Sequence[FieldError]) -> str:
    shown = "; ".join(f"{'.'.join(str(p) for p in f.loc)}: {f.msg}" for f in fields[:3])
    more = f" (and {len(fields) - 3} more)" if len(fields) > 3 else ""
    return f"invalid request: {shown}{more}" if shown else "invalid request"


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else str(jsonable_encoder(exc.detail))
    return error_json(exc.status_code, detail, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = _field_errors(exc.errors())
    return error_json(status.HTTP_422_UNPROCESSABLE_CONTENT, _summary(fields), fields)


async def _integrity_error(request: Request, exc: Exception) -> JSONResponse:
    log.info("request conflicted with a database constraint", extra={"path": request.url.path})
    return error_json(status.HTTP_409_CONFLICT, "conflicts with an existing resource or a reference to it")


def _unavailable_json() -> JSONResponse:
    return error_json(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        "the database is unavailable, retry shortly",
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


class UnhandledErrors:
    """Any exception no handler claimed becomes a 500 ``ErrorBody``. The log names the route and the exception type
    and where it was raised, never its message or values (they may hold phone numbers or transcripts)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except StarletteHTTPException as exc:  # raised outside the routes' handlers (e.g. while a body streams in)
            if started:
                raise
            response = error_json(exc.status_code, str(exc.detail), headers=exc.headers)
            await response(scope, receive, send)
        except Exception as exc:
            if database_unavailable(exc) and not started:  # carriers retry a 503: nothing is lost
                log.warning("request refused: database unavailable", extra={"path": scope.get("path")})
                await _unavailable_json()(scope, receive, send)
                return
            frames = traceback.extract_tb(exc.__traceback__)
            log.error(
                "request failed with an unhandled error",
                extra={
                    "path": scope.get("path"),
                    "method": scope.get("method"),
                    "error_type": type(exc).__qualname__,
                    "raised_at": [f"{f.filename}:{f.lineno} in {f.name}" for f in frames[-5:]],
                },
            )
            if started:
                raise
            response = error_json(status.HTTP_500_INTERNAL_SERVER_ERROR, "internal error: it has been logged")
            await response(scope, receive, send)


def _openapi_with_one_error_schema(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """FastAPI documents 422 with its own ``HTTPValidationError`` wherever a route has parameters and names no 422:
    point those at ``ErrorBody`` too, the shape the handlers above really answer with."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            ours = "#/components/schemas/ErrorBody"
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    answer = operation.get("responses", {}).get("422")
                    if answer is not None:
                        answer["description"] = DESCRIPTIONS[422]
                        answer["content"] = {"application/json": {"schema": {"$ref": ours}}}
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.setdefault("ErrorBody", ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}"))
            for name, definition in (
                ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}").get("$defs", {}).items()
            ):
                components.setdefault(name, definition)
            components["ErrorBody"].pop("$defs", None)
            components.pop("HTTPValidationError", None)
            components.pop("ValidationError", None)
            app.openapi_schema = schema
        return app.openapi_schema

    return openapi


def install_error_model(app: FastAPI) -> None:
    app.openapi = _openapi_with_one_error_schema(app)  # type: ignore[method-assign]
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_middleware(UnhandledErrors)
