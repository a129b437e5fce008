"""Retention per project: show and set it, run it now, read what runs did."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from workers.errors import UserError
from workers.records import Conn, one, rows

_KEEP = re.compile(r"^\s*(\d+)\s*(d|days?|w|weeks?|mo|months?|y|years?)\s*$", re.IGNORECASE)
_UNIT = {"d": "days", "w": "weeks", "mo": "months", "y": "years"}


def parse_keep(text: str) -> str | None:
    """'90d', '6mo', '2y', '3 weeks' → a Postgres interval; 'forever' → None."""
    if text.strip().lower() in ("forever", "never", "none"):
        return None
    m = _KEEP.match(text)
    if not m:
        raise UserError(f"--keep {text!r}: give days (90d), weeks (3w), months (6mo) or years "
                        "(2y), or 'forever'")
    unit = m.group(2).lower()
    key = "mo" if unit.startswith("mo") else unit[0]
    return f"{int(m.group(1))} {_UNIT[key]}"


def retention_of(conn: Conn, project_id: str) -> list[dict[str, Any]]:
    return rows(conn, "retention_of", {"project_id": project_id})


def set_retention(conn: Conn, project_id: str, category: str, keep: str | None, reason: str,
                  *, clear: bool = False) -> dict[str, Any]:
    got = one(conn, "set_retention", {"project_id": project_id, "category": category,
                                      "keep": keep, "reason": reason, "clear": clear})
    conn.commit()
    return dict(got["result"])


def run(conn: Conn, *, batch: int = 50_000, at: datetime | None = None) -> dict[str, Any]:
    """One retention run now (as the pipeline's cron job runs it); its summary. `at` moves
    the run's 'now' (to see what a run would do later; tests and benchmarks)."""
    if batch < 1:
        raise UserError(f"--batch {batch}: give a positive number of rows")
    if not conn.autocommit:
        conn.commit()
        conn.autocommit = True  # the procedure commits unit by unit: no outer transaction
        try:
            return run(conn, batch=batch, at=at)
        finally:
            conn.autocommit = False
    got = rows(conn, "run_retention", {"batch": batch, "at": at})
    result = dict(got[0]["p_result"] or {}) if got else {}
    if "run_id" in result:
        result["steps_detail"] = rows(conn, "retention_steps", {"run_id": result["run_id"]})
    return result


def history(conn: Conn, limit: int = 10) -> list[dict[str, Any]]:
    return rows(conn, "retention_runs", {"limit": limit})


def steps(conn: Conn, run_id: int) -> list[dict[str, Any]]:
    return rows(conn, "retention_steps", {"run_id": run_id})


def age(keep: timedelta | None) -> str:
    return "forever" if keep is None else f"{keep.days} days"
