"""The pipeline benchmark's dense real scene: UCY students001 and students003.

Both ETH/UCY files (2.5 Hz, ~40k points, ~16 close pairs per point within the 9 m
relation radius) are ingested into a project with the default ontology, and one
`--until-idle` tick runs every stage, the candidates rules included. The tick's stage
seconds are set against the candidates stage run alone afterwards over the same ranges:
after the commit, with the feature tables analyzed (what autovacuum would have done by
then), in a transaction that is rolled back. In-tick ÷ alone ≤ 2 is the target: before the
tick analyzed its own rows (pipeline.analyze_written) it was > 25 on students003.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from workers import tenancy
from workers.errors import UserError
from workers.ingest import IngestRequest, ingest
from workers.pipeline import tick
from workers.rules import store
from workers.rules.ontology import Ontology, load_ontology
from workers.settings import ONTOLOGIES_DIR, REPO_ROOT

FILES = ("students001.txt", "students003.txt")
DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "eth_ucy"
"""The repository's parent's shared/data: the data sets are not part of the repository."""
TARGET_POINTS_PER_S = 20_000
TARGET_IN_TICK_OVER_ALONE = 2.0


def missing_reason(data_dir: Path = DATA_DIR) -> str | None:
    """Why the real scene cannot run (None: it can)."""
    absent = [f for f in FILES if not (data_dir / f).is_file()]
    if absent:
        return f"no {', '.join(absent)} under {data_dir} (the shared data sets are not here)"
    return None


def cut_file(path: Path, points: int | None, into: Path) -> Path:
    """The file itself, or its first `points` lines (the files are in frame order)."""
    if points is None:
        return path
    target = into / path.name
    with path.open() as src, target.open("w") as dst:
        for i, line in enumerate(src):
            if i >= points:
                break
            dst.write(line)
    return target


def time_pair_rows(conn: psycopg.Connection[Any], source_id: int) -> tuple[float, int]:
    """Seconds and rows of every pair row of the source (features.pair_rows), computed as
    the candidates stage does (hash joins only, no JIT), counted rather than stored, in a
    transaction that is rolled back."""
    conn.execute("SET LOCAL jit = off")
    conn.execute("SET LOCAL enable_nestloop = off")
    conn.execute("SET LOCAL enable_mergejoin = off")
    started = time.perf_counter()
    row = conn.execute("SELECT count(*) AS n FROM features.pair_rows(%s, '-infinity', "
                       "'infinity')", (source_id,)).fetchone()
    seconds = time.perf_counter() - started
    conn.rollback()
    n = row["n"] if isinstance(row, dict) else (row[0] if row else 0)
    return seconds, int(n)


def _candidates_alone(conn: psycopg.Connection[Any], project_id: str) -> float:
    """Seconds of the candidates stage over every range the tick ran it on, as the tick
    runs it (owner rights, its work_mem, no JIT), rolled back."""
    runs = conn.execute("SELECT source_id, from_ts::text AS from_ts, to_ts FROM pipeline.runs "
                        "WHERE project_id = %s AND status = 'ok' AND stats ? 'candidates' "
                        "ORDER BY run_id", (project_id,)).fetchall()
    conn.execute("ANALYZE features.kinematics, features.zone_presence, "
                 "features.change_points")
    conn.commit()
    seconds = 0.0
    try:
        conn.execute("SET LOCAL ROLE secinf_owner")
        conn.execute("SET LOCAL work_mem = '256MB'")
        conn.execute("SET LOCAL jit = off")
        for run in runs:
            started = time.perf_counter()
            conn.execute("SELECT candidates.compute_candidates(%s, %s::timestamptz, %s)",
                         (run["source_id"], run["from_ts"], run["to_ts"]))
            seconds += time.perf_counter() - started
    finally:
        conn.rollback()
    return seconds


def _ingested(conn: psycopg.Connection[Any], slug: str, ontology: Ontology, data_dir: Path,
              points: int | None) -> str:
    """A fresh project with the ontology and the two files; its id."""
    project = tenancy.create_project(conn, "bench-org", slug)
    project_id = str(project["project_id"])
    conn.commit()
    store.load(conn, project_id, ontology)
    with tempfile.TemporaryDirectory(prefix="secinf-bench-real-") as tmp:
        for name in FILES:
            ingest(conn, IngestRequest(project=f"{project['org']}/{project['slug']}",
                                       source=name.removesuffix(".txt"), fmt="eth",
                                       path=cut_file(data_dir / name, points, Path(tmp))))
    return project_id


def _candidate_rows(conn: psycopg.Connection[Any], project_id: str) -> list[tuple[Any, ...]]:
    rows = conn.execute(
        "SELECT s.name, c.type, c.actors::text, c.start_ts, c.end_ts, c.rule_score, "
        "c.evidence::text, c.tier FROM candidates.candidates c JOIN ingest.sources s "
        "USING (source_id) WHERE c.project_id = %s ORDER BY 1, 2, 3, 4, 5",
        (project_id,)).fetchall()
    conn.commit()
    return [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in rows]


def _lanes(conn: psycopg.Connection[Any], ontology: Ontology, data_dir: Path,
           points: int | None, lanes: int, serial: list[tuple[Any, ...]]) -> dict[str, Any]:
    """The same scene in a second project, ticked on `lanes` parallel lanes."""
    project_id = _ingested(conn, "students-lanes", ontology, data_dir, points)
    report = tick(conn, until_idle=True, parallel=lanes)
    if report.errors:
        raise UserError(f"bench tick of the real scene on {lanes} lanes failed: "
                        f"{report.errors[0].error}")
    return {"lanes": lanes, "tick_s": round(report.seconds, 3),
            "tick_points_per_s": round(report.points / report.seconds)
            if report.seconds else None,
            "stage_s": {k: round(v, 3) for k, v in report.stage_seconds.items()},
            "same_candidates_as_one_lane": _candidate_rows(conn, project_id) == serial}


def run_real_scene(conn: psycopg.Connection[Any], data_dir: Path = DATA_DIR,
                   points: int | None = None, lanes: int = 2) -> dict[str, Any]:
    """Ingest the two files (each cut to its first `points` lines if given) into a fresh
    project with the default ontology, tick until idle, time the candidates alone; then the
    same on `lanes` parallel lanes in a second project (1: not)."""
    reason = missing_reason(data_dir)
    if reason is not None:
        return {"skipped": reason}
    ontology = load_ontology(ONTOLOGIES_DIR / "default.yaml")
    project_id = _ingested(conn, "students", ontology, data_dir, points)
    report = tick(conn, until_idle=True)
    if report.errors:
        raise UserError(f"bench tick of the real scene failed: {report.errors[0].error}")
    analyzed = [t for r in conn.execute("SELECT stats -> 'analyzed' AS a FROM pipeline.runs "
                                        "WHERE project_id = %s ORDER BY run_id",
                                        (project_id,)).fetchall() for t in (r["a"] or [])]
    alone_s = _candidates_alone(conn, project_id)
    in_tick_s = report.stage_seconds.get("candidates", 0.0)
    sources = [int(r["source_id"]) for r in conn.execute(
        "SELECT source_id FROM ingest.sources WHERE project_id = %s", (project_id,)).fetchall()]
    pair_rows = sum(time_pair_rows(conn, s)[1] for s in sources)
    pairs = pair_rows / 2
    return {
        "files": list(FILES), "cut_points_per_file": points, "ontology": ontology.name,
        "points": report.points, "ticks": report.ticks, "tick_s": round(report.seconds, 3),
        "tick_points_per_s": round(report.points / report.seconds) if report.seconds else None,
        "target_points_per_s": TARGET_POINTS_PER_S,
        "stage_s": {k: round(v, 3) for k, v in report.stage_seconds.items()},
        "rows": report.rows,
        "pair_rows": pair_rows,
        "relation_pairs_per_point": round(pairs / report.points, 2) if report.points else None,
        "analyzed": analyzed,
        "candidates_in_tick_s": round(in_tick_s, 3),
        "candidates_alone_s": round(alone_s, 3),
        "candidates_in_tick_over_alone": round(in_tick_s / alone_s, 2) if alone_s else None,
        "target_in_tick_over_alone": TARGET_IN_TICK_OVER_ALONE,
        "parallel": (_lanes(conn, ontology, data_dir, points, lanes,
                            _candidate_rows(conn, project_id))
                     if lanes > 1 else None),
    }
