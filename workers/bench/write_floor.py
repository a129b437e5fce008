"""The pipeline benchmark's write floor: how long writing a tick's outputs takes on its own.

A stage's time is computing its rows plus writing them. The floor re-inserts the rows one
source's tick wrote (copied to temporary tables beforehand, outside the timing) into empty
twins of the stored feature tables: same columns, same indexes, hypertables with the same chunk
interval. No computation is left in it, so it bounds what any way of computing the same
features could reach: points ÷ floor is the throughput if computing were free. The twins
carry no row-level security (the tick's policies are `USING (true)` for its roles) and are
dropped afterwards.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
from psycopg import sql

from workers.bench.scratch import settle

TABLES = ("kinematics", "zone_presence", "change_points")
"""The stored feature tables (pair rows are computed when read, not stored, since 0013)."""
SCHEMA = "secinf_bench_floor"


def _chunk_interval(conn: psycopg.Connection[Any], table: str) -> Any:
    """The hypertable's chunk interval, or None for a plain table."""
    row = conn.execute(
        "SELECT d.time_interval FROM timescaledb_information.dimensions d "
        "WHERE d.hypertable_schema = 'features' AND d.hypertable_name = %s "
        "AND d.dimension_number = 1", (table,)).fetchone()
    return None if row is None else (row["time_interval"] if isinstance(row, dict) else row[0])


def _twin(conn: psycopg.Connection[Any], table: str) -> None:
    """An empty copy of features.<table> with its indexes (and hypertable, if it is one)."""
    conn.execute(sql.SQL("CREATE TABLE {}.{} (LIKE features.{} INCLUDING ALL)").format(
        sql.Identifier(SCHEMA), sql.Identifier(table), sql.Identifier(table)))
    interval = _chunk_interval(conn, table)
    if interval is not None:
        conn.execute("SELECT create_hypertable(%s::regclass, 'ts', chunk_time_interval => %s, "
                     "create_default_indexes => false)", (f"{SCHEMA}.{table}", interval))


def measure_write_floor(conn: psycopg.Connection[Any], source_id: int) -> dict[str, Any]:
    """Seconds and rows per feature table to insert `source_id`'s stored outputs again."""
    ident = sql.Identifier(SCHEMA)
    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(ident))
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(ident))
    try:
        for table in TABLES:
            conn.execute(sql.SQL("CREATE TEMP TABLE {} AS SELECT * FROM features.{} "
                                 "WHERE source_id = %s").format(
                sql.Identifier(f"floor_{table}"), sql.Identifier(table)), (source_id,))
            _twin(conn, table)
        conn.commit()
        checkpointed = settle(conn)
        seconds: dict[str, float] = {}
        rows: dict[str, int] = {}
        for table in TABLES:
            started = time.perf_counter()
            cur = conn.execute(sql.SQL("INSERT INTO {}.{} SELECT * FROM {}").format(
                ident, sql.Identifier(table), sql.Identifier(f"floor_{table}")))
            conn.commit()
            seconds[table] = time.perf_counter() - started
            rows[table] = cur.rowcount
    finally:
        conn.rollback()
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(ident))
        for table in TABLES:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(
                sql.Identifier(f"floor_{table}")))
        conn.commit()
    return {"seconds": {k: round(v, 3) for k, v in seconds.items()},
            "total_s": round(sum(seconds.values()), 3), "rows": rows,
            "checkpointed": checkpointed}
