"""Parallel lanes: several sources' ranges at once, one connection per lane.

A lane takes a source under its advisory lock (`pipeline.source_lock_key`, held for the
session, so `pipeline.tick` and other lanes leave the source alone) and works its range
step by step, committing after each: `pipeline.tick_plan`, `pipeline.tick_stage` for every
enabled stage, `pipeline.tick_finish`. Each step first claims the source row
(`pipeline.claim_source`), so no step sees half of an open ingest batch; a claim that fails
leaves the rest of the range to the next tick (every stage has its own watermark). A
failing step is rolled back and logged in pipeline.runs, and only its source stops.

Why a commit per step: two sources' rows share chunks, and a stage's ANALYZE of a chunk
(planner statistics for the next stage) holds its lock to the end of the transaction. In
one transaction per source, the second lane would wait for the first lane's whole range.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from workers.errors import SecinfError

from .report import SourceResult, TickReport, add_source, parse_source

# secinf's advisory lock class of a source's range (sql/45_pipeline.sql)
SOURCE_LOCK_CLASS = 388128
Conn = psycopg.Connection[dict[str, Any]]


def lane_conninfo(conn: psycopg.Connection[Any]) -> str:
    """A connection string that reaches the same database as `conn` (its password too)."""
    password = conn.info.password
    return make_conninfo(conn.info.dsn, **({"password": password} if password else {}))


def _one(conn: Conn, sql: str, params: tuple[Any, ...]) -> Any:
    row = conn.execute(sql, params).fetchone()
    return None if row is None else next(iter(row.values()))


def _range(conn: Conn, source_id: int, until_idle: bool) -> SourceResult | None:
    """Plan, stages and finish of one range of a source, a transaction each. None: nothing
    to do, or an ingest batch holds the source (the next tick continues)."""
    try:
        if not _one(conn, "SELECT pipeline.claim_source(%s)", (source_id,)):
            conn.rollback()
            return None
        plan = _one(conn, "SELECT pipeline.tick_plan(%s, %s)", (source_id, until_idle))
        conn.commit()
        if plan is None:
            return None
        stages = conn.execute("SELECT name, position FROM pipeline.stages WHERE enabled "
                              "ORDER BY position").fetchall()
        conn.commit()
        last = max((int(s["position"]) for s in stages), default=0)
        done: list[dict[str, Any]] = []
        for stage in stages:
            if not _one(conn, "SELECT pipeline.claim_source(%s)", (source_id,)):
                conn.rollback()
                return None
            done.append(_one(conn, "SELECT pipeline.tick_stage(%s, %s, %s)",
                             (Jsonb(plan), stage["name"], int(stage["position"]) < last)))
            conn.commit()
        if not _one(conn, "SELECT pipeline.claim_source(%s)", (source_id,)):
            conn.rollback()
            return None
        result = _one(conn, "SELECT pipeline.tick_finish(%s, %s)", (Jsonb(plan), Jsonb(done)))
        conn.commit()
        return parse_source(result)
    except psycopg.Error as exc:
        conn.rollback()
        message = exc.diag.message_primary or str(exc).strip()
        failed = _one(conn, "SELECT pipeline.tick_failed(%s, %s)", (source_id, message))
        conn.commit()
        return parse_source(failed)


def _source(conn: Conn, source_id: int, until_idle: bool) -> list[SourceResult]:
    """Every range of a source under its lock (until idle: until it has no more); [] when
    another backend holds the source."""
    if not _one(conn, "SELECT pg_try_advisory_lock(%s, pipeline.source_lock_key(%s))",
                (SOURCE_LOCK_CLASS, source_id)):
        conn.rollback()
        return []
    conn.commit()
    results: list[SourceResult] = []
    try:
        while True:
            one = _range(conn, source_id, until_idle)
            if one is None:
                break
            results.append(one)
            if not until_idle or one.status != "ok" or not one.more:
                break
    finally:
        conn.rollback()
        _one(conn, "SELECT pg_advisory_unlock(%s, pipeline.source_lock_key(%s))",
             (SOURCE_LOCK_CLASS, source_id))
        conn.commit()
    return results


def tick_lanes(conn: psycopg.Connection[Any], lanes: int, until_idle: bool = False,
               on_tick: Callable[[TickReport], None] | None = None,
               ) -> tuple[TickReport, list[int]]:
    """Every source's range on `lanes` connections at once (each to the end of its work when
    `until_idle`): the summed report and the sources worked. `conn` only lists the
    sources."""
    if lanes < 1:
        raise SecinfError(f"--parallel must be at least 1, got {lanes}")
    started = time.perf_counter()
    cur = conn.cursor(row_factory=dict_row)
    sources = [int(r["source_id"]) for r in
               cur.execute("SELECT source_id FROM ingest.sources ORDER BY source_id").fetchall()]
    conn.commit()
    report = TickReport()
    todo: queue.Queue[int] = queue.Queue()
    for s in sources:
        todo.put(s)
    lock = threading.Lock()
    failures: list[BaseException] = []
    ticked: set[int] = set()
    conninfo = lane_conninfo(conn)

    def lane() -> None:
        try:
            with psycopg.connect(conninfo, row_factory=dict_row) as c:
                c.execute("SET ROLE pipeline")
                c.commit()
                while True:
                    try:
                        source_id = todo.get_nowait()
                    except queue.Empty:
                        return
                    results = _source(c, source_id, until_idle)
                    with lock:
                        for r in results:
                            add_source(report, r)
                            ticked.add(r.source_id)
                        report.seconds = time.perf_counter() - started
                        if on_tick is not None and results:
                            on_tick(report)
        except BaseException as exc:  # re-raised in the caller's thread
            with lock:
                failures.append(exc)

    threads = [threading.Thread(target=lane, name=f"secinf-lane-{i}", daemon=True)
               for i in range(min(lanes, max(1, len(sources))))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        exc = failures[0]
        if isinstance(exc, psycopg.Error):
            raise SecinfError(f"a pipeline lane failed: {str(exc).strip()}") from exc
        raise exc
    report.ticks = 1
    report.seconds = time.perf_counter() - started
    return report, sorted(ticked)
