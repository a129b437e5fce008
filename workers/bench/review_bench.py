"""`secinf bench review`: latencies of the review app's database calls at scale.

Builds a throwaway database (beside the configured one, dropped afterwards) with N
synthetic candidates in one project (plus trajectories for a few of them), then times the
calls the review app makes, each exactly as PostgREST runs a request: on an
`authenticator` connection, one transaction with SET LOCAL ROLE reviewer, the claims and
api.pre_request(). Reports median and p95 milliseconds per call: queue pages (each
ordering, first page and a page 20 pages deep, with and without filters), counts, the
candidate page, and the analytics document where api.project_metrics exists.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from functools import partial
from json import dumps
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from rich.table import Table
from tqdm import tqdm

from workers.bench.scratch import as_authenticator, scratch_database
from workers.cli.output import console, print_json
from workers.db.connect import connect
from workers.errors import UserError
from workers.review.synthetic import reviewed_project
from workers.settings import load_settings

REPEATS = 25
DEPTH = 20  # pages walked before timing a deep page
PAGE = 50
Conn = psycopg.Connection[dict[str, Any]]



class Caller:
    """One reviewer's PostgREST-style requests over a single authenticator connection."""

    def __init__(self, conn: Conn, claims: dict[str, Any]) -> None:
        self.conn = conn
        self.claims = dumps(claims)

    def call(self, fn: str, **args: Any) -> list[dict[str, Any]]:
        stmt = sql.SQL("SELECT * FROM {}({})").format(
            sql.Identifier("api", fn),
            sql.SQL(", ").join(sql.SQL("{} => {}").format(sql.Identifier(k), sql.Placeholder(k))
                               for k in args))
        with self.conn.transaction():
            self.conn.execute("SET LOCAL ROLE reviewer")
            self.conn.execute("SELECT set_config('request.jwt.claims', %s, true)",
                              (self.claims,))
            self.conn.execute("SELECT api.pre_request()")
            return self.conn.execute(stmt, args).fetchall()


def _time(fn: Callable[[], object], repeats: int) -> dict[str, float]:
    fn()  # warm: plans, caches
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {"median_ms": round(statistics.median(samples), 2),
            "p95_ms": round(samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))], 2)}


def _cursor_at(caller: Caller, depth: int, **args: Any) -> str | None:
    after = None
    for _ in range(depth):
        rows = caller.call("review_queue", p_after=after, p_limit=PAGE, **args)
        if len(rows) < PAGE:
            return None
        after = rows[-1]["cursor"]
    return after


def _build(conn: Conn, points: int) -> tuple[str, list[int], list[int]]:
    """Project, reviewer, candidates, a few trajectories, some machine events."""
    project, scene, detail_ids = reviewed_project(conn, "review", points, details=10)
    conn.execute("SELECT events.promote(%s)", (project,))
    conn.commit()
    return project, scene.source_ids, detail_ids


def bench_review(points: int, json: bool) -> dict[str, Any]:
    """Run the benchmark with `points` candidates; prints a table (or JSON), returns figures."""
    if points < 1000:
        raise UserError(f"--points {points} is too small to time; use at least 1000 candidates")
    settings = load_settings()
    results: dict[str, dict[str, float]] = {}
    with scratch_database("review", settings) as target:
        with connect(settings, conninfo=target) as admin:
            started = time.perf_counter()
            project, sources, detail_ids = _build(admin, points)
            build_s = time.perf_counter() - started
            analytics = admin.execute(
                "SELECT to_regprocedure('api.project_metrics(timestamptz, timestamptz, bigint[])')"
                " IS NOT NULL AS metrics, to_regprocedure('analytics.refresh(boolean)') IS NOT NULL"
                " AS refresh").fetchone()
            assert analytics is not None
            if analytics["refresh"]:
                admin.execute("SELECT analytics.refresh(false)")
                admin.commit()
        with connect(settings, autocommit=True, conninfo=target) as admin:
            admin.execute("VACUUM ANALYZE candidates.candidates")
        claims = {"role": "reviewer", "project_id": project, "sub": "bench-reviewer"}
        with psycopg.connect(as_authenticator(target, settings), row_factory=dict_row) as conn:
            caller = Caller(conn, claims)
            filters = {"p_types": ["follow", "meet"], "p_source_ids": sources[:2],
                       "p_min_score": 0.2, "p_max_score": 0.9}
            cases: list[tuple[str, Callable[[], object]]] = []
            for order in ("uncertain", "newest", "score"):
                deep = _cursor_at(caller, DEPTH, p_order=order)
                deep_filtered = _cursor_at(caller, DEPTH, p_order=order, **filters)
                queue = partial(caller.call, "review_queue", p_order=order)
                cases += [
                    (f"queue {order} page 1", queue),
                    (f"queue {order} page {DEPTH + 1}", partial(queue, p_after=deep)),
                    (f"queue {order} filtered page 1", partial(queue, **filters)),
                    (f"queue {order} filtered page {DEPTH + 1}",
                     partial(queue, p_after=deep_filtered, **filters)),
                ]
            cases += [
                ("counts", partial(caller.call, "review_counts")),
                ("counts filtered", partial(caller.call, "review_counts", **filters)),
                ("candidate detail",
                 partial(caller.call, "candidate_detail", p_candidate_id=detail_ids[0])),
            ]
            if analytics["metrics"]:
                cases.append(("analytics (project_metrics)",
                              partial(caller.call, "project_metrics")))
            for name, fn in tqdm(cases, desc="timing", unit="call", disable=json):
                results[name] = _time(fn, REPEATS)
    figures: dict[str, Any] = {"candidates": points, "build_s": round(build_s, 1),
                               "repeats": REPEATS, "page": PAGE, "calls": results}
    if json:
        print_json(figures)
    else:
        table = Table(title=f"review calls at {points:,} candidates ({REPEATS} runs each, "
                            "as a reviewer through the PostgREST request model)")
        table.add_column("call")
        table.add_column("median ms", justify="right")
        table.add_column("p95 ms", justify="right")
        for name, r in results.items():
            table.add_row(name, f"{r['median_ms']:.1f}", f"{r['p95_ms']:.1f}")
        console.print(table)
    return figures
