"""The audit log's hash chain from Python: seal what can be sealed, verify every link
(`secinf audit seal|verify`; sql/050_audit.sql holds the chain itself)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import psycopg

from workers.db.queries import query

Conn = psycopg.Connection[dict[str, Any]]


@dataclass(frozen=True)
class Verdict:
    rows_checked: int
    unsealed: int
    seconds: float
    first_broken: int | None = None
    reason: str | None = None
    broken_row: dict[str, Any] | None = None

    @property
    def whole(self) -> bool:
        return self.first_broken is None


def seal(conn: Conn, limit: int = 100_000) -> int:
    """Seal up to `limit` rows (committed); returns how many."""
    row = conn.execute(query("audit", "seal"), {"limit": limit}).fetchone()
    conn.commit()
    return int(row["sealed"]) if row else 0


def verify(conn: Conn) -> Verdict:
    """Recompute every link of the chain; name the first broken one and its row."""
    started = time.perf_counter()
    row = conn.execute(query("audit", "verify")).fetchone()
    seconds = time.perf_counter() - started
    assert row is not None
    broken = None
    if row["first_broken"] is not None:
        broken = conn.execute(query("audit", "broken_row"),
                              {"seq": row["first_broken"]}).fetchone()
    conn.rollback()
    return Verdict(int(row["rows_checked"]), int(row["unsealed"]), seconds,
                   row["first_broken"], row["reason"], dict(broken) if broken else None)
