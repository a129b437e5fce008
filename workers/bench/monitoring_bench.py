"""`secinf bench monitoring`: how long each query of postgres_exporter's queries file takes on
the current database (issue 19's target: < 50 ms each at 10M rows).

Each query runs as the exporter runs it, as the login `secinf_monitor` (SET ROLE on the
admin connection), `repeat` times after one warm-up: the wall time of each run (median and
max, client round trip included) and the server's own execution time from
EXPLAIN (ANALYZE) of one more run. Figures are printed, never asserted; run it on a database
of the size you care about (the governance benchmark will build the 10M-row one).
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg
import yaml
from psycopg import sql as pgsql
from rich.table import Table

from workers.cli.output import console, print_json
from workers.db.connect import connect
from workers.errors import UserError
from workers.settings import REPO_ROOT

QUERIES_FILE = REPO_ROOT / "docker" / "monitoring" / "postgres_exporter_queries.yaml"
MONITOR_ROLE = "secinf_monitor"
TARGET_MS = 50.0


@dataclass(frozen=True)
class QueryTiming:
    name: str
    rows: int
    median_ms: float
    max_ms: float
    execution_ms: float
    """The server's execution time (EXPLAIN ANALYZE), planning excluded."""
    planning_ms: float

    @property
    def within_target(self) -> bool:
        return self.max_ms < TARGET_MS


def load_queries(path: Path = QUERIES_FILE) -> dict[str, str]:
    """The queries file's queries by name (postgres_exporter's --extend.query-path format)."""
    try:
        spec = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise UserError(f"cannot read the exporter's queries file {path}: {exc.strerror}; "
                        "pass --queries PATH (docker/monitoring/postgres_exporter_queries.yaml "
                        "in the repository)") from exc
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(spec, dict) or not all(
            isinstance(v, dict) and isinstance(v.get("query"), str) for v in spec.values()):
        raise UserError(f"{path} is not a postgres_exporter queries file: every top-level "
                        "key needs a `query:` string and `metrics:`")
    return {str(name): str(entry["query"]) for name, entry in spec.items()}


def time_queries(conn: psycopg.Connection[Any], queries: dict[str, str], *,
                 repeat: int = 5, role: str = MONITOR_ROLE) -> list[QueryTiming]:
    """Time each query as `role` on `conn` (autocommit); see the module docstring."""
    timings: list[QueryTiming] = []
    with conn.cursor() as cur:
        for name, text in queries.items():
            cur.execute(pgsql.SQL("SET ROLE {}").format(pgsql.Identifier(role)))
            try:
                cur.execute(text)  # warm-up: plans and caches, as a scraping exporter has
                rows = len(cur.fetchall())
                walls: list[float] = []
                for _ in range(max(repeat, 1)):
                    start = time.perf_counter()
                    cur.execute(text)
                    cur.fetchall()
                    walls.append((time.perf_counter() - start) * 1000)
                cur.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {text}")
                plan_row = cur.fetchone()
            except psycopg.Error as exc:
                raise UserError(f"exporter query {name} failed as {role}: "
                                f"{str(exc).strip().splitlines()[0]}; run `secinf db "
                                "migrate` (the monitoring views and grants) and check "
                                "the queries file") from exc
            finally:
                cur.execute("RESET ROLE")
            assert plan_row is not None
            plan = _plan(plan_row)
            timings.append(QueryTiming(
                name, rows, round(statistics.median(walls), 3), round(max(walls), 3),
                round(float(plan["Execution Time"]), 3), round(float(plan["Planning Time"]), 3)))
    return timings


def _plan(row: Any) -> dict[str, Any]:
    value = row[0] if isinstance(row, tuple) else next(iter(row.values()))
    doc = json.loads(value) if isinstance(value, str) else value
    return dict(doc[0])


def bench_monitoring(*, repeat: int = 5, queries_file: Path = QUERIES_FILE,
                     json_out: bool = False, conninfo: str | None = None) -> dict[str, Any]:
    """Time the queries file on the configured database (or `conninfo`); prints, returns."""
    queries = load_queries(queries_file)
    with connect(autocommit=True, conninfo=conninfo) as conn:
        has_role = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s",
                                (MONITOR_ROLE,)).fetchone()
        if has_role is None:
            raise UserError(f"role {MONITOR_ROLE} does not exist on this server: run "
                            "`secinf db migrate` (migration 0026 creates it)")
        timings = time_queries(conn, queries, repeat=repeat)
        points = conn.execute("SELECT count(*) AS n FROM ingest.track_points").fetchone()
    result: dict[str, Any] = {
        "target_ms": TARGET_MS, "repeat": repeat,
        "track_points": int(str(points["n"])) if points else 0,
        "queries": [{**asdict(t), "within_target": t.within_target} for t in timings],
        "all_within_target": all(t.within_target for t in timings),
    }
    if json_out:
        print_json(result)
        return result
    table = Table(title=f"postgres_exporter queries as {MONITOR_ROLE} "
                        f"({result['track_points']:,} track points; target < {TARGET_MS:g} ms)")
    for col in ("query", "rows", "median ms", "max ms", "server ms", "planning ms", "target"):
        table.add_column(col, justify="left" if col == "query" else "right", no_wrap=True)
    for t in timings:
        table.add_row(t.name, str(t.rows), f"{t.median_ms:.2f}", f"{t.max_ms:.2f}",
                      f"{t.execution_ms:.2f}", f"{t.planning_ms:.2f}",
                      "[green]ok[/]" if t.within_target else "[red]over[/]")
    console.print(table)
    return result


__all__ = ["QUERIES_FILE", "QueryTiming", "bench_monitoring", "load_queries", "time_queries"]
