"""`secinf bench pipeline`: simulate a crowd at plaza density, ingest it, tick to completion.

Reports points/s through the four features (the three stored stages timed inside the tick,
see `ms` in pipeline.tick()'s result, plus the pair rows, which are not stored since 0013:
features.pair_rows() over the source, timed after the tick, as the candidates stage computes
them), per stage and for the whole tick (which also runs stages
other concerns registered), the same kinematics computed by Polars in memory in the same
run (and the ratio), and a scaling figure: the features time with twice the actors at the
same density divided by the time at 1x (target ≤ 2.2). It also measures the write floor
(workers/bench/write_floor.py): the 1x outputs inserted again into empty twins of the
feature tables, i.e. the share of the time no way of computing could remove, set against
the 100k points/s target's budget. Last, a dense real scene (workers/bench/real_scene.py:
UCY students001 + students003 with the default ontology) runs the whole tick, candidates
included, and its candidates stage again alone (in-tick ÷ alone, target ≤ 2); it is skipped,
with the reason printed, where the shared data sets are absent. The simulated project has
no ontology, so its whole tick runs no rules. Runs in a throw-away database created beside
the configured one, migrated, and dropped afterwards.

The shared machine's load changes run to run, so the run makes `repeat` pairs (1x then 2x,
then 2x then 1x, …; the tables are emptied between pairs) and reports medians: per stage,
in total, and of the pairs' scaling ratios, with every pair in the JSON. Both scales come
from the same seed, and a short warm-up tick runs first, so that the backend's one-off start
(PL/Python, first plans) is not charged to the first scale timed. The figures are therefore
for a warm backend: a pg_cron run starts a new backend each time and pays that start, about
0.1-0.2 s, once per run.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl
import psycopg

from workers import tenancy
from workers.bench.parallel_sources import (
    empty_tables,
    print_parallel,
    run_dense_and_light,
    run_parallel_sources,
)
from workers.bench.real_scene import DATA_DIR, run_real_scene, time_pair_rows
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
SEED = 1
"""Both scales use the same seed: seeds alone move the close pairs per point by 2.5x
(0.053 to 0.135 over seeds 1-4 at the default size), which a scaling figure must not mix in."""
WARM_UP_S = 10.0
TARGET_POINTS_PER_S = 100_000
STAGES = ("kinematics", "zone_presence", "change_points")
FEATURES = (*STAGES, "pairs")


def _crowd(agents: int, seed: int) -> SimResult:
    """A crowd scene: background lanes widen with the agents, so density stays the same."""
    return simulate(preset_config("crowd", seed=seed, duration=DURATION, agents=agents))


def _agents_for(points: int) -> int:
    probe = _crowd(100, 0)
    per_agent = max(1.0, probe.tracks.height / 100)
    return max(20, round(points / per_agent))


def _run(conn: psycopg.Connection[Any], project: str, result: SimResult, name: str,
         pieces: list[pl.DataFrame] | None = None) -> dict[str, Any]:
    """Load the scene (or just `pieces` of its tracks) as source `name` and tick it to
    completion; the tick's figures."""
    started = time.perf_counter()
    source_id = load_result(conn, project, result, pieces=pieces, name=name)
    load_s = time.perf_counter() - started
    report = tick(conn, until_idle=True)
    if report.errors:
        raise UserError(f"bench tick of {name} failed: {report.errors[0].error}")
    stages = dict(report.stage_seconds)
    missing = [s for s in STAGES if s not in stages]
    if missing:
        raise UserError(f"bench tick ran no {', '.join(missing)} stage; check pipeline.stages")
    stages["pairs"], pair_rows = time_pair_rows(conn, source_id)
    features_s = sum(stages[s] for s in FEATURES)
    return {"source_id": source_id, "points": report.points, "load_s": round(load_s, 3),
            "tick_s": round(report.seconds, 3), "features_s": round(features_s, 3),
            "points_per_s": round(report.points / features_s) if features_s else None,
            "tick_points_per_s": round(report.points / report.seconds) if report.seconds else None,
            "stage_s": {k: round(v, 3) for k, v in stages.items()},
            "stage_points_per_s": {s: round(report.points / stages[s]) if stages[s] else None
                                   for s in FEATURES},
            "rows": {**report.rows, "pairs": pair_rows}}


def _empty(conn: psycopg.Connection[Any]) -> None:
    """Remove the previous pair's points, features and sources, so every pair meets the same
    (empty) tables."""
    empty_tables(conn)


def _warm_up(conn: psycopg.Connection[Any], project: str, scene: SimResult) -> float:
    """Tick the scene's first seconds once and empty the tables again: the backend's first
    PL/Python call (interpreter and numpy, 0.1-0.2 s) and the stage functions' first plans
    would otherwise land on whichever scale runs first and skew the scaling ratio."""
    run = _run(conn, project, scene, "crowd-warm-up",
               pieces=[scene.tracks.filter(pl.col("t") < WARM_UP_S)])
    _empty(conn)
    return float(run["tick_s"])


