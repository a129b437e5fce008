"""Project models: examples from reviews and imported labels, invalidation when feature
settings change, activation and rollback, the pg_cron due check, and the train_model job
end to end on two simulated scenes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
import torch

from tests.db.queue_helpers import ThreadWorker
from tests.db.test_scoring_db import TINY, _candidate
from tests.support.factories import make_project
from workers.errors import NotFound, UserError
from workers.pipeline import tick
from workers.pipeline.scene_copy import load_result
from workers.queue import client
from workers.queue.worker import WorkerConfig
from workers.scoring import examples as ex
from workers.scoring.collect import HARD_NOISE
from workers.scoring.handler import configure
from workers.scoring.model import ScoringModel
from workers.scoring.project_training import ProjectTrainConfig, publish, train_project
from workers.scoring.registry import activate, model_in_charge, register, rollback
from workers.scoring.windows import N_FEATURES, WINDOW_VERSION, NormStats
from workers.simulate import preset_config, simulate

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)
    configure("cpu")


def _model(db: Conn, seed: int, project_id: str | None = None) -> str:
    torch.manual_seed(seed)
    norm = NormStats.fit(np.random.default_rng(seed).normal(size=(4, 64, N_FEATURES)))
    version, _, _ = register(db, ScoringModel(TINY).eval(), norm, seed=seed,
                             training={"test": True}, metrics={}, project_id=project_id)
    return version


def _decide(db: Conn, project_id: str, candidate_id: int, kind: str,
            opinion: str = "first", reviewer: str = "ann") -> int:
    row = db.execute(
        "INSERT INTO review.decisions (project_id, candidate_id, reviewer, opinion, kind, "
        "reason, start_ts, end_ts) SELECT %s, c.candidate_id, %s, %s, %s, "
        "CASE WHEN %s = 'reject' THEN 'no_event' END, c.start_ts, c.end_ts + interval '5 s' "
        "FROM candidates.candidates c WHERE c.candidate_id = %s RETURNING decision_id",
        (project_id, reviewer, opinion, kind, kind, candidate_id)).fetchone()
    assert row is not None
    if opinion == "first":
        db.execute("INSERT INTO review.current (candidate_id, project_id, decision_id, reviewer, "
                   "kind, decided_at) VALUES (%s, %s, %s, %s, %s, now())",
                   (candidate_id, project_id, row["decision_id"], reviewer, kind))
    return int(row["decision_id"])


def _examples(db: Conn, project_id: str) -> list[dict[str, Any]]:
    return db.execute("SELECT candidate_id, origin, label, span_iou, invalid_reason "
                      "FROM scoring.examples WHERE project_id = %s ORDER BY candidate_id",
                      (project_id,)).fetchall()


def test_review_examples_follow_the_live_decisions(db: Conn) -> None:
    pid = make_project(db, "learn-org", "reviews")
    a, b, c = _candidate(db, pid, "rev-src", 3)
    _decide(db, pid, a, "accept")
    _decide(db, pid, b, "reject")
    first_c = _decide(db, pid, c, "accept")
    # c's second opinion disagrees: people disagree, so c teaches nothing.
    second = _decide(db, pid, c, "reject", opinion="second", reviewer="bob")
    db.execute("INSERT INTO review.second_opinions (candidate_id, project_id, first_decision_id, "
               "first_reviewer, decision_id, answered_at) VALUES (%s, %s, %s, 'ann', %s, now())",
               (c, pid, first_c, second))
    db.commit()
    assert ex.refresh(db, pid)["review"] == {"added": 2, "updated": 0, "removed": 0}
    rows = _examples(db, pid)
    assert [(r["candidate_id"], r["label"]) for r in rows] == [(a, True), (b, False)]
    # The accepted span was widened by 5 s of the candidate's 10 s: IoU 10/15.
    assert rows[0]["span_iou"] == pytest.approx(10 / 15)
    # Undo of a's decision removes its example; a re-decision adds it back, relabelled.
    db.execute("DELETE FROM review.current WHERE candidate_id = %s", (a,))
    assert ex.refresh(db, pid)["review"] == {"added": 0, "updated": 0, "removed": 1}
    _decide(db, pid, a, "reject")
    assert ex.refresh(db, pid)["review"]["added"] == 1
    assert [(r["candidate_id"], r["label"]) for r in _examples(db, pid)] == [(a, False),
                                                                             (b, False)]
    # Refreshing again changes nothing.
    assert ex.refresh(db, pid) == {"review": {"added": 0, "updated": 0, "removed": 0},
                                   "invalidated": 0}


def test_a_changed_feature_setting_invalidates_examples_explicitly(db: Conn) -> None:
    pid = make_project(db, "learn-org", "settings")
    other = make_project(db, "learn-org", "untouched")
    (a,) = _candidate(db, pid, "set-src")
    (z,) = _candidate(db, other, "other-src")
    _decide(db, pid, a, "accept")
    _decide(db, other, z, "accept")
    db.commit()
    ex.refresh(db, pid)
    ex.refresh(db, other)
    db.execute("UPDATE scoring.examples SET window_data = '\\x00', window_version = %s",
               (WINDOW_VERSION,))
    db.execute("INSERT INTO pipeline.settings (project_id, key, value) "
               "VALUES (%s, 'smoothing_s', '2.5')", (pid,))
    db.commit()
    assert ex.refresh(db, pid)["invalidated"] == 1
    assert ex.refresh(db, other)["invalidated"] == 0
    (row,) = _examples(db, pid)
    assert row["invalid_reason"] == ("feature settings changed since the example was made: "
                                     "smoothing_s 1 → 2.5")
    status = ex.status(db, pid)
    assert status["by_origin"]["review"]["valid"] == 0
    assert status["invalid_reasons"] == {row["invalid_reason"]: 1}
    # Training says so instead of silently using or dropping them.
    with pytest.raises(UserError, match="1 examples are invalid: feature settings changed"):
        train_project(db, pid, ProjectTrainConfig(min_examples=1))
    db.rollback()
    # A window of another definition is refused too.
    db.execute("UPDATE scoring.examples SET window_version = 'w0-old' WHERE project_id = %s",
               (other,))
    assert ex.refresh(db, other)["invalidated"] == 1
    assert _examples(db, other)[0]["invalid_reason"] == (
        f"window definition changed: w0-old → {WINDOW_VERSION}")
    # --refresh re-admits under today's settings, with the window to be built again.
    assert ex.readmit(db, pid) == 1
    db.commit()
    row = db.execute("SELECT invalid_reason, window_data, features ->> 'smoothing_s' AS s "
                     "FROM scoring.examples WHERE project_id = %s", (pid,)).fetchone()
    assert row == {"invalid_reason": None, "window_data": None, "s": "2.5"}


def test_activation_and_rollback_walk_the_history(db: Conn) -> None:
    pid = make_project(db, "learn-org", "lineage")
    other = make_project(db, "learn-org", "bystander")
    glob = _model(db, 0)
    ids = _candidate(db, pid, "lin-src", 3)
    (theirs,) = _candidate(db, other, "by-src")
    _decide(db, pid, ids[2], "accept")   # decided: never rescored
    db.commit()
    m1, m2 = _model(db, 1, pid), _model(db, 2, pid)
    assert model_in_charge(db, pid) == glob    # registered inactive
    first = activate(db, m1, "test")
    assert (first["previous"], first["rescoring"]) == (None, 2)
    second = activate(db, m2, "test")
    assert (second["previous"], model_in_charge(db, pid)) == (m1, m2)
    assert model_in_charge(db, other) == glob
    queued = db.execute("SELECT count(*) AS n FROM jobs.jobs WHERE project_id = %s "
                        "AND kind = 'score_candidates'", (other,)).fetchone()
    assert queued == {"n": 0}
    back = rollback(db, pid, "m2 was worse")
    assert (back["version"], back["rolled_back"], back["in_charge"]) == (m1, m2, m1)
    back = rollback(db, pid, "m1 too")
    assert (back["version"], back["in_charge"]) == (None, glob)
    with pytest.raises(UserError, match="has no model of its own to roll back"):
        rollback(db, pid, "again")
    with pytest.raises(UserError, match="is a global model"):
        activate(db, glob, "no")
    with pytest.raises(NotFound, match="no scoring model nope"):
        activate(db, "nope", "no")
    history = db.execute("SELECT action, version, previous_version FROM scoring.activations "
                         "WHERE project_id = %s ORDER BY activation_id", (pid,)).fetchall()
    assert [tuple(h.values()) for h in history] == [
        ("activate", m1, None), ("activate", m2, m1), ("rollback", m1, m2),
        ("rollback", None, m1)]
    # Every activation queued the open candidates (not the decided one) for rescoring.
    rescored = db.execute("SELECT DISTINCT candidate_id FROM scoring.queued WHERE project_id = %s "
                          "ORDER BY 1", (pid,)).fetchall()
    assert [r["candidate_id"] for r in rescored] == ids[:2]
    assert theirs not in [r["candidate_id"] for r in rescored]


def test_the_due_check_queues_one_training_job_per_project(db: Conn) -> None:
    pid = make_project(db, "learn-org", "due")
    quiet = make_project(db, "learn-org", "quiet")
    ids = _candidate(db, pid, "due-src", 3)
    (q,) = _candidate(db, quiet, "quiet-src")
    for i in ids:
        _decide(db, pid, i, "accept")
    _decide(db, quiet, q, "accept")
    db.execute("INSERT INTO pipeline.settings (project_id, key, value) VALUES "
               "(%s, 'train_min_new_examples', '3'), (%s, 'train_min_new_examples', '1'), "
               "(%s, 'train_auto', 'false')", (pid, quiet, quiet))
    db.commit()

    def due() -> int:
        n = db.execute("SELECT scoring.enqueue_due_training() AS n").fetchone()
        db.commit()
        assert n is not None
        return int(n["n"])

    assert due() == 1
    assert due() == 0    # one queued already
    jobs = db.execute("SELECT project_id::text AS p, payload FROM jobs.jobs "
                      "WHERE kind = 'train_model'").fetchall()
    assert jobs == [{"p": pid, "payload": {"reason": "3 new examples"}}]


def _scene_truth(result: Any, tmp: Path, name: str) -> Path:
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(result.truth))
    return path


def test_train_model_job_learns_from_imported_labels(db: Conn, dsn: str, tmp_path: Path) -> None:
    pid = make_project(db, "learn-org", "scenes")
    db.execute("INSERT INTO pipeline.settings (project_id, key, value) "
               "VALUES (%s, 'scoring_auto', 'false')", (pid,))
    db.commit()
    from workers.rules import load_ontology, store
    from workers.settings import ONTOLOGIES_DIR

    store.load(db, pid, load_ontology(ONTOLOGIES_DIR / "default.yaml"))
    glob = _model(db, 0)
    for seed in (1, 2):
        # Hard noise: false tracks and id switches give false candidates to label 0.
        result = simulate(preset_config("plaza", seed=seed, duration=40.0, noise=HARD_NOISE))
        load_result(db, pid, result, name=f"plaza-{seed}")
        tick(db, until_idle=True)
        done = ex.import_truth(db, "learn-org/scenes", f"plaza-{seed}",
                               _scene_truth(result, tmp_path, f"plaza-{seed}"))
        assert done.candidates > 0 and 0 < done.positives <= done.candidates
    n = db.execute("SELECT count(*) AS n FROM scoring.examples WHERE project_id = %s",
                   (pid,)).fetchone()
    assert n is not None and n["n"] >= 20   # the job's default floor
    # Zone events match their truth only with the zone compared: they are labelled true.
    zoned = db.execute("SELECT count(*) FILTER (WHERE label) AS t, count(*) AS n "
                       "FROM scoring.examples WHERE project_id = %s AND type IN "
                       "('enter', 'exit', 'dwell')", (pid,)).fetchone()
    assert zoned is not None and zoned["n"] > 0 and zoned["t"] >= zoned["n"] / 2, zoned
    job = client.enqueue(db, pid, "train_model", {"reason": "test", "epochs": 2})
    db.commit()
    with ThreadWorker(dsn, WorkerConfig(mode="until_idle", poll_s=0.2, concurrency=1,
                                        kinds=("train_model",))) as w:
        w.thread.join(120)
    row = db.execute("SELECT state, progress, r.result FROM jobs.jobs j "
                     "LEFT JOIN jobs.results r USING (job_id) WHERE j.job_id = %s",
                     (job,)).fetchone()
    assert row is not None and row["state"] == "succeeded", row
    report = row["result"]
    assert report["trained"] is True, report
    assert row["progress"]["phase"] == "evaluate"
    assert report["examples"]["train"]["truth"]["examples"] > 0
    model = db.execute("SELECT project_id::text AS p, parent_version, active, training "
                       "FROM scoring.models WHERE version = %s",
                       (report["version"],)).fetchone()
    assert model is not None
    assert (model["p"], model["parent_version"]) == (pid, glob)
    training = model["training"]
    assert training["mode"] == "fine-tune"
    # Split by source: the two scenes are on different sides.
    assert sorted(training["train_sources"] + training["held_out_sources"]) == ["plaza-1",
                                                                               "plaza-2"]
    assert model["active"] == report["activated"]
    assert model_in_charge(db, pid) == (report["version"] if report["activated"] else glob)
    # Publishing again by hand registers the same weights once (a no-op) ...
    again = publish(db, train_project(db, pid, ProjectTrainConfig(epochs=2)))
    assert (again["version"], again["created"]) == (report["version"], False)
    # ... and a job on a project without examples completes and says why.
    empty = make_project(db, "learn-org", "empty")
    job = client.enqueue(db, empty, "train_model", {"reason": "test"})
    db.commit()
    with ThreadWorker(dsn, WorkerConfig(mode="until_idle", poll_s=0.2, concurrency=1,
                                        kinds=("train_model",))) as w:
        w.thread.join(60)
    done = db.execute("SELECT j.state, r.result FROM jobs.jobs j JOIN jobs.results r "
                      "USING (job_id) WHERE j.job_id = %s", (job,)).fetchone()
    assert done is not None and done["state"] == "succeeded"
    assert done["result"]["trained"] is False
    assert "project has 0 usable examples" in done["result"]["reason"]
    windows = db.execute("SELECT count(*) FILTER (WHERE window_data IS NULL) AS missing, "
                         "min(length(window_data)) AS size FROM scoring.examples "
                         "WHERE project_id = %s", (pid,)).fetchone()
    assert windows == {"missing": 0, "size": 64 * N_FEATURES * 4}
