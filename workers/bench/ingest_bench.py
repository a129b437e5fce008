"""`secinf bench ingest`: the real ingest path against the server's COPY ceiling.

Simulates N points (the crowd preset, scaled), ingests them through `workers.ingest` into a
scratch project, and COPYs the same rows into an UNLOGGED, unindexed table. The ratio
ingest rate / ceiling rate says how much of the server's raw write speed ingest keeps.

On a shared machine one pair of timings is noise-bound (the previous phase's dirty buffers
are still being written while the next one runs), so the run makes `repeat` pairs: each
phase starts after a CHECKPOINT (when the role may issue one), the order alternates
between pairs (ceiling first, then ingest first) and the tables are emptied between pairs.
The reported ratio is the median of the pairs' ratios; every pair is printed too.
"""

from __future__ import annotations

import math
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import polars as pl
from psycopg import sql

from workers import tenancy
from workers.bench.scratch import scratch_database, settle
from workers.db.connect import connect
from workers.ingest import IngestRequest, ingest
from workers.ingest.schema import DEFAULT_TIME_ORIGIN, ts_from_seconds
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


def _ceiling_payload(path: Path) -> bytes:
    """The rows as CSV, the way a client sends them to COPY (built once, outside timing)."""
    frame = pl.read_parquet(path).select(
        "track_id", "frame",
        ts_from_seconds(DEFAULT_TIME_ORIGIN).alias("ts"),
        "x", "y", "class", pl.col("confidence").cast(pl.Float32))
    return frame.write_csv(include_header=False).encode()


def _ceiling(conn: Any, payload: bytes) -> float:
    """Seconds to COPY the rows into an unlogged, unindexed table (dropped afterwards)."""
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


def _empty(conn: Any) -> None:
    """Remove the previous pair's points so every ingest meets the same (empty) tables."""
    conn.execute("TRUNCATE ingest.track_points, ingest.batches")
    conn.commit()


def _pair(conn: Any, path: Path, payload: bytes, ceiling_first: bool) -> dict[str, Any]:
    settled = True
    times: dict[str, float] = {}
    inserted = invalid = 0
    for phase in (("ceiling", "ingest") if ceiling_first else ("ingest", "ceiling")):
        settled = settle(conn) and settled
        if phase == "ceiling":
            times["ceiling"] = _ceiling(conn, payload)
            continue
        slug = f"ingest-{uuid.uuid4().hex[:8]}"
        tenancy.create_project(conn, "bench", slug)
        summary = ingest(conn, IngestRequest(project=f"bench/{slug}", source="crowd",
                                             path=path))
        times["ingest"] = summary.seconds
        inserted, invalid = summary.inserted, summary.invalid
    return {"ingest_seconds": round(times["ingest"], 3),
            "ceiling_seconds": round(times["ceiling"], 3),
            "ratio": round(times["ceiling"] / times["ingest"], 3),
            "order": "ceiling, ingest" if ceiling_first else "ingest, ceiling",
            "inserted": inserted, "invalid": invalid, "checkpointed": settled}


def bench_ingest(points: int, json_out: bool, repeat: int = 3) -> dict[str, Any]:
    """Measure both rates `repeat` times in one run; returns (and prints unless json_out)
    the figures."""
    from workers.cli.output import console, print_json

    with tempfile.TemporaryDirectory(prefix="secinf-bench-") as tmp:
        t0 = time.perf_counter()
        path = simulate_points(points, Path(tmp))
        sim_s = time.perf_counter() - t0
        payload = _ceiling_payload(path)
        pairs: list[dict[str, Any]] = []
        with scratch_database("ingest") as target, connect(conninfo=target) as conn:
            conn.execute("SET temp_buffers = '256MB'")  # as `secinf ingest` does
            conn.commit()
            for i in range(repeat):
                if i:
                    _empty(conn)
                pairs.append(_pair(conn, path, payload, ceiling_first=i % 2 == 0))
                if not json_out:
                    p = pairs[-1]
                    console.print(f"pair {i + 1}/{repeat} ({p['order']}): ingest "
                                  f"{p['ingest_seconds']:.2f} s, ceiling "
                                  f"{p['ceiling_seconds']:.2f} s, ratio {p['ratio']:.3f}")
    ratio = statistics.median(p["ratio"] for p in pairs)
    ingest_s = statistics.median(p["ingest_seconds"] for p in pairs)
    ceiling_s = statistics.median(p["ceiling_seconds"] for p in pairs)
    result = {"points": points, "inserted": pairs[-1]["inserted"],
              "invalid": pairs[-1]["invalid"], "repeat": repeat,
              "ingest_seconds": ingest_s, "ingest_rows_per_s": round(points / ingest_s),
              "ceiling_seconds": ceiling_s, "ceiling_rows_per_s": round(points / ceiling_s),
              "ratio": ratio, "ratio_min": min(p["ratio"] for p in pairs),
              "ratio_max": max(p["ratio"] for p in pairs), "target_ratio": 0.5,
              "pairs": pairs, "simulate_seconds": round(sim_s, 2)}
    if json_out:
        print_json(result)
    else:
        console.print(f"ingest  {result['ingest_rows_per_s']:>12,} rows/s  "
                      f"(median {ingest_s:.2f} s for {points:,} points)")
        console.print(f"ceiling {result['ceiling_rows_per_s']:>12,} rows/s  "
                      f"(COPY into an UNLOGGED, unindexed table, median {ceiling_s:.2f} s)")
        console.print(f"ratio   {ratio:.3f} median of {repeat} pairs "
                      f"({result['ratio_min']:.3f} to {result['ratio_max']:.3f}; target ≥ 0.5)")
        if not all(p["checkpointed"] for p in pairs):
            console.print("[yellow]no CHECKPOINT between phases (the role lacks "
                          "pg_checkpoint): expect noisier pairs[/yellow]")
    return result
