"""`pipeline.tick()` from Python: one call per transaction, looped until idle on request;
then the plausibility checks of the sources it ticked (`pipeline.source_checks`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.rows import dict_row

from workers.db.errors import DbFailure
from workers.db.queries import query
from workers.errors import SecinfError

from .lanes import tick_lanes
from .report import TickReport, add_source, parse_source


def tick(conn: psycopg.Connection[Any], until_idle: bool = False,
         on_tick: Callable[[TickReport], None] | None = None,
         checks: bool = True, parallel: int = 1, retry_failing: bool = False) -> TickReport:
    """Run `pipeline.tick()` as role `pipeline`, committing each call.

    Without `until_idle` this is one scheduled tick (the newest `settle_s` seconds wait).
    With it, every point is processed and ticks repeat until no source has work left.
    With `parallel` > 1, the sources are worked on that many lanes at once instead, each
    range step by step (workers/pipeline/lanes.py). With `checks`, the warnings of every
    source a tick processed go into `report.warnings`. A source that failed waits for its
    retry time (docs/pipeline.md, "Failing sources"); `retry_failing` tries every failing
    source now (`retry_sources` first).
    """
    if retry_failing:
        retry_sources(conn)
    if parallel != 1:
        report, worked = tick_lanes(conn, parallel, until_idle, on_tick)
        if checks and worked:
            report.warnings = _checked(conn, worked)
        return report
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
            sources = [parse_source(s) for s in result["sources"]]
            ticked.update(s.source_id for s in sources)
            for s in sources:
                add_source(report, s)
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


def retry_sources(conn: psycopg.Connection[Any], source_id: int | None = None) -> list[int]:
    """Make failing sources (`source_id`, or all of them) due now, committed: the next
    tick, scheduled or not, tries them (`pipeline.retry_source`). Returns the sources that
    were waiting."""
    try:
        rows = conn.execute(query("pipeline", "retry_source"),
                            {"source_id": source_id}).fetchall()
    except psycopg.Error as exc:
        conn.rollback()
        raise SecinfError(f"cannot retry failing sources: {str(exc).strip()}") from exc
    conn.commit()
    return [int(r["source_id"] if isinstance(r, dict) else r[0]) for r in rows]


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
                            f"{DbFailure.of(exc).text}"}]
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
