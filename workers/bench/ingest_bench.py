"""`secinf bench ingest`: the real ingest path against the server's COPY ceiling.

Simulates N points (the crowd preset, scaled), ingests them through `workers.ingest` into a
scratch project, then COPYs the same rows into an UNLOGGED, unindexed table. The ratio
ingest rate / ceiling rate says how much of the server's raw write speed ingest keeps.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import polars as pl
from psycopg import sql

from workers import tenancy
from workers.bench.scratch import scratch_database
from workers.db.connect import connect
from workers.ingest import IngestRequest, ingest
from workers.ingest.schema import DEFAULT_TIME_ORIGIN
from workers.simulate import preset_config, simulate

POINTS_PER_AGENT = 850
"""Roughly what one crowd agent yields over the default 300 s at 10 fps."""
CEILING_COLUMNS = ("track_id text, frame bigint, ts timestamptz, x double precision, "
                   "y double precision, class text, confidence real")


def simulate_points(points: int, out: Path, seed: int = 0) -> Path:
    """A Parquet file of exactly `points` rows (crowd scenes, tiled by seed if short)."""
    frames: list[pl.DataFrame] = []
    have = 0
    while have < points:
        agents = max(10, math.ceil((points - have) / POINTS_PER_AGENT))
        tracks = simulate(preset_config("crowd", seed, agents=agents)).tracks
        # Tiles follow one another in time so the source stays one clean timeline.
        shift = (seed * 400.0)
        tracks = tracks.with_columns(
            (pl.lit(f"s{seed}-") + pl.col("track_id")).alias("track_id"),
            pl.col("frame") + int(shift * 10), pl.col("t") + shift)
        frames.append(tracks.head(points - have))
        have += frames[-1].height
        seed += 1
    path = out / "tracks.parquet"
    pl.concat(frames).write_parquet(path)
    return path


def _ceiling(conn: Any, path: Path) -> float:
    """Seconds to COPY the same rows (CSV, as ingest sends them) into an unlogged table."""
    frame = pl.read_parquet(path).select(
        "track_id", "frame",
        (pl.lit(DEFAULT_TIME_ORIGIN) + pl.duration(microseconds=(pl.col("t") * 1e6).round(0)
                                                   .cast(pl.Int64))).alias("ts"),
        "x", "y", "class", pl.col("confidence").cast(pl.Float32))
    payload = frame.write_csv(include_header=False).encode()
    table = sql.Identifier(f"secinf_bench_ceiling_{os.getpid()}")
    conn.execute(sql.SQL("CREATE UNLOGGED TABLE public.{} (" + CEILING_COLUMNS + ")")
                 .format(table))
    conn.commit()
    try:
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy(
                sql.SQL("COPY public.{} FROM STDIN (FORMAT csv)").format(table)) as copy:
            step = 8 << 20
            for i in range(0, len(payload), step):
                copy.write(payload[i:i + step])
        conn.commit()
        return time.perf_counter() - started
    finally:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS public.{}").format(table))
        conn.commit()


def bench_ingest(points: int, json_out: bool) -> dict[str, Any]:
    """Measure both rates in one run; returns (and prints unless json_out) the figures."""
    from workers.cli.output import console, print_json

    with tempfile.TemporaryDirectory(prefix="secinf-bench-") as tmp:
        t0 = time.perf_counter()
        path = simulate_points(points, Path(tmp))
        sim_s = time.perf_counter() - t0
        slug = f"ingest-{uuid.uuid4().hex[:8]}"
        with scratch_database("ingest") as target, connect(conninfo=target) as conn:
            conn.execute("SET temp_buffers = '256MB'")  # as `secinf ingest` does
            tenancy.create_project(conn, "bench", slug)
            summary = ingest(conn, IngestRequest(project=f"bench/{slug}", source="crowd",
                                                 path=path))
            ceiling_s = _ceiling(conn, path)
    ingest_rate = points / summary.seconds
    ceiling_rate = points / ceiling_s
    result = {"points": points, "inserted": summary.inserted, "invalid": summary.invalid,
              "ingest_seconds": round(summary.seconds, 3),
              "ingest_rows_per_s": round(ingest_rate),
              "ceiling_seconds": round(ceiling_s, 3), "ceiling_rows_per_s": round(ceiling_rate),
              "ratio": round(ingest_rate / ceiling_rate, 3), "target_ratio": 0.5,
              "simulate_seconds": round(sim_s, 2)}
    if json_out:
        print_json(result)
    else:
        console.print(f"ingest  {result['ingest_rows_per_s']:>12,} rows/s  "
                      f"({summary.seconds:.2f} s for {points:,} points)")
        console.print(f"ceiling {result['ceiling_rows_per_s']:>12,} rows/s  "
                      f"(COPY into an UNLOGGED, unindexed table, {ceiling_s:.2f} s)")
        console.print(f"ratio   {result['ratio']:.3f} (target ≥ 0.5)")
    return result
