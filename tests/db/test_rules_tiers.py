"""The recall tier (`candidates.recall_factor`): where it is emitted, that the strict output
is unchanged, that `secinf evaluate` ignores it, and that rule-score auto-accept skips it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.db.review_helpers import make_candidate, make_scene, share
from tests.support.factories import make_project
from workers.evaluate.matching import Event
from workers.evaluate.report import evaluate_source
from workers.evaluate.truth import Truth
from workers.rules import store
from workers.rules.ontology import DEFAULT_PATH, load_ontology, with_recall_tier

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]
ORIGIN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
FPS = 10
# track: (stop start s, stop length s) in a 20 s walk at 1 m/s; stop min_duration_s is 2.0,
# max_gap_s 1.0. "split" stops for 4.0 s but moves at 6.3-7.7 s: a 1.6 s gap between its
# stopped rows, more than 1.0 s, within 1.0 / 0.5 = 2.0 s.
STOPS = {"short": (5.0, 1.2), "tiny": (5.0, 0.8), "long": (5.0, 3.0), "split": (5.0, 4.0)}
MOVING = {"split": (6.25, 7.75)}


def _scene(db: Conn, pid: str) -> int:
    """A 10 fps source whose kinematics hold one stop per track (STOPS), nothing else."""
    src = db.execute("INSERT INTO ingest.sources (project_id, name, fps, time_origin) "
                     "VALUES (%s, 'cam', %s, %s) RETURNING source_id",
                     (pid, FPS, ORIGIN)).fetchone()
    assert src is not None
    rows = []
    for k, (track, (t0, length)) in enumerate(STOPS.items()):
        for frame in range(20 * FPS + 1):
            t = frame / FPS
            lo, hi = MOVING.get(track, (-1.0, -1.0))
            stopped = t0 - 1e-9 <= t <= t0 + length + 1e-9 and not lo < t < hi
            speed = 0.05 if stopped else 1.0
            rows.append((pid, src["source_id"], track, frame,
                         ORIGIN + timedelta(seconds=t), 0, 1.0 / FPS, t, 50.0 * k,
                         speed, 0.0, speed, 0.0, 0.0, 0.0, 0.0, 0.0))
    with db.cursor() as cur:
        cur.executemany(
            "INSERT INTO features.kinematics (project_id, source_id, track_id, frame, ts, "
            "segment, dt, x, y, vx, vy, speed, accel, jerk, heading, turn_rate, curvature) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)
    db.commit()
    return int(src["source_id"])


def _run(db: Conn, source_id: int) -> list[dict[str, Any]]:
    db.execute("SELECT candidates.run_rules(%s, '-infinity', 'infinity')", (source_id,))
    db.commit()
    return db.execute(
        "SELECT type, actors->>'actor' AS actor, tier, rule_score, start_ts, end_ts, "
        "extract(epoch FROM end_ts - start_ts)::float8 AS dur "
        "FROM candidates.candidates WHERE source_id = %s ORDER BY actors->>'actor', start_ts, "
        "end_ts",
        (source_id,)).fetchall()


def test_recall_tier_emitted_and_strict_output_unchanged(db: Conn) -> None:
    plain = make_project(db, "acme", "plain")
    store.load(db, plain, load_ontology(DEFAULT_PATH))
    strict = _run(db, _scene(db, plain))
    assert [(r["type"], r["actor"], r["tier"]) for r in strict] == [("stop", "long", "strict")]
    assert strict[0]["dur"] == pytest.approx(3.0)
    # the "split" fragments (1.2 s, 1.2 s) are both shorter than 2.0 s: no strict candidate

    tiered = make_project(db, "acme", "tiered")
    store.load(db, tiered, with_recall_tier(load_ontology(DEFAULT_PATH), 0.5))
    rows = _run(db, _scene(db, tiered))
    assert [(r["type"], r["actor"], r["tier"]) for r in rows] == [
        ("stop", "long", "strict"), ("stop", "short", "recall"),  # 0.8 s < 0.5 x 2.0: none
        ("stop", "split", "recall"), ("stop", "split", "recall"), ("stop", "split", "recall")]
    long_, short = rows[:2]
    # the split stop: both fragments and, merged over the 1.6 s gap, the whole 4.0 s
    assert [round(r["dur"], 2) for r in rows[2:]] == [1.2, 4.0, 1.2]
    keep = ("rule_score", "start_ts", "end_ts")
    assert {k: long_[k] for k in keep} == {k: strict[0][k] for k in keep}
    assert short["dur"] == pytest.approx(1.2)
    # duration term 1.2 / 4.0 = 0.3 (< 0.5 for every recall candidate); margin 0.75
    assert short["rule_score"] == pytest.approx(0.5 * 0.75 + 0.5 * 0.3)

    # evaluate counts strict candidates only: the recall stop is neither a TP nor an FP.
    truth = Truth("cam", None, [Event("stop", {"actor": "long"}, 5.0, 8.0),
                                Event("stop", {"actor": "short"}, 5.0, 6.2)])
    ev = evaluate_source(db, truth, "cam", project=tiered)
    assert ev.candidates == 1
    assert ev.result.per_type["stop"].as_dict()["tp"] == 1
    assert (ev.result.per_type["stop"].fp, ev.result.per_type["stop"].fn) == (0, 1)


def test_rule_auto_accept_is_strict_only_model_accepts_both(db: Conn) -> None:
    scene = make_scene(db, "acme", "tiers")
    share(db, scene.project_id, 0.0, auto_model=0.9, auto_rule=0.8)
    strict_rule = make_candidate(db, scene, start=1, end=2, rule_score=0.85)
    recall_rule = make_candidate(db, scene, start=2, end=3, rule_score=0.85)
    recall_model = make_candidate(db, scene, start=3, end=4, rule_score=0.3, model_score=0.95)
    db.execute("UPDATE candidates.candidates SET tier = 'recall' WHERE candidate_id IN (%s, %s)",
               (recall_rule, recall_model))
    db.commit()
    assert db.execute("SELECT events.promote() AS n").fetchone() == {"n": 2}
    made = {r["candidate_id"]: r["source"] for r in db.execute(
        "SELECT candidate_id, source FROM events.events").fetchall()}
    assert made == {strict_rule: "rule", recall_model: "model"}
    with pytest.raises(psycopg.errors.CheckViolation, match="candidates_tier_known"):
        db.execute("UPDATE candidates.candidates SET tier = 'loose' WHERE candidate_id = %s",
                   (strict_rule,))
    db.rollback()
