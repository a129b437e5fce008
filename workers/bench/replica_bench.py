"""`secinf bench replica`: read latency on the streaming replica against the primary, and
the replica's lag under a write load.

Builds a scratch primary cluster (initdb in a temporary directory beside the project's
home, on a free port, migrated; never the project's own cluster), N synthetic candidates in
one project with trajectories for a few, and a replica of it with `secinf db replica up`'s
code. Then times the review app's read calls (PostgREST's request model, as a reviewer,
READ ONLY) alternately on the primary and on the replica: median and p95 milliseconds per
query, the replica ÷ primary ratio of medians (target ≤ 1.2). Last, one session inserts
batches on the primary for a few seconds while the replica's lag (bytes, seconds) is
sampled from both sides. Everything is deleted afterwards.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from rich.table import Table

from workers.appdb import AppDB
from workers.appdb.session import authenticator_conninfo, read_authenticator_conninfo
from workers.cli.output import console, err_console, print_json
from workers.db import replica as rp
from workers.db.backup import free_port
from workers.db.cluster import LocalCluster
from workers.db.migrate import migrate
from workers.errors import UserError
from workers.review.synthetic import reviewed_project
from workers.settings import Settings, load_settings

TARGET_RATIO = 1.2
SMALL_SERVER = "\n# scratch bench cluster\nshared_buffers = 128MB\nmax_connections = 60\n"
Conn = psycopg.Connection[dict[str, Any]]


@contextmanager
def scratch_cluster(settings: Settings) -> Iterator[Settings]:
    """initdb, start and migrate a private cluster; stop and delete it afterwards."""
    if not settings.managed:
        raise UserError("SECINF_DSN is set: `secinf bench replica` builds a scratch primary "
                        "and its replica with the local PostgreSQL binaries; run it where "
                        "secinf manages its own cluster")
    root = settings.home / "tmp" if settings.run_as_postgres else Path(tempfile.gettempdir())
    root.mkdir(mode=0o755, parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="secinf-bench-replica-", dir=root))
    home.chmod(0o755)
    scratch = replace(settings, home=home, port=free_port(settings.port + 20),
                      storage_root=home / "datasets", backup_repo=None, read_dsn=None,
                      replica_home=None, replica_port=0)
    cluster = LocalCluster(scratch)
    try:
        cluster.init()
        cluster.write_config()
        conf = scratch.pgdata / "postgresql.conf"
        cluster._write_as_owner(conf, conf.read_text() + SMALL_SERVER)
        cluster.start()
        with psycopg.connect(scratch.conninfo(dbname="postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch.dbname)))
        migrate(scratch.conninfo())
        yield scratch
    finally:
        try:
            if rp.replica_settings(scratch).home.exists():
                rp.down(scratch)
        finally:
            cluster.stop(mode="immediate")
            shutil.rmtree(home, ignore_errors=True)


def _build(conn: Conn, candidates: int) -> tuple[str, list[int]]:
    project, _, detail_ids = reviewed_project(conn, "replica", candidates, details=5)
    conn.execute("SELECT analytics.refresh(false)")
    conn.commit()
    return project, detail_ids


def _stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median_ms": round(statistics.median(ordered), 3), "p95_ms": round(p95, 3)}


def _cases(project: str, detail_ids: list[int]) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, app.sql query, parameters): the review app's representative reads."""
    queue = {"types": None, "source_ids": None, "min_score": None, "max_score": None,
             "statuses": None, "from": None, "to": None, "after": None, "limit": 50}
    counts = {k: v for k, v in queue.items() if k not in ("after", "limit")}
    return [
        ("queue uncertain page 1", "review_queue", {**queue, "order": "uncertain"}),
        ("queue newest page 1", "review_queue", {**queue, "order": "newest"}),
        ("counts", "review_counts", counts),
        ("candidate detail", "candidate_detail",
         {"candidate_id": detail_ids[0], "context_s": 5.0}),
        ("project metrics", "project_metrics", {"from": None, "to": None, "source_ids": None}),
    ]


def _time_reads(primary: AppDB, replica: AppDB, claims: dict[str, Any],
                cases: list[tuple[str, str, dict[str, Any]]], repeats: int
                ) -> list[dict[str, Any]]:
    from workers.db.queries import query

    rows = []
    for label, name, params in cases:
        calls: dict[str, Callable[[], object]] = {
            side: partial(db.request, "reviewer", claims, query("app", name), params,
                          read_only=True)
            for side, db in (("primary", primary), ("replica", replica))}
        for call in calls.values():  # warm: plans, caches, role settings
            call()
            call()
        samples: dict[str, list[float]] = {"primary": [], "replica": []}
        for i in range(repeats):  # alternate, so drift hits both alike
            for side in (("primary", "replica") if i % 2 == 0 else ("replica", "primary")):
                started = time.perf_counter()
                calls[side]()
                samples[side].append((time.perf_counter() - started) * 1000)
        p, r = _stats(samples["primary"]), _stats(samples["replica"])
        rows.append({"query": label, "primary_median_ms": p["median_ms"],
                     "primary_p95_ms": p["p95_ms"], "replica_median_ms": r["median_ms"],
                     "replica_p95_ms": r["p95_ms"],
                     "ratio": round(r["median_ms"] / max(p["median_ms"], 1e-6), 3)})
    return rows


