"""Parallel lanes: several sources' ranges at once, one connection per lane.

Each lane is one `CALL pipeline.run_lane(...)` (sql/450_pipeline.sql, where the protocol
lives, so that pg_cron can run lanes as well): every source that no other backend holds,
under its advisory lock (`pipeline.source_lock_key`; `pipeline.tick` and other lanes leave
it alone), its range worked step by step with a commit after each step:
`pipeline.tick_plan`, `pipeline.tick_stage` for every enabled stage, `pipeline.tick_finish`.
Every step first claims the source row (`pipeline.claim_source`), so no step sees half of
an open ingest batch. A failing step is rolled back and logged in pipeline.runs, and only
its source stops; every stage has its own watermark, so the next tick resumes there.

Why a commit per step: two sources' rows share chunks, and a stage's ANALYZE of a chunk
(planner statistics for the next stage) holds its lock to the end of the transaction. In
one transaction per source, the second lane would wait for the first lane's whole range.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

from workers.errors import SecinfError

from .report import TickReport, add_source, parse_source


def lane_conninfo(conn: psycopg.Connection[Any]) -> str:
    """A connection string that reaches the same database as `conn` (its password too)."""
    password = conn.info.password
    return make_conninfo(conn.info.dsn, **({"password": password} if password else {}))


def tick_lanes(conn: psycopg.Connection[Any], lanes: int, until_idle: bool = False,
               on_tick: Callable[[TickReport], None] | None = None,
               ) -> tuple[TickReport, list[int]]:
    """Every source's range on `lanes` connections at once (each to the end of its work when
    `until_idle`): the summed report and the sources worked. `conn` only counts the
    sources (one lane per source at most)."""
    if lanes < 1:
        raise SecinfError(f"--parallel must be at least 1, got {lanes}")
    started = time.perf_counter()
    cur = conn.cursor(row_factory=dict_row)
    sources = cur.execute("SELECT count(*) AS n, clock_timestamp() AS now "
                          "FROM ingest.sources").fetchone()
    conn.commit()
    since = sources["now"] if sources else None
    report = TickReport()
    lock = threading.Lock()
    failures: list[BaseException] = []
    ticked: set[int] = set()
    conninfo = lane_conninfo(conn)

    def lane() -> None:
        try:
            with psycopg.connect(conninfo, autocommit=True, row_factory=dict_row) as c:
                c.execute("SET ROLE pipeline")
                row = c.execute("CALL pipeline.run_lane(%s, NULL, %s, NULL)",
                                (until_idle, since)).fetchone()
                results = [parse_source(r) for r in ((row or {}).get("p_results") or [])]
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

    count = int(sources["n"]) if sources else 0
    threads = [threading.Thread(target=lane, name=f"secinf-lane-{i}", daemon=True)
               for i in range(max(1, min(lanes, count)))]
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
