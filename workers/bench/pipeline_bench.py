"""`secinf bench pipeline`: simulate a crowd at plaza density, ingest it, tick to completion.

Reports points/s through the four feature stages (each stage timed inside the tick, see
`ms` in pipeline.tick()'s result), per stage and for the whole tick (which also runs stages
other concerns registered), the same kinematics computed by Polars in memory in the same
run (and the ratio), and a scaling figure: the features time with twice the actors at the
same density divided by the time at 1x (target ≤ 2.2). It also measures the write floor
(workers/bench/write_floor.py): the 1x outputs inserted again into empty twins of the
feature tables, i.e. the share of the time no way of computing could remove, set against
the 100k points/s target's budget. Runs in a throw-away database created beside the
configured one, migrated, and dropped afterwards.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg

from workers import tenancy
from workers.bench.scratch import scratch_database
from workers.bench.write_floor import measure_write_floor
from workers.cli.output import console, print_json
from workers.db.connect import connect
from workers.errors import UserError
from workers.pipeline.reference import kinematics as polars_kinematics
from workers.pipeline.runner import tick
from workers.pipeline.scene_copy import load_result
from workers.settings import load_settings
from workers.simulate import SimResult, preset_config, simulate

DURATION = 120.0
TARGET_POINTS_PER_S = 100_000
FEATURES = ("kinematics", "zone_presence", "relations", "change_points")


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
    source_id = load_result(conn, project, result, name=name)
    load_s = time.perf_counter() - started
    report = tick(conn, until_idle=True)
    if report.errors:
        raise UserError(f"bench tick failed: {report.errors[0].error}")
    stages = report.stage_seconds
    missing = [s for s in FEATURES if s not in stages]
    if missing:
        raise UserError(f"bench tick ran no {', '.join(missing)} stage; check pipeline.stages")
    features_s = sum(stages[s] for s in FEATURES)
    return {"source_id": source_id, "points": report.points, "load_s": round(load_s, 3),
            "tick_s": round(report.seconds, 3), "features_s": round(features_s, 3),
            "points_per_s": round(report.points / features_s) if features_s else None,
            "tick_points_per_s": round(report.points / report.seconds) if report.seconds else None,
            "stage_s": {k: round(v, 3) for k, v in stages.items()},
            "stage_points_per_s": {s: round(report.points / stages[s]) if stages[s] else None
                                   for s in FEATURES},
            "rows": report.rows}


def bench_pipeline(points: int, json_out: bool) -> dict[str, Any]:
    """Run the benchmark; prints a summary (or JSON) and returns the figures."""
    if points < 1000:
        raise UserError(f"--points {points} is too small to time; use at least 1000")
    settings = load_settings()
    with scratch_database("pipeline", settings) as target:
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
            floor = measure_write_floor(conn, first["source_id"])
        budget_s = first["points"] / TARGET_POINTS_PER_S
        figures = {
            "loader": "COPY into a staging table + ingest.merge_staged (the ingest merge)",
            "agents": agents, "duration_s": DURATION, "one_x": first, "two_x": second,
            "polars_kinematics_s": round(polars_s, 3),
            "polars_points_per_s": round(ref.height / polars_s) if polars_s else None,
            "db_kinematics_vs_polars_ratio":
                round(first["stage_s"]["kinematics"] / polars_s, 2) if polars_s else None,
            "db_features_vs_polars_ratio":
                round(first["features_s"] / polars_s, 2) if polars_s else None,
            "scaling_2x_over_1x": round(second["features_s"] / first["features_s"], 2)
            if first["features_s"] else None,
            "tick_scaling_2x_over_1x": round(second["tick_s"] / first["tick_s"], 2)
            if first["tick_s"] else None,
            "target_points_per_s": TARGET_POINTS_PER_S,
            "target_budget_s": round(budget_s, 3),
            "write_floor": floor,
            "write_floor_share_of_features":
                round(floor["total_s"] / first["features_s"], 3) if first["features_s"] else None,
            "write_floor_share_of_budget": round(floor["total_s"] / budget_s, 3),
            "points_per_s_if_computing_were_free":
                round(first["points"] / floor["total_s"]) if floor["total_s"] else None,
        }
    if json_out:
        print_json(figures)
    else:
        console.print(f"features: {first['points']} points in {first['features_s']} s "
                      f"= {first['points_per_s']} points/s (all four stages; whole tick "
                      f"{first['tick_s']} s = {first['tick_points_per_s']} points/s)")
        for stage in FEATURES:
            console.print(f"  {stage}: {first['stage_s'][stage]} s "
                          f"= {first['stage_points_per_s'][stage]} points/s")
        console.print(f"polars kinematics in memory: {figures['polars_points_per_s']} points/s; "
                      f"database kinematics ÷ polars time = "
                      f"{figures['db_kinematics_vs_polars_ratio']}")
        console.print(f"2x actors at the same density: {second['features_s']} s, "
                      f"ratio {figures['scaling_2x_over_1x']} (target ≤ 2.2)")
        parts = ", ".join(f"{t} {s} s" for t, s in floor["seconds"].items())
        console.print(f"write floor (the 1x outputs inserted again, no computing): "
                      f"{floor['total_s']} s ({parts}) = "
                      f"{figures['write_floor_share_of_features']:.0%} of the features time, "
                      f"{figures['write_floor_share_of_budget']:.0%} of the "
                      f"{figures['target_budget_s']} s that {TARGET_POINTS_PER_S:,} points/s "
                      f"allows; if computing were free: "
                      f"{figures['points_per_s_if_computing_were_free']} points/s")
        if not floor["checkpointed"]:
            console.print("[yellow]no CHECKPOINT before the write floor (the role lacks "
                          "pg_checkpoint): expect a noisier floor[/yellow]")
    return figures