def _lag_under_load(scratch: Settings, seconds: float, batch: int) -> dict[str, Any]:
    """Insert `batch` rows per commit on the primary for `seconds`; sample the lag."""
    stop = threading.Event()
    written = [0, 0]  # rows, commits

    def load() -> None:
        with psycopg.connect(scratch.conninfo()) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS public.bench_load "
                         "(id bigserial PRIMARY KEY, at timestamptz DEFAULT now(), pad text)")
            conn.commit()
            while not stop.is_set():
                conn.execute("INSERT INTO public.bench_load (pad) "
                             "SELECT repeat('x', 100) FROM generate_series(1, %s)", (batch,))
                conn.commit()
                written[0] += batch
                written[1] += 1

    worker = threading.Thread(target=load, name="bench-replica-load", daemon=True)
    worker.start()
    lag_bytes: list[int] = []
    lag_seconds: list[float] = []
    started = time.monotonic()
    try:
        while time.monotonic() - started < seconds:
            st = rp.status(scratch)
            if st.lag_bytes is not None:
                lag_bytes.append(st.lag_bytes)
            if st.lag_seconds is not None:
                lag_seconds.append(st.lag_seconds)
            time.sleep(0.1)
    finally:
        stop.set()
        worker.join(timeout=30)
    elapsed = time.monotonic() - started
    deadline = time.monotonic() + 30
    while (st := rp.status(scratch)).lag_bytes != 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    caught_up_s = time.monotonic() - started - elapsed
    return {
        "seconds": round(elapsed, 2), "rows_per_s": round(written[0] / elapsed),
        "commits_per_s": round(written[1] / elapsed), "samples": len(lag_bytes),
        "lag_bytes_median": int(statistics.median(lag_bytes)) if lag_bytes else None,
        "lag_bytes_max": max(lag_bytes) if lag_bytes else None,
        "lag_seconds_median": round(statistics.median(lag_seconds), 3) if lag_seconds
        else None,
        "lag_seconds_max": round(max(lag_seconds), 3) if lag_seconds else None,
        "caught_up_after_s": round(caught_up_s, 2) if st.lag_bytes == 0 else None,
    }


def bench_replica(candidates: int = 100_000, repeats: int = 30, load_seconds: float = 5.0,
                  batch: int = 1000, json_out: bool = False) -> dict[str, Any]:
    """Run the benchmark; prints a table (or JSON) and returns the figures."""
    if candidates < 100:
        raise UserError(f"--candidates {candidates} is too small; use at least 100")
    settings = load_settings()
    with scratch_cluster(settings) as scratch:
        with err_console.status("building the scratch primary…") as status, \
                psycopg.connect(scratch.conninfo(), row_factory=dict_row) as admin:
            started = time.perf_counter()
            project, detail_ids = _build(admin, candidates)
            admin.commit()
            admin.autocommit = True
            admin.execute("VACUUM ANALYZE")
            build_s = time.perf_counter() - started
            status.update("starting its replica (pg_basebackup)…")
            started = time.perf_counter()
            replica = rp.up(scratch)
            replica_s = time.perf_counter() - started
        assert replica.conninfo is not None
        read = replace(scratch, read_dsn=replica.conninfo)
        claims = {"role": "reviewer", "project_id": project, "sub": "bench-reviewer"}
        on_primary = AppDB(authenticator_conninfo(scratch), max_size=1)
        on_replica = AppDB(authenticator_conninfo(scratch),
                           read_conninfo=read_authenticator_conninfo(read), max_size=1)
        try:
            with err_console.status("timing reads on the primary and the replica…"):
                reads = _time_reads(on_primary, on_replica, claims,
                                    _cases(project, detail_ids), repeats)
        finally:
            on_primary.close()
            on_replica.close()
        with err_console.status(f"writing on the primary for {load_seconds:g} s…"):
            lag = _lag_under_load(scratch, load_seconds, batch)
    ratios = [r["ratio"] for r in reads]
    result = {"candidates": candidates, "repeats": repeats, "build_s": round(build_s, 1),
              "replica_up_s": round(replica_s, 1), "reads": reads,
              "ratio_median": round(statistics.median(ratios), 3),
              "ratio_max": round(max(ratios), 3), "target_ratio": TARGET_RATIO,
              "within_target": max(ratios) <= TARGET_RATIO, "lag_under_load": lag,
              "cpus": os.cpu_count()}
    if json_out:
        print_json(result)
        return result
    table = Table(title=f"reads on the replica vs the primary ({candidates:,} candidates, "
                        f"{repeats} runs each; target ratio ≤ {TARGET_RATIO})")
    for col in ("query", "primary median ms", "primary p95 ms", "replica median ms",
                "replica p95 ms", "ratio"):
        table.add_column(col, justify="left" if col == "query" else "right")
    for r in reads:
        table.add_row(r["query"], f"{r['primary_median_ms']:.2f}", f"{r['primary_p95_ms']:.2f}",
                      f"{r['replica_median_ms']:.2f}", f"{r['replica_p95_ms']:.2f}",
                      f"{r['ratio']:.2f}")
    console.print(table)
    console.print(f"ratio of medians: median {result['ratio_median']:.2f}, max "
                  f"{result['ratio_max']:.2f} ({'within' if result['within_target'] else 'over'}"
                  f" {TARGET_RATIO}) · build {build_s:.1f} s, replica up {replica_s:.1f} s",
                  highlight=False)
    console.print(
        f"lag under load ({lag['rows_per_s']:,} rows/s in {lag['commits_per_s']:,} commits/s "
        f"for {lag['seconds']} s): bytes median {lag['lag_bytes_median']}, max "
        f"{lag['lag_bytes_max']}; seconds median {lag['lag_seconds_median']}, max "
        f"{lag['lag_seconds_max']}; caught up {lag['caught_up_after_s']} s after the load",
        highlight=False)
    return result
