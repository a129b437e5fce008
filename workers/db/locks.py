"""Session advisory locks as context managers.

A session lock outlives the transactions inside it, so work under it may commit step by
step (`with conn.transaction():` blocks); it is released when the block ends, however it
ends. Keys are text (`secinf.datasets:<project>:<name>`), hashed in the database
(workers/queries/locks.sql).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import pq
from psycopg.rows import tuple_row

from workers.db.queries import query
from workers.errors import UserError


class LockBusy(UserError):
    """Another session holds the lock: wait for it and try again."""


@contextmanager
def advisory_lock(conn: psycopg.Connection[Any], key: str, busy: str | None = None
                  ) -> Iterator[None]:
    """Hold the session advisory lock on `key` for the block; LockBusy (with the message
    `busy`) at once when another session holds it. The connection must be idle (no open
    transaction): the lock is taken and released in transactions of their own, after the
    block's failed transaction, if any, is rolled back."""
    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        raise psycopg.ProgrammingError(f"advisory_lock({key!r}) needs an idle connection: "
                                       "commit or roll back first")
    with conn.transaction():
        got = _one(conn, "try_lock", key)
    if not got:
        raise LockBusy(busy)
    try:
        yield
    finally:
        if conn.info.transaction_status != pq.TransactionStatus.IDLE:
            conn.rollback()
        with conn.transaction():
            _one(conn, "unlock", key)


def _one(conn: psycopg.Connection[Any], name: str, key: str) -> bool:
    row = conn.cursor(row_factory=tuple_row).execute(query("locks", name, "one"),
                                                     {"key": key}).fetchone()
    return bool(row and row[0])
