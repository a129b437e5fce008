"""Refresh the analytics views and read a project's metrics on an admin connection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from workers.db.queries import query
from workers.errors import UserError

Conn = psycopg.Connection[dict[str, Any]]


@dataclass(frozen=True)
class RefreshedView:
    matview: str
    concurrent: bool
    ms: float


def refresh(conn: Conn, concurrently: bool = True) -> list[RefreshedView]:
    """analytics.refresh() (what the cron job runs); commits."""
    rows = conn.execute(query("analytics", "refresh"), {"concurrently": concurrently}).fetchall()
    conn.commit()
    return [RefreshedView(r["matview"], bool(r["concurrent"]), float(r["ms"])) for r in rows]


def project_sources(conn: Conn, project_id: str, names: list[str] | None = None
                    ) -> dict[str, int]:
    """Source name → id in the project; every named source must exist."""
    rows = conn.execute(query("analytics", "project_sources"),
                        {"project_id": project_id, "names": names or None}).fetchall()
    found = {str(r["name"]): int(r["source_id"]) for r in rows}
    missing = sorted(set(names or []) - set(found))
    if missing:
        raise UserError(f"no source {', '.join(missing)} in this project: "
                        "see `secinf pipeline status` for the sources there are")
    return found


def project_metrics(conn: Conn, project_id: str, start: datetime | None = None,
                    end: datetime | None = None, sources: list[str] | None = None
                    ) -> dict[str, Any]:
    """api.project_metrics for one project, restricted to its sources (all, or those named).

    An admin session sees every project; the project is chosen by passing its source ids.
    """
    if start is not None and end is not None and start >= end:
        raise UserError(f"--from {start.isoformat()} is not before --to {end.isoformat()}")
    source_ids = list(project_sources(conn, project_id, sources).values())
    row = conn.execute(query("analytics", "project_metrics"),
                       {"from": start, "to": end, "source_ids": source_ids}).fetchone()
    conn.rollback()
    assert row is not None
    doc: dict[str, Any] = row["doc"]
    return doc
