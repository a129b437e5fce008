"""Legal holds: set, lift and list them (project_admin or an operator; audited in SQL)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from workers.records import Conn, one, rows


def set_hold(conn: Conn, project_id: str, reason: str, *, source: str | None = None,
             from_ts: datetime | None = None, to_ts: datetime | None = None) -> dict[str, Any]:
    got = one(conn, "set_hold", {"project_id": project_id, "source": source,
                                 "from_ts": from_ts, "to_ts": to_ts, "reason": reason})
    conn.commit()
    return dict(got["hold"])


def lift_hold(conn: Conn, project_id: str, hold_id: int, reason: str) -> dict[str, Any]:
    got = one(conn, "lift_hold", {"project_id": project_id, "hold_id": hold_id,
                                  "reason": reason})
    conn.commit()
    return dict(got["hold"])


def list_holds(conn: Conn, project_id: str, *, include_lifted: bool = False
               ) -> list[dict[str, Any]]:
    return rows(conn, "list_holds", {"project_id": project_id, "all": include_lifted})