def _polars_seconds(result: SimResult) -> float:
    started = time.perf_counter()
    polars_kinematics(result.tracks.select("track_id", "frame", "t", "x", "y"),
                      smoothing_s=1.0, gap_s=1.0)
    return time.perf_counter() - started


def _pair(conn: psycopg.Connection[Any], project: str, one: SimResult, two: SimResult,
          index: int) -> dict[str, Any]:
    """Tick the 1x and the 2x scene once each; the order alternates with the pair's index."""
    runs: dict[str, dict[str, Any]] = {}
    for scale in (("1x", "2x") if index % 2 == 0 else ("2x", "1x")):
        runs[scale] = _run(conn, project, one if scale == "1x" else two,
                           f"crowd-{scale}-{index + 1}")
    polars_s = _polars_seconds(one)
    first, second = runs["1x"], runs["2x"]
    return {"order": "1x, 2x" if index % 2 == 0 else "2x, 1x", "one_x": first, "two_x": second,
            "polars_kinematics_s": round(polars_s, 3),
            "db_kinematics_vs_polars_ratio": round(first["stage_s"]["kinematics"] / polars_s, 2),
            "scaling_2x_over_1x": round(second["features_s"] / first["features_s"], 2),
            "tick_scaling_2x_over_1x": round(second["tick_s"] / first["tick_s"], 2)}


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-stage and total medians over repeated runs of the same scene."""
    points = runs[0]["points"]
    features_s = statistics.median(r["features_s"] for r in runs)
    tick_s = statistics.median(r["tick_s"] for r in runs)
    stage_s = {k: round(statistics.median(r["stage_s"][k] for r in runs), 3)
               for k in runs[0]["stage_s"]}
    return {"points": points, "features_s": features_s, "tick_s": tick_s,
            "points_per_s": round(points / features_s) if features_s else None,
            "tick_points_per_s": round(points / tick_s) if tick_s else None,
            "stage_s": stage_s,
            "stage_points_per_s": {s: round(points / stage_s[s]) if stage_s[s] else None
                                   for s in FEATURES},
            "features_s_min": min(r["features_s"] for r in runs),
            "features_s_max": max(r["features_s"] for r in runs),
            "rows": runs[-1]["rows"]}


def bench_pipeline(points: int, json_out: bool, repeat: int = 3, real: bool = True,
                   real_points: int | None = None, data_dir: Path = DATA_DIR,
                   real_lanes: int = 2, parallel: int = 1,
                   parallel_sources: int = 4) -> dict[str, Any]:
    """Run the benchmark `repeat` times (pairs of 1x and 2x ticks in alternating order,
    medians reported), then the real scene (`real`; each file cut to its first
    `real_points` lines if given); with `parallel` > 1, the 1x points again as
    `parallel_sources` sources on one backend and on `parallel`, and a dense source beside a
    light one (workers/bench/parallel_sources.py); prints a summary (or JSON) and returns
    the figures."""
    if points < 1000:
        raise UserError(f"--points {points} is too small to time; use at least 1000")
    if repeat < 1:
        raise UserError(f"--repeat {repeat}: use at least 1")
    settings = load_settings()
    pairs: list[dict[str, Any]] = []
    with scratch_database("pipeline", settings) as target:
        agents = _agents_for(points)
        one, two = _crowd(agents, SEED), _crowd(2 * agents, SEED)
        with connect(settings, conninfo=target) as conn:
            project = str(tenancy.create_project(conn, "bench-org", "bench")["project_id"])
            conn.commit()
            warm_up_s = _warm_up(conn, project, one)
            for i in range(repeat):
                if i:
                    _empty(conn)
                pairs.append(_pair(conn, project, one, two, i))
                if not json_out:
                    p = pairs[-1]
                    console.print(f"pair {i + 1}/{repeat} ({p['order']}): 1x "
                                  f"{p['one_x']['features_s']} s, 2x {p['two_x']['features_s']}"
                                  f" s, scaling {p['scaling_2x_over_1x']}")
            floor = measure_write_floor(conn, pairs[-1]["one_x"]["source_id"])
            several: dict[str, Any] | None = None
            if parallel > 1:
                scenes = [_crowd(_agents_for(points // parallel_sources), SEED + i)
                          for i in range(parallel_sources)]
                warm = replace(scenes[0],
                               tracks=scenes[0].tracks.filter(pl.col("t") < WARM_UP_S))
                several = {"several_sources": run_parallel_sources(conn, project, scenes,
                                                                   parallel, repeat, warm),
                           "dense_and_light": run_dense_and_light(
                               conn, parallel, data_dir, real_points) if real else
                           {"skipped": "not asked for (--no-real)"}}
            if real:
                _empty(conn)
                real_scene = run_real_scene(conn, data_dir, real_points, real_lanes)
            else:
                real_scene = {"skipped": "not asked for (--no-real)"}
    first = _median_run([p["one_x"] for p in pairs])
    second = _median_run([p["two_x"] for p in pairs])
    budget_s = first["points"] / TARGET_POINTS_PER_S
    polars_s = statistics.median(p["polars_kinematics_s"] for p in pairs)
    scalings = [p["scaling_2x_over_1x"] for p in pairs]
    figures = {
        "loader": "COPY into a staging table + ingest.merge_staged (the ingest merge)",
        "agents": agents, "duration_s": DURATION, "seed": SEED, "repeat": repeat,
        "warm_up_s": warm_up_s,
        "relation_pairs_per_point": {
            "one_x": round(first["rows"]["pairs"] / 2 / first["points"], 4),
            "two_x": round(second["rows"]["pairs"] / 2 / second["points"], 4)},
        "one_x": first, "two_x": second,
        "polars_kinematics_s": polars_s,
        "polars_points_per_s": round(first["points"] / polars_s) if polars_s else None,
        "db_kinematics_vs_polars_ratio":
            statistics.median(p["db_kinematics_vs_polars_ratio"] for p in pairs),
        "db_features_vs_polars_ratio":
            round(first["features_s"] / polars_s, 2) if polars_s else None,
        "scaling_2x_over_1x": statistics.median(scalings),
        "scaling_min": min(scalings), "scaling_max": max(scalings), "target_scaling": 2.2,
        "tick_scaling_2x_over_1x": statistics.median(p["tick_scaling_2x_over_1x"]
                                                     for p in pairs),
        "target_points_per_s": TARGET_POINTS_PER_S,
        "target_budget_s": round(budget_s, 3),
        "write_floor": floor,
        "write_floor_share_of_features":
            round(floor["total_s"] / first["features_s"], 3) if first["features_s"] else None,
        "write_floor_share_of_budget": round(floor["total_s"] / budget_s, 3),
        "points_per_s_if_computing_were_free":
            round(first["points"] / floor["total_s"]) if floor["total_s"] else None,
        "whole_tick_points_per_s": {"simulated_1x": first["tick_points_per_s"],
                                    "real": real_scene.get("tick_points_per_s")},
        "real_scene": real_scene,
        "parallel": several,
        "pairs": pairs,
    }
    if json_out:
        print_json(figures)
    else:
        _print_summary(figures)
    return figures


def _print_summary(figures: dict[str, Any]) -> None:
    first, second, floor = figures["one_x"], figures["two_x"], figures["write_floor"]
    console.print(f"features: {first['points']} points in {first['features_s']} s "
                  f"(median of {figures['repeat']}; {first['features_s_min']} to "
                  f"{first['features_s_max']}) = {first['points_per_s']} points/s (all four "
                  f"features; whole tick {first['tick_s']} s = {first['tick_points_per_s']} "
                  f"points/s)")
    for stage in FEATURES:
        console.print(f"  {stage}: {first['stage_s'][stage]} s "
                      f"= {first['stage_points_per_s'][stage]} points/s")
    console.print(f"polars kinematics in memory: {figures['polars_points_per_s']} points/s; "
                  f"database kinematics ÷ polars time = "
                  f"{figures['db_kinematics_vs_polars_ratio']}")
    density = figures["relation_pairs_per_point"]
    console.print(f"2x actors at the same density: {second['features_s']} s, "
                  f"ratio {figures['scaling_2x_over_1x']} (median; {figures['scaling_min']} to "
                  f"{figures['scaling_max']}; target ≤ 2.2); close pairs per point "
                  f"{density['one_x']} at 1x, {density['two_x']} at 2x")
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
    _print_real(figures["real_scene"], first)
    if figures["parallel"]:
        print_parallel(figures["parallel"])


def _print_real(real: dict[str, Any], first: dict[str, Any]) -> None:
    if "skipped" in real:
        console.print(f"real scene skipped: {real['skipped']}")
        return
    cut = f", first {real['cut_points_per_file']} points of each" \
        if real["cut_points_per_file"] else ""
    console.print(f"real scene ({' + '.join(real['files'])}{cut}, {real['ontology']} "
                  f"ontology, {real['relation_pairs_per_point']} close pairs per point): "
                  f"whole tick {real['points']} points in {real['tick_s']} s = "
                  f"{real['tick_points_per_s']} points/s (target "
                  f"{real['target_points_per_s']:,}); simulated 1x whole tick (no rules): "
                  f"{first['tick_points_per_s']} points/s")
    parts = ", ".join(f"{k} {v} s" for k, v in real["stage_s"].items())
    console.print(f"  in the tick: {parts}")
    console.print(f"  candidates alone afterwards: {real['candidates_alone_s']} s; in-tick ÷ "
                  f"alone = {real['candidates_in_tick_over_alone']} (target ≤ "
                  f"{real['target_in_tick_over_alone']:g})")
    lanes = real.get("parallel")
    if lanes:
        same = "the same" if lanes["same_candidates_as_one_lane"] else "DIFFERENT"
        console.print(f"  on {lanes['lanes']} parallel lanes: whole tick {lanes['tick_s']} s = "
                      f"{lanes['tick_points_per_s']} points/s, {same} candidates")
