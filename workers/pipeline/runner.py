"""`pipeline.tick()` from Python: one call per transaction, looped until idle on request;
then the plausibility checks of the sources it ticked (`pipeline.source_checks`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

from workers.db.queries import query
from workers.errors import SecinfError


@dataclass
class SourceResult:
    """What one tick did to one source."""

    source_id: int
    status: str
    points: int = 0
    dirty: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    ms: dict[str, float] = field(default_factory=dict)
    error: str | None = None


@dataclass
class TickReport:
    """The sum of one or more ticks."""

    ticks: int = 0
    busy: bool = False
    points: int = 0
    dirty: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    """Time spent in each stage function (measured inside the tick), summed."""
    errors: list[SourceResult] = field(default_factory=list)
    seconds: float = 0.0
    warnings: list[dict[str, Any]] = field(default_factory=list)
    """{source_id, source, code, message} per warning of a ticked source, read after the
    last commit (sql/46_pipeline_checks.sql; not counted in `seconds`)."""

    def as_dict(self) -> dict[str, Any]:
        return {"ticks": self.ticks, "busy": self.busy, "points": self.points,
                "dirty": self.dirty, "rows": self.rows, "seconds": round(self.seconds, 3),
                "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
                "errors": [{"source_id": e.source_id, "error": e.error} for e in self.errors],
                "warnings": self.warnings}


def _parse(source: dict[str, Any]) -> SourceResult:
    return SourceResult(source_id=int(source["source_id"]), status=str(source["status"]),
                        points=int(source.get("points") or 0), dirty=int(source.get("dirty") or 0),
                        rows={k: int(v) for k, v in (source.get("rows") or {}).items()},
                        ms={k: float(v) for k, v in (source.get("ms") or {}).items()},
                        error=source.get("error"))


def tick(conn: psycopg.Connection[Any], until_idle: bool = False,
         on_tick: Callable[[TickReport], None] | None = None,
         checks: bool = True) -> TickReport:
    """Run `pipeline.tick()` as role `pipeline`, committing each call.

    Without `until_idle` this is one scheduled tick (the newest `settle_s` seconds wait).
    With it, every point is processed and ticks repeat until no source has work left.
    With `checks`, the warnings of every source a tick processed go into
    `report.warnings`.
    """
    report = TickReport()
    started = time.perf_counter()
    ticked: set[int] = set()
    try:
        conn.execute("SET ROLE pipeline")
        while True:
            row = conn.execute(query("pipeline", "tick"), {"until_idle": until_idle}).fetchone()
            conn.commit()
            assert row is not None
            result: dict[str, Any] = row["result"] if isinstance(row, dict) else row[0]
            report.ticks += 1
            report.busy = bool(result["busy"])
            sources = [_parse(s) for s in result["sources"]]
            ticked.update(s.source_id for s in sources)
            for s in sources:
                report.points += s.points
                report.dirty += s.dirty
                for stage, n in s.rows.items():
                    report.rows[stage] = report.rows.get(stage, 0) + n
                for stage, ms in s.ms.items():
                    report.stage_seconds[stage] = report.stage_seconds.get(stage, 0.0) + ms / 1000
                if s.status == "error":
                    report.errors.append(s)
            report.seconds = time.perf_counter() - started
            if on_tick is not None:
                on_tick(report)
            if not until_idle or report.busy or not sources:
                break
            if all(s.status == "error" for s in sources):
                break
        if checks and ticked:
            report.warnings = _checked(conn, sorted(ticked))
    except psycopg.Error as exc:
        conn.rollback()
        raise SecinfError(f"pipeline tick failed: {str(exc).strip()}") from exc
    finally:
        if not conn.closed:
            conn.execute("RESET ROLE")
            conn.commit()
    return report


def source_warnings(conn: psycopg.Connection[Any],
                    source_ids: list[int]) -> list[dict[str, Any]]:
    """{source_id, source, code, message} for each warning of the sources
    (`pipeline.source_checks`), in source order."""
    cur = conn.cursor(row_factory=dict_row)
    return [dict(r) for r in cur.execute(query("pipeline", "source_checks"),
                                         {"source_ids": source_ids}).fetchall()]


def _checked(conn: psycopg.Connection[Any], source_ids: list[int]) -> list[dict[str, Any]]:
    """source_warnings after the ticks have committed; a failing check is reported as a
    warning of its own rather than failing the ticks."""
    try:
        warnings = source_warnings(conn, source_ids)
    except psycopg.Error as exc:
        conn.rollback()
        return [{"source_id": None, "source": None, "code": "checks_failed",
                 "message": f"the ticks are committed, but pipeline.source_checks failed: "
                            f"{exc.diag.message_primary or str(exc).strip()}"}]
    conn.commit()
    return warnings


def pipeline_status(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """One row per source from the `pipeline.status` view, with its `warnings`
    ([{code, message}], `pipeline.source_checks`)."""
    try:
        rows = conn.execute(query("pipeline", "status")).fetchall()
    except psycopg.Error as exc:
        conn.rollback()
        raise SecinfError(f"cannot read pipeline.status: {str(exc).strip()}") from exc
    return [dict(r) for r in rows]
