"""Database errors as secinf errors: one table of SQLSTATE → exception, used at the boundary.

A refusal our SQL raises on purpose (bad input, a missing object or right, a state that does
not allow it) is the caller's to fix and becomes a `UserError` (exit code 2) carrying the
server's message and hint. Anything else (a deadlock, a serialization failure, a lost
connection, a bug) is not translated: it propagates as the psycopg error it is, so workers
retry it and the CLI reports an internal failure (exit code 1).

    with wrap_db_errors(rollback=conn):
        conn.execute(...)

A subsystem with exceptions of its own layers them on top per call (`overrides`, keyed by
SQLSTATE or its prefix, like the table); an override of None leaves those errors as they are.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final, cast

import psycopg

from workers.errors import AuthError, NotFound, SecinfError, UserError


@dataclass(frozen=True)
class DbFailure:
    """What the server said: the SQLSTATE, its message, hint and detail."""

    sqlstate: str | None
    message: str
    hint: str | None = None
    detail: str | None = None
    retry_after: str | None = None
    """PostgREST's Retry-After of a SQLSTATE PGRST error (the rate limit's 429)."""
    context: str = ""
    """Words the boundary puts before the message ("ingest of x failed …: ")."""

    @property
    def text(self) -> str:
        """The message users see: context, the server's message and (its hint)."""
        hint = f" ({self.hint})" if self.hint else ""
        return f"{self.context}{self.message}{hint}"

    @classmethod
    def of(cls, exc: psycopg.Error, context: str = "") -> DbFailure:
        diag = exc.diag
        lines = str(exc).strip().splitlines()
        failure = cls(sqlstate=diag.sqlstate or exc.sqlstate,
                      message=diag.message_primary or (lines[0] if lines else type(exc).__name__),
                      hint=diag.message_hint, detail=diag.message_detail, context=context)
        return _pgrst(failure) if failure.sqlstate == "PGRST" else failure


def _pgrst(failure: DbFailure) -> DbFailure:
    """A SQLSTATE PGRST error (PostgREST's error with a status and headers) carries its body
    as JSON in the message and its status and headers in the detail: read them."""
    try:
        body = json.loads(failure.message)
        meta = json.loads(failure.detail or "{}")
    except ValueError:
        return failure
    if not isinstance(body, dict) or not isinstance(meta, dict):
        return failure
    retry = (meta.get("headers") or {}).get("Retry-After")
    hint = body.get("hint")
    return DbFailure(sqlstate=str(body.get("code") or "PGRST"),
                     message=str(body.get("message", "")), hint=str(hint) if hint else None,
                     detail=failure.detail, retry_after=None if retry is None else str(retry),
                     context=failure.context)


Make = type[SecinfError] | Callable[[DbFailure], BaseException]
"""An exception class (built from the failure's text) or a function of the failure."""

SQLSTATES: Final[Mapping[str, type[SecinfError]]] = {
    # Refusals our functions raise (RAISE … USING ERRCODE), the caller's to fix.
    "P0001": UserError,   # raise_exception: a RAISE EXCEPTION without its own code
    "P0002": NotFound,    # no_data_found: no such project, job, model, …
    "P0003": UserError,   # too_many_rows: an ambiguous name
    "42501": UserError,   # insufficient_privilege: this role may not
    "55000": UserError,   # object_not_in_prerequisite_state: not in a state that allows it
    "28000": AuthError,   # invalid_authorization_specification
    "28P01": AuthError,   # invalid_password
    "PT401": AuthError,   # PostgREST's 401: no valid token
    "PT": UserError,      # PostgREST-style HTTP refusals (PT402 quota, PT409, PT423, …)
    # Classes of SQLSTATE that the input causes.
    "22": UserError,      # data exceptions: a bad value (22023 invalid_parameter_value, …)
    "23": UserError,      # integrity constraint violations: a duplicate, a failed check
}
"""SQLSTATE (or its class prefix) → exception; the longest matching key wins. Unlisted
states (40P01 deadlock, 40001 serialization, XX000 internal, connection errors) are not the
user's: they propagate."""


def _lookup(table: Mapping[str, Make | None], state: str) -> tuple[bool, Make | None]:
    """(found, the entry of the longest key that `state` starts with)."""
    for n in range(len(state), -1, -1):
        if state[:n] in table:
            return True, table[state[:n]]
    return False, None


def translate(exc: psycopg.Error, overrides: Mapping[str, Make | None] | None = None, *,
              context: str = "", fallback: Callable[[DbFailure], BaseException] | None = None
              ) -> BaseException:
    """The exception a database error stands for: from `overrides`, then the table; else
    `fallback(failure)`, or `exc` itself (returned unchanged: the caller re-raises it)."""
    failure = DbFailure.of(exc, context)
    make: Make | None = None
    state = failure.sqlstate
    if state is not None:
        found, make = _lookup(overrides or {}, state)
        if found and make is None:
            return exc
        if not found:
            make = _lookup(SQLSTATES, state)[1]
    if make is None:
        return fallback(failure) if fallback is not None else exc
    if isinstance(make, type):
        return cast(type[SecinfError], make)(failure.text)
    return make(failure)


@contextmanager
def wrap_db_errors(overrides: Mapping[str, Make | None] | None = None, *, context: str = "",
                   fallback: Callable[[DbFailure], BaseException] | None = None,
                   rollback: psycopg.Connection[Any] | None = None) -> Iterator[None]:
    """Translate the database errors of the block (`raise … from exc`); others propagate
    unchanged. With `rollback`, that connection's failed transaction is rolled back first."""
    try:
        yield
    except psycopg.Error as exc:
        if rollback is not None and not rollback.closed:
            rollback.rollback()
        err = translate(exc, overrides, context=context, fallback=fallback)
        if err is exc:
            raise
        raise err from exc


__all__ = ["SQLSTATES", "DbFailure", "Make", "translate", "wrap_db_errors"]
