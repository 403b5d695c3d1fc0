"""Which failures answer 503 (the database is down or broke the connection: the carrier's retry will work) and which
stay 500 or 409 (a statement that is wrong stays wrong): drivers and pools wrap the socket error they met."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc

from api.errors import database_unavailable


def _wrapped(outer: Exception, inner: BaseException) -> Exception:
    try:
        try:
            raise inner
        except BaseException as cause:
            raise outer from cause
    except Exception as raised:
        return raised


@pytest.mark.parametrize(
    "failure",
    [
        ConnectionRefusedError(111, "Connect call failed"),
        ConnectionResetError(),
        BrokenPipeError(),
        TimeoutError(),
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        sa_exc.OperationalError("SELECT 1", {}, ConnectionResetError()),
        sa_exc.PendingRollbackError("can't reconnect until invalid transaction is rolled back"),
        _wrapped(RuntimeError("while routing"), ConnectionResetError()),
        ExceptionGroup("task group", [ConnectionResetError(), TimeoutError()]),
    ],
    ids=lambda failure: type(failure).__name__,
)
def test_a_database_that_is_down_or_dropped_the_connection_is_unavailable(failure: BaseException) -> None:
    assert database_unavailable(failure)


@pytest.mark.parametrize(
    "failure",
    [
        ValueError("bad"),
        KeyError("x"),
        sa_exc.IntegrityError("INSERT", {}, Exception("duplicate key")),
        sa_exc.ProgrammingError("SELEC", {}, Exception("syntax error")),
        _wrapped(sa_exc.DataError("INSERT", {}, Exception("too long")), ConnectionResetError()),
        ExceptionGroup("task group", [ConnectionResetError(), ValueError("bad")]),
    ],
    ids=lambda failure: type(failure).__name__,
)
def test_a_wrong_statement_or_our_own_bug_is_not(failure: BaseException) -> None:
    assert not database_unavailable(failure)
