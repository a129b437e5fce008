"""Records (issue 19): retention per project, legal holds, erasure with tombstones.

The rules live in SQL (sql/770_records_holds.sql, 780_records_retention.sql,
790_records_erasure.sql); these modules call them and turn their refusals into user errors.
See docs/operations.md ("Retention, legal hold and erasure")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg

from workers.db.errors import Make, wrap_db_errors
from workers.db.queries import query
from workers.errors import NotFound, UserError

Conn = psycopg.Connection[Any]
GROUP = "records"

class Held(UserError):
    """The data is under a legal hold."""


REFUSALS: dict[str, Make | None] = {"PT423": Held}
"""On top of the one table (workers/db/errors.py): a legal hold is its own refusal. A
deadlock or a bug propagates as it is."""


def rows(conn: Conn, name: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Run a named query of workers/queries/records.sql; refusals become user errors (the
    transaction is rolled back)."""
    with wrap_db_errors(REFUSALS, rollback=conn):
        cur = conn.execute(query(GROUP, name), params)
        return [dict(r) for r in cur.fetchall()] if cur.description else []


def one(conn: Conn, name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    got = rows(conn, name, params)
    if not got:
        raise NotFound(f"{name}: nothing found")
    return got[0]
