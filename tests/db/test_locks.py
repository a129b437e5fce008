"""workers/db/locks.advisory_lock: one holder at a time, released however the block ends."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from workers.db.locks import LockBusy, advisory_lock

pytestmark = pytest.mark.db


def _held(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' "
                       "AND pid <> pg_backend_pid()").fetchone()
    conn.rollback()
    assert row is not None
    return int(row["n"])


def test_a_second_session_is_refused_and_the_lock_goes_when_the_block_fails(dsn: str) -> None:
    with (psycopg.connect(dsn, row_factory=dict_row) as one,
          psycopg.connect(dsn, row_factory=dict_row) as two):
        with pytest.raises(RuntimeError, match="boom"), advisory_lock(one, "t:a"):
            # Work under the lock commits step by step; the lock outlives each step.
            with one.transaction():
                one.execute("SELECT 1")
            assert _held(two) == 1
            with pytest.raises(LockBusy, match="busy: try later"), \
                    advisory_lock(two, "t:a", busy="busy: try later"):
                pass
            with advisory_lock(two, "t:b"):  # another key is another lock
                pass
            one.execute("SELECT 1")  # an open transaction …
            raise RuntimeError("boom")  # … rolled back before the unlock
        assert _held(two) == 0
        with advisory_lock(two, "t:a"):
            pass


def test_an_open_transaction_is_refused(db: psycopg.Connection[Any]) -> None:
    db.execute("SELECT 1")
    with pytest.raises(psycopg.ProgrammingError, match="needs an idle connection"), \
            advisory_lock(db, "t:a"):
        pass
