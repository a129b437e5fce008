"""`secinf bench pipeline --parallel N`: per-source work on N backends against one.

*Several sources at plaza density.* The 1x crowd's points are split over `sources` scenes
of their own (seeds 1, 2, …; the same density), loaded as one project's sources and worked
to completion three ways per repeat, the order rotating, the tables emptied between: by
`pipeline.tick()` (every source in one transaction, then each source's pair rows), and by
per-source units (`pipeline.run_source`, as a worker's `pipeline_tick_source` job runs it,
then the source's pair rows as the candidates stage computes them) on one backend and on
N, each backend taking the next source when it is free. The four features' wall time is
kinematics, zone presence and change points plus the pair rows. Target: ≥ 100k points/s on
N = 2 and ≥ 1.8x one backend.

*A dense source beside a light one.* UCY students001 (about 22k points, the default
ontology) and a short simulated corridor in one project, ticked together, on one lane and
on N: how long after the tick began the light source's range was committed, set against
its settle time (settle_s): the light source's freshness while the dense one works.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from workers import tenancy
from workers.bench.real_scene import DATA_DIR, cut_file, time_pair_rows
from workers.errors import UserError
from workers.ingest import IngestRequest, ingest
from workers.pipeline import tick
from workers.pipeline.lanes import lane_conninfo
from workers.pipeline.report import SourceResult
from workers.pipeline.scene_copy import load_result
from workers.pipeline.source_jobs import run_source
from workers.rules import store
from workers.rules.ontology import load_ontology
from workers.settings import ONTOLOGIES_DIR
from workers.simulate import SimResult, preset_config, simulate

TARGET_POINTS_PER_S = 100_000
TARGET_SPEEDUP = 1.8
DENSE_FILE = "students001.txt"


def empty_tables(conn: psycopg.Connection[Any]) -> None:
    """Remove every source with its points and features (the hypertables' chunks go too),
    so each run meets empty tables and makes its day's chunks anew.

    That is the case where lanes used to wait on each other: TimescaleDB holds a
    hypertable's lock from a chunk's creation to the end of the creating transaction, and
    the lane whose kinematics stage made the day's chunk kept every other lane writing that
    day waiting for its whole stage (5-13 % of the two-lane wall time, sampled 2026-12-07).
    pipeline.run_source now makes a range's chunks in its short plan step, before the
    stages (pipeline.prepare_chunks), so this bench times that path each round."""
    conn.execute("TRUNCATE ingest.track_points, features.kinematics, features.zone_presence, "
                 "features.change_points")
    conn.execute("DELETE FROM ingest.sources")  # cascades to watermarks, batches, runs
    conn.commit()


class _Backends:
    """`n` connections as `pipeline`, kept open for the whole run like a worker pool's, so
    each is warm (PL/Python and numpy loaded, plans cached) before anything is timed."""

    def __init__(self, conn: psycopg.Connection[Any], n: int) -> None:
        info = lane_conninfo(conn)
        self.conns = [psycopg.connect(info, autocommit=True, row_factory=dict_row)
                      for _ in range(n)]
        for c in self.conns:
            c.execute("SET ROLE pipeline")

    def close(self) -> None:
        for c in self.conns:
            c.close()

    def each(self, sources: list[int], work: Callable[[psycopg.Connection[Any], int], Any]
             ) -> tuple[float, list[Any]]:
        """Wall seconds to do `work` for every source, the connections taking the next
        source as they become free (as worker slots take jobs); the results."""
        todo = list(sources)
        lock = threading.Lock()
        results: list[Any] = []
        failures: list[BaseException] = []

        def slot(c: psycopg.Connection[Any]) -> None:
            try:
                while True:
                    with lock:
                        if not todo:
                            return
                        source = todo.pop(0)
                    out = work(c, source)
                    with lock:
                        results.append(out)
            except BaseException as exc:  # re-raised in the caller's thread
                failures.append(exc)

        started = time.perf_counter()
        threads = [threading.Thread(target=slot, args=(c,), daemon=True) for c in self.conns]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if failures:
            raise failures[0]
        return time.perf_counter() - started, results


def _work_source(c: psycopg.Connection[Any], source: int) -> list[SourceResult]:
    results = run_source(c, source)
    if results is None or any(r.status != "ok" for r in results):
        raise UserError(f"bench work of source {source} failed: {results}")
    return results


def _pairs(c: psycopg.Connection[Any], source: int) -> float:
    """The source's pair rows in a transaction of their own (time_pair_rows's SET LOCALs)."""
    c.autocommit = False
    try:
        return time_pair_rows(c, source)[0]
    finally:
        c.autocommit = True


def _unit(c: psycopg.Connection[Any], source: int) -> tuple[list[SourceResult], float]:
    """One source's whole unit, as a `pipeline_tick_source` job works it: its range through
    the stages, then its pair rows (the candidates stage's first step, in the same job),
    before the lane takes the next source; the results and the pair rows' seconds."""
    return _work_source(c, source), _pairs(c, source)


def _load(conn: psycopg.Connection[Any], project: str, scenes: list[SimResult]) -> list[int]:
    empty_tables(conn)
    return [load_result(conn, project, s, name=f"plaza-{i}") for i, s in enumerate(scenes)]


def _by_sources(conn: psycopg.Connection[Any], project: str, scenes: list[SimResult],
                backends: _Backends) -> dict[str, Any]:
    """Every source's unit (its range by pipeline.run_source, then its pair rows) on the
    backends, each taking the next source as it becomes free. One pass, not a pass of
    ranges and then one of pair rows: a second barrier would idle a lane at each pass's
    end, which a worker's jobs never do. pairs_s sums the lanes' pair-row seconds."""
    sources = _load(conn, project, scenes)
    features_s, units = backends.each(sources, _unit)
    points = sum(r.points for rs, _ in units for r in rs)
    pairs_s = sum(p for _, p in units)
    return {"backends": len(backends.conns), "points": points,
            "pairs_s": round(pairs_s, 3), "features_s": round(features_s, 3),
            "points_per_s": round(points / features_s) if features_s else None}


def _one_transaction(conn: psycopg.Connection[Any], project: str,
                     scenes: list[SimResult]) -> dict[str, Any]:
    """The same sources by pipeline.tick(): one backend, one transaction per tick."""
    sources = _load(conn, project, scenes)
    report = tick(conn, until_idle=True)
    if report.errors:
        raise UserError(f"bench tick failed: {report.errors[0].error}")
    pairs_s = sum(time_pair_rows(conn, s)[0] for s in sources)
    features_s = report.seconds + pairs_s
    return {"backends": 1, "points": report.points, "tick_s": round(report.seconds, 3),
            "pairs_s": round(pairs_s, 3), "features_s": round(features_s, 3),
            "points_per_s": round(report.points / features_s) if features_s else None}


def run_parallel_sources(conn: psycopg.Connection[Any], project: str, scenes: list[SimResult],
                         lanes: int, repeat: int, warm_up: SimResult) -> dict[str, Any]:
    """The several-sources figures (see the module text): medians over `repeat` rounds,
    each timing pipeline.tick(), run_source on one backend and run_source on `lanes`, in
    an order that rotates."""
    one, many = _Backends(conn, 1), _Backends(conn, lanes)
    try:
        warm = _load(conn, project, [warm_up] * lanes)
        many.each(warm, _unit)
        one.each(_load(conn, project, [warm_up]), _unit)
        rounds = []
        arms = ("transaction", "one", "many")
        for i in range(repeat):
            order = arms[i % 3:] + arms[:i % 3]
            runs = {arm: (_one_transaction(conn, project, scenes) if arm == "transaction"
                          else _by_sources(conn, project, scenes,
                                           one if arm == "one" else many))
                    for arm in order}
            rounds.append({"order": ", ".join(order), **runs,
                           "speedup": round(runs["one"]["features_s"]
                                            / runs["many"]["features_s"], 2)})
    finally:
        one.close()
        many.close()
    empty_tables(conn)

    def median(arm: str) -> float:
        return float(statistics.median(r[arm]["features_s"] for r in rounds))

    points = rounds[0]["one"]["points"]
    return {"sources": len(scenes), "points": points, "backends": lanes,
            "transaction_features_s": median("transaction"),
            "transaction_points_per_s": round(points / median("transaction")),
            "one_backend_features_s": median("one"),
            "one_backend_points_per_s": round(points / median("one")),
            "parallel_features_s": median("many"),
            "parallel_points_per_s": round(points / median("many")),
            "speedup": statistics.median(r["speedup"] for r in rounds),
            "target_points_per_s": TARGET_POINTS_PER_S, "target_speedup": TARGET_SPEEDUP,
            "rounds": rounds}


def _light_lag(conn: psycopg.Connection[Any], slug: str, lanes: int, data_dir: Path,
               dense_points: int | None) -> dict[str, Any]:
    """One project with the dense file then the light scene, ticked on `lanes`; when the
    light source's range committed, counted from the tick's start."""
    project = tenancy.create_project(conn, "bench-org", slug)
    pid = str(project["project_id"])
    conn.commit()
    store.load(conn, pid, load_ontology(ONTOLOGIES_DIR / "default.yaml"))
    with tempfile.TemporaryDirectory(prefix="secinf-bench-dense-") as tmp:
        ingest(conn, IngestRequest(project=f"{project['org']}/{project['slug']}",
                                   source="dense", fmt="eth",
                                   path=cut_file(data_dir / DENSE_FILE, dense_points,
                                                 Path(tmp))))
    light = load_result(conn, pid, simulate(preset_config("corridor", seed=1, duration=20)),
                        name="light")
    at = conn.execute("SELECT clock_timestamp() AS t").fetchone()
    conn.commit()
    assert at is not None
    started = at["t"]
    report = tick(conn, until_idle=True, parallel=lanes)
    if report.errors:
        raise UserError(f"bench tick of the dense and light sources failed: "
                        f"{report.errors[0].error}")
    row = conn.execute(
        "SELECT extract(epoch FROM max(r.finished_at) FILTER (WHERE r.source_id = %s) - %s)"
        "::float8 AS light_s, extract(epoch FROM max(r.finished_at) - %s)::float8 AS all_s, "
        "pipeline.setting_float(%s, 'settle_s') AS settle_s "
        "FROM pipeline.runs r WHERE r.project_id = %s",
        (light, started, started, pid, pid)).fetchone()
    conn.commit()
    assert row is not None
    return {"lanes": lanes, "light_lag_s": round(row["light_s"], 3),
            "dense_done_s": round(row["all_s"], 3), "settle_s": row["settle_s"],
            "light_within_settle": row["light_s"] < row["settle_s"]}


def run_dense_and_light(conn: psycopg.Connection[Any], lanes: int,
                        data_dir: Path = DATA_DIR,
                        dense_points: int | None = None) -> dict[str, Any]:
    """The light source's lag beside a dense one, on one lane and on `lanes`."""
    if not (data_dir / DENSE_FILE).is_file():
        return {"skipped": f"no {DENSE_FILE} under {data_dir} (the shared data sets are "
                           "not here)"}
    one = _light_lag(conn, "dense-light-1", 1, data_dir, dense_points)
    many = _light_lag(conn, f"dense-light-{lanes}", lanes, data_dir, dense_points)
    return {"one_lane": one, "parallel": many}


def print_parallel(figures: dict[str, Any]) -> None:
    """The summary lines of run_parallel_sources and run_dense_and_light."""
    from workers.cli.output import console

    p = figures["several_sources"]
    console.print(f"{p['sources']} sources at plaza density, {p['points']} points, four "
                  f"features: pipeline.tick() {p['transaction_features_s']} s = "
                  f"{p['transaction_points_per_s']} points/s; per-source units on one "
                  f"backend {p['one_backend_features_s']} s = "
                  f"{p['one_backend_points_per_s']} points/s, on {p['backends']} backends "
                  f"{p['parallel_features_s']} s = {p['parallel_points_per_s']} points/s "
                  f"(target {p['target_points_per_s']:,}); {p['speedup']}x (median of "
                  f"{len(p['rounds'])}; target ≥ {p['target_speedup']}x)")
    d = figures["dense_and_light"]
    if "skipped" in d:
        console.print(f"dense and light sources skipped: {d['skipped']}")
        return
    for run in (d["one_lane"], d["parallel"]):
        within = "within" if run["light_within_settle"] else "PAST"
        console.print(f"dense + light source on {run['lanes']} lane(s): the light source "
                      f"done {run['light_lag_s']} s after the start ({within} its settle "
                      f"time {run['settle_s']:g} s), the dense one {run['dense_done_s']} s")
