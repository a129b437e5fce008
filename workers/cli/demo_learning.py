"""The demo's learning loop: a reviewer's decisions, a retrain, the queue re-ranked.

A second demo scene gives the project two sources (training holds one out). A **scripted
reviewer** stands in for a person: it decides the first undecided candidates (auto-accepted
ones included) in the review queue's `uncertain` order through `api.decide`, as a member of
the project, accepting those that match the scene's planted truth and rejecting the others
(a person would look at the tracks; the simulator's truth is what they would see). Then
`secinf train --project` runs, and if the new model beats the one in charge the worker
rescores the undecided candidates and the queue's head changes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg

from workers.db.queries import fetch_all, fetch_one
from workers.errors import UserError
from workers.evaluate.matching import Event, match_events
from workers.evaluate.truth import load_truth, resolve_source
from workers.ingest import IngestRequest, ingest
from workers.pipeline import tick
from workers.queue.worker import WorkerConfig, run_worker
from workers.rules import store
from workers.scoring.collect import HARD_NOISE
from workers.scoring.project_training import ProjectTrainConfig, publish, train_project
from workers.settings import Settings
from workers.simulate import preset_config, simulate, write_outputs

Conn = psycopg.Connection[Any]
REVIEWER = "demo-reviewer@example.com"
DECISIONS_PER_SOURCE = 40


def queue_head(conn: Conn, project_id: str, n: int = 5) -> list[dict[str, Any]]:
    """The first undecided candidates in the review queue's `uncertain` order (machine
    accepted ones included: a reviewer may overrule them)."""
    return [dict(r) for r in fetch_all(conn, "demo", "queue_head",
                                                 {"project_id": project_id, "n": n})]


def _truth_matches(conn: Conn, ref: str, source: str, truth_path: Path,
                   ids: list[int]) -> dict[int, bool]:
    src = resolve_source(conn, source, ref)
    rows = fetch_all(conn, "demo", "candidate_spans", {"origin": src.time_origin, "ids": ids})
    cands = [Event(str(r["type"]), {str(k): str(v) for k, v in r["actors"].items()},
                   float(r["s0"]), float(r["s1"]),
                   {k: r[k] for k in ("zone", "route", "trigger") if r[k] is not None})
             for r in rows]
    matched = {j for _, j, _ in match_events(load_truth(truth_path).events, cands).pairs}
    return {int(r["candidate_id"]): j in matched for j, r in enumerate(rows)}


def scripted_review(conn: Conn, project_id: str, ref: str,
                    scenes: dict[str, Path]) -> dict[str, int]:
    """Decide the first open candidates of each source as the truth says (see module)."""
    fetch_one(conn, "demo", "add_reviewer", {"project_id": project_id, "subject": REVIEWER})
    counts = {"accept": 0, "reject": 0}
    for source, truth_path in scenes.items():
        src = resolve_source(conn, source, ref)
        ids = [int(r["candidate_id"]) for r in fetch_all(
            conn, "demo", "open_candidates",
            {"source_id": src.source_id, "n": DECISIONS_PER_SOURCE})]
        for cid, true in _truth_matches(conn, ref, source, truth_path, ids).items():
            fetch_one(conn, "demo", "set_claims",
                      {"claims": json.dumps({"role": "reviewer", "project_id": project_id,
                                             "sub": REVIEWER})})
            kind = "accept" if true else "reject"
            fetch_one(conn, "demo", "decide", {"candidate_id": cid, "kind": kind,
                                               "reason": None if true else "no_event"})
            counts[kind] += 1
        fetch_one(conn, "demo", "set_claims", {"claims": ""})
    conn.commit()
    return counts


def learning_loop(conn: Conn, settings: Settings, project_id: str, ref: str, first_source: str,
                  first_truth: Path, out_dir: Path, seed: int) -> dict[str, Any]:
    """Second scene, scripted decisions, retrain, rescoring; what the queue looked like."""
    second = "demo-plaza-2"
    # The hard noise setting (false tracks, id switches) gives the reviewer false
    # candidates to reject, as a real camera would.
    result = simulate(preset_config("plaza", seed=seed + 1, noise=HARD_NOISE))
    files = write_outputs(result, out_dir / second)
    ingest(conn, IngestRequest(project=ref, source=second, path=files["parquet"],
                               scene=files["scene"]))
    tick(conn, until_idle=True)
    store.backfill(conn, project_id, second)
    fetch_one(conn, "scoring", "queue_unscored", {"source_id": None, "project_id": project_id})
    conn.commit()
    run_worker(settings.conninfo(), WorkerConfig(mode="until_idle", poll_s=1.0, concurrency=2),
               signals=False)
    decisions = scripted_review(conn, project_id, ref,
                                {first_source: first_truth, second: files["truth"]})
    before = queue_head(conn, project_id)
    try:
        report = publish(conn, train_project(conn, project_id, ProjectTrainConfig(epochs=12)))
    except UserError as exc:  # e.g. every decision the same: nothing to learn yet
        conn.rollback()
        return {"decisions": decisions, "model": None, "verdict": f"not trained: {exc}",
                "held_out": None, "queue_before": before, "queue_after": before}
    if report["activated"]:
        run_worker(settings.conninfo(),
                   WorkerConfig(mode="until_idle", poll_s=1.0, concurrency=2), signals=False)
    return {"decisions": decisions, "model": report["version"], "verdict": report["verdict"],
            "held_out": report["metrics"]["held_out"], "queue_before": before,
            "queue_after": queue_head(conn, project_id)}
