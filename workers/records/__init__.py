"""Records (issue 19): retention per project, legal holds, erasure with tombstones.

The rules live in SQL (sql/770_records_holds.sql, 780_records_retention.sql,
790_records_erasure.sql); these modules call them and turn their refusals into user errors.
See docs/operations.md ("Retention, legal hold and erasure")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg

from workers.db.queries import query
from workers.errors import NotFound, UserError

Conn = psycopg.Connection[Any]
GROUP = "records"

USER_STATES = ("22", "23", "42501", "P0002", "PT4", "55000")
"""SQLSTATEs (or their prefixes) that are the caller's to fix: bad input, a missing object,
a missing right, a legal hold (PT423) or a state that does not allow it. Anything else (a
deadlock, a bug) propagates as it is."""


class Held(UserError):
    """The data is under a legal hold."""


def translate(exc: psycopg.Error) -> Exception:
    """The user error a records function's refusal stands for, or the error itself."""
    diag = exc.diag
    state = diag.sqlstate or ""
    if not state.startswith(USER_STATES):
        return exc
    msg = diag.message_primary or str(exc).strip()
    if diag.message_hint:
        msg += f" ({diag.message_hint})"
    if state == "P0002":
        return NotFound(msg)
    if state == "PT423":
        return Held(msg)
    return UserError(msg)


def rows(conn: Conn, name: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Run a named query of workers/queries/records.sql; refusals become user errors (the
    transaction is rolled back)."""
    try:
        cur = conn.execute(query(GROUP, name), params)
        return [dict(r) for r in cur.fetchall()] if cur.description else []
    except psycopg.Error as exc:
        conn.rollback()
        err = translate(exc)
        if err is exc:
            raise
        raise err from exc


def one(conn: Conn, name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    got = rows(conn, name, params)
    if not got:
        raise NotFound(f"{name}: nothing found")
    return got[0]
