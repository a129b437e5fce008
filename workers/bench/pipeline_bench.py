"""`secinf bench pipeline`: simulate a crowd at plaza density, ingest it, tick to completion.

Reports points/s through the four feature stages, the same kinematics computed by Polars in
memory in the same run (and the ratio), and a scaling figure: the tick time with twice the
actors at the same density divided by the time at 1x (target ≤ 2.2). Runs in a throw-away
database created beside the configured one, migrated, and dropped afterwards.
"""

from __future__ import annotations

import os
import time
from typing import Any

import psycopg
from psycopg import sql

from workers import tenancy
from workers.cli.output import console, print_json
from workers.db.connect import connect
from workers.db.migrate import migrate
from workers.errors import UserError
from workers.pipeline.reference import kinematics as polars_kinematics
from workers.pipeline.runner import tick
from workers.pipeline.scene_copy import load_result
from workers.settings import load_settings
from workers.simulate import SimResult, preset_config, simulate

DURATION = 120.0


def _crowd(agents: int, seed: int) -> SimResult:
    """A crowd scene: background lanes widen with the agents, so density stays the same."""
    return simulate(preset_config("crowd", seed=seed, duration=DURATION, agents=agents))


def _agents_for(points: int) -> int:
    probe = _crowd(100, 0)
    per_agent = max(1.0, probe.tracks.height / 100)
    return max(20, round(points / per_agent))


def _run(conn: psycopg.Connection[Any], project: str, result: SimResult, name: str
         ) -> dict[str, Any]:
    started = time.perf_counter()
    load_result(conn, project, result, name=name)
    load_s = time.perf_counter() - started
    report = tick(conn, until_idle=True)
    if report.errors:
        raise UserError(f"bench tick failed: {report.errors[0].error}")
    return {"points": report.points, "load_s": round(load_s, 3),
            "tick_s": round(report.seconds, 3), "rows": report.rows,
            "points_per_s": round(report.points / report.seconds) if report.seconds else None}


def bench_pipeline(points: int, json_out: bool) -> dict[str, Any]:
    """Run the benchmark; prints a summary (or JSON) and returns the figures."""
    if points < 1000:
        raise UserError(f"--points {points} is too small to time; use at least 1000")
    settings = load_settings()
    dbname = f"secinf_bench_{os.getpid()}"
    with connect(settings, dbname="postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    try:
        target = settings.conninfo(dbname=dbname)
        migrate(target)
        agents = _agents_for(points)
        one, two = _crowd(agents, 1), _crowd(2 * agents, 2)
        t0 = time.perf_counter()
        frame = one.tracks.select("track_id", "frame", "t", "x", "y")
        ref = polars_kinematics(frame, window=3, gap_s=1.0)
        polars_s = time.perf_counter() - t0
        with connect(settings, conninfo=target) as conn:
            project = str(tenancy.create_project(conn, "bench-org", "bench")["project_id"])
            conn.commit()
            first = _run(conn, project, one, "crowd-1x")
            second = _run(conn, project, two, "crowd-2x")
        figures = {
            "loader": "COPY into a staging table + ingest.merge_staged (the ingest merge)",
            "agents": agents, "duration_s": DURATION, "one_x": first, "two_x": second,
            "polars_kinematics_s": round(polars_s, 3),
            "polars_points_per_s": round(ref.height / polars_s) if polars_s else None,
            "db_vs_polars_ratio": round(first["tick_s"] / polars_s, 2) if polars_s else None,
            "scaling_2x_over_1x": round(second["tick_s"] / first["tick_s"], 2)
            if first["tick_s"] else None,
        }
    finally:
        with connect(settings, dbname="postgres", autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                          .format(sql.Identifier(dbname)))
    if json_out:
        print_json(figures)
    else:
        console.print(f"features: {first['points']} points in {first['tick_s']} s "
                      f"= {first['points_per_s']} points/s (all four stages)")
        console.print(f"polars kinematics in memory: {figures['polars_points_per_s']} points/s; "
                      f"database ÷ polars time = {figures['db_vs_polars_ratio']}")
        console.print(f"2x actors at the same density: {second['tick_s']} s, "
                      f"ratio {figures['scaling_2x_over_1x']} (target ≤ 2.2)")
    return figures


