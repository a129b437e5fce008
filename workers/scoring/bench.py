"""`secinf bench scoring`: the scoring rate at the default batch size (read + windows +
model, and the model alone), and NOTIFY-to-written-score latency at low load: a small scene
is ingested and ticked, the rules' NOTIFY (the candidates channel) is received, and the clock
stops when a worker (in this process) has written every one of its candidates' scores."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from workers.errors import NotFound, SecinfError, UserError
from workers.pipeline import tick
from workers.pipeline.scene_copy import load_result
from workers.queue.notify import CANDIDATES, channel_name
from workers.queue.worker import Worker, WorkerConfig
from workers.scoring.collect import ensure_training_project
from workers.scoring.device import describe, select_device
from workers.scoring.handler import DEFAULT_BATCH, configure, score_batch
from workers.scoring.registry import load_model
from workers.simulate import preset_config, simulate

Conn = psycopg.Connection[Any]
BENCH_ORG = "secinf"
BENCH_PROJECT = "bench-scoring"


def _project(conn: Conn) -> str:
    from workers import tenancy

    try:
        pid = tenancy.resolve_project(conn, f"{BENCH_ORG}/{BENCH_PROJECT}")
    except UserError:
        conn.rollback()
        pid = str(tenancy.create_project(conn, BENCH_ORG, BENCH_PROJECT)["project_id"])
    ensure_training_project(conn, pid)
    conn.execute("DELETE FROM pipeline.settings WHERE project_id = %s AND key = 'scoring_auto'",
                 (pid,))
    conn.commit()
    return pid


def _scene(conn: Conn, pid: str, seed: int, duration: float) -> tuple[int, list[int]]:
    result = simulate(preset_config("plaza", seed=seed, duration=duration))
    source_id = load_result(conn, pid, result, name=f"bench-scoring-{seed}-{time.time_ns()}")
    report = tick(conn, until_idle=True)
    if report.errors:
        raise SecinfError(f"pipeline tick failed: {report.errors[0].error}")
    ids = [int(r["candidate_id"]) for r in conn.execute(
        "SELECT candidate_id FROM candidates.candidates WHERE source_id = %s ORDER BY 1",
        (source_id,)).fetchall()]
    return source_id, ids


def _rate(conn: Conn, pid: str, ids: list[int], device: str) -> dict[str, Any]:
    dev = select_device(device)
    batch = ids[:DEFAULT_BATCH]
    score_batch(conn, batch, pid, device=dev)  # warm-up (model load, caches)
    reps = max(1, 2000 // max(len(batch), 1))
    totals = {"read": 0.0, "windows": 0.0, "model": 0.0}
    for _ in range(reps):
        scored = score_batch(conn, batch, pid, device=dev)
        for k, v in scored.seconds.items():
            totals[k] += v
    n = len(batch) * reps
    end_to_end = sum(totals.values())
    return {"device": describe(dev), "batch": len(batch), "candidates_scored": n,
            "candidates_per_s": round(n / end_to_end, 1),
            "model_only_candidates_per_s": round(n / totals["model"], 1),
            "share_read_windows_model": [round(totals[k] / end_to_end, 3)
                                         for k in ("read", "windows", "model")]}


def run_bench(conn: Conn, *, rounds: int = 10, device: str = "cpu") -> dict[str, Any]:
    """Run both measurements on the configured database; returns the figures."""
    from workers.settings import load_settings

    pid = _project(conn)
    try:
        model = load_model(conn, project_id=pid)
    except NotFound as exc:
        raise UserError("bench scoring needs a registered model: run `secinf train` first") from exc
    _, ids = _scene(conn, pid, seed=9000, duration=180.0)
    if not ids:
        raise SecinfError("the benchmark scene produced no candidates: check `secinf rules`")
    rate = _rate(conn, pid, ids, device)
    configure(device)
    conninfo = load_settings().conninfo()
    worker = Worker(conninfo, WorkerConfig(kinds=("score_candidates",), concurrency=2,
                                           poll_s=2.0, worker_id="bench-scoring"))
    thread = threading.Thread(target=worker.run, name="bench-worker", daemon=True)
    thread.start()
    latencies: list[float] = []
    with psycopg.connect(conninfo, autocommit=True, row_factory=dict_row) as listen:
        listen.execute(sql.SQL("LISTEN {}").format(
            sql.Identifier(channel_name(listen, CANDIDATES))))
        try:
            for r in range(rounds):
                source_id, cand = _scene(conn, pid, seed=9100 + r, duration=40.0)
                t0 = None
                for _ in listen.notifies(timeout=10.0, stop_after=1):
                    t0 = time.perf_counter()
                if t0 is None or not cand:
                    continue
                deadline = t0 + 30.0
                while time.perf_counter() < deadline:
                    row = conn.execute("SELECT count(*) AS n FROM candidates.candidates "
                                       "WHERE source_id = %s AND model_score IS NULL",
                                       (source_id,)).fetchone()
                    conn.commit()
                    if row is not None and row["n"] == 0:
                        latencies.append(time.perf_counter() - t0)
                        break
                    time.sleep(0.005)
        finally:
            worker.stop(hard=True)
            thread.join(10.0)
    lat = np.array(latencies) * 1000.0
    return {"model_version": model.version, "rate": rate,
            "latency_ms": {"samples": int(lat.size),
                           "p50": round(float(np.percentile(lat, 50)), 1) if lat.size else None,
                           "p95": round(float(np.percentile(lat, 95)), 1) if lat.size else None},
            "rounds": rounds}
