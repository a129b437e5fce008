"""Auto-accept (events.promote) and the candidate page (api.candidate_detail)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row

from tests.db.review_helpers import as_person, at, make_candidate, make_scene, share
from tests.support.postgrest import ApiError

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]


def events_by_candidate(db: Conn) -> dict[int, tuple[str, str]]:
    db.commit()
    return {r["candidate_id"]: (r["source"], r["verified_by"]) for r in db.execute(
        "SELECT candidate_id, source, verified_by FROM events.events").fetchall()}


def promote_as_pipeline(dsn: str) -> int:
    """events.promote() on a login of role pipeline, as the cron job runs it."""
    params = conninfo_to_dict(dsn)
    params["user"] = "pipeline"
    params.pop("password", None)
    with psycopg.connect(make_conninfo(**params), row_factory=dict_row) as conn:  # type: ignore[arg-type]
        row = conn.execute("SELECT events.promote() AS n").fetchone()
        assert row is not None
        return int(row["n"])


def test_promote_accepts_above_thresholds_once_and_yields_to_people(db: Conn, dsn: str) -> None:
    scene = make_scene(db, "acme", "north")
    other = make_scene(db, "globex", "south")  # thresholds off there
    share(db, scene.project_id, 0.0, auto_model=0.9, auto_rule=0.95)
    share(db, other.project_id, 0.0, auto_model=None, auto_rule=None)
    by_model = make_candidate(db, scene, start=1, end=2, model_score=0.93, rule_score=0.2)
    by_rule = make_candidate(db, scene, start=2, end=3, rule_score=0.97)
    rule_not_model = make_candidate(db, scene, start=3, end=4, model_score=0.5, rule_score=0.96)
    decided = make_candidate(db, scene, start=4, end=5, model_score=0.99)
    low = make_candidate(db, scene, start=5, end=6, model_score=0.6, rule_score=0.9)
    elsewhere = make_candidate(db, other, model_score=0.99)
    alice = as_person(dsn, scene.project_id, "alice")
    alice.rpc("decide", p_candidate_id=decided, p_decision="reject", p_reason="unclear")

    assert promote_as_pipeline(dsn) == 3
    assert events_by_candidate(db) == {by_model: ("model", "m-1"),
                                       by_rule: ("rule", "default.follow"),
                                       rule_not_model: ("rule", "default.follow")}
    statuses = {r["candidate_id"]: r["status"] for r in db.execute(
        "SELECT candidate_id, status FROM candidates.candidates").fetchall()}
    assert statuses == {by_model: "accepted", by_rule: "accepted", rule_not_model: "accepted",
                        decided: "rejected", low: "scored", elsewhere: "scored"}
    assert promote_as_pipeline(dsn) == 0  # idempotent
    audit = db.execute("SELECT actor, details FROM audit.log WHERE action = 'events.promote'"
                       ).fetchall()
    assert len(audit) == 1 and audit[0]["details"]["events"] == 3

    # A person overrules the machine: reject removes its event, accept makes it human.
    alice.rpc("decide", p_candidate_id=by_model, p_decision="reject", p_reason="no_event")
    accepted = alice.rpc("decide", p_candidate_id=by_rule, p_decision="accept",
                         p_start=at(2.1), p_end=at(3))
    assert promote_as_pipeline(dsn) == 0
    events = events_by_candidate(db)
    assert by_model not in events and events[by_rule] == ("human", "alice")
    assert db.execute("SELECT count(*) AS n FROM events.events WHERE candidate_id = %s",
                      (by_rule,)).fetchone() == {"n": 1}
    assert accepted["event_id"] is not None
    # Undo gives the candidate back to the machine at the next run.
    alice.rpc("undo_last_decision")
    assert promote_as_pipeline(dsn) == 1
    assert events_by_candidate(db)[by_rule] == ("rule", "default.follow")
    # Only the pipeline (and administrators) may run it.
    with pytest.raises(ApiError) as err:
        alice.request("POST", "/", sql.SQL("SELECT events.promote()"))
    assert err.value.message == "permission denied for function promote"


def test_candidate_detail_has_what_the_page_draws(db: Conn, dsn: str) -> None:
    scene = make_scene(db, "acme", "north", tracks={"1": (0, 20), "2": (3, 12)})
    cid = make_candidate(db, scene, start=5, end=8, model_score=0.7)
    page = as_person(dsn, scene.project_id, "alice").rpc("candidate_detail", p_candidate_id=cid,
                                                          p_context_s=2)
    c = page["candidate"]
    assert (c["candidate_id"], c["type"], c["start_s"], c["end_s"], c["score"]) == (
        cid, "follow", 5.0, 8.0, 0.7)
    assert page["source"] == {"source_id": scene.source_id, "name": "north-cam", "fps": 10.0,
                              "units": "m", "video_uri": "file:///clips/cam.mp4",
                              "time_origin": "2026-01-01T00:00:00+00:00"}
    assert (page["window"]["from_s"], page["window"]["to_s"]) == (3.0, 10.0)
    assert (page["span_limits"]["from_s"], page["span_limits"]["to_s"]) == (3.0, 12.0)
    assert page["zones"] == [{"name": "gate", "kind": "zone",
                              "polygon": [[0, 0], [0, 2], [2, 2], [2, 0]]}]
    assert page["routes"] == [{"name": "north", "from_zone": "gate", "path": [[1, 1], [1, 9]]}]
    leader = page["actors"]["leader"]
    assert leader["track_id"] == "1" and len(leader["points"]) == 71  # 3.0 … 10.0 s at 10 fps
    p0 = leader["points"][0]
    assert (p0["t"], p0["x"], p0["speed"], p0["heading"]) == (3.0, 3.0, 1.0, 0.0)
    (pair,) = page["pairs"]
    assert {pair["a"], pair["b"]} == {"leader", "follower"} and len(pair["points"]) == 71
    assert pair["points"][0]["distance"] == pytest.approx(1.0)  # y = 1 and y = 2
    assert pair["points"][0]["heading_diff"] == 0.0
    assert page["decisions"] == [] and page["event"] is None and page["blind"] is False
    assert page["second_opinion"] is None


def test_heading_difference_wraps(db: Conn) -> None:
    rows = db.execute("SELECT review.heading_diff(a, b) AS d FROM (VALUES (10.0, 350.0),"
                      " (-170.0, 170.0), (0.0, 180.0), (90.0, -90.0), (45.0, 44.0),"
                      " (720.0, 0.0)) v (a, b)").fetchall()
    assert [r["d"] for r in rows] == [20.0, 20.0, 180.0, 180.0, 1.0, 0.0]
