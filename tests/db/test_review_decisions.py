"""Decisions: accept (as proposed or adjusted), reject with a reason, the race between two
reviewers, undo, and who may decide what."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.db.review_helpers import as_person, at, make_candidate, make_scene, share
from tests.support.postgrest import ApiError

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]


def one(db: Conn, q: str, *args: Any) -> dict[str, Any]:
    row = db.execute(q, args).fetchone()
    assert row is not None, q
    return dict(row)


def test_accept_makes_a_human_event_and_an_audit_entry(db: Conn, dsn: str) -> None:
    scene = make_scene(db, "acme", "north")
    share(db, scene.project_id, 0.0)
    cid = make_candidate(db, scene, model_score=0.7)
    alice = as_person(dsn, scene.project_id, "alice")
    answer = alice.rpc("decide", p_candidate_id=cid, p_decision="accept", p_note="clear")
    assert answer["second_opinion"] is False and answer["status"] == "accepted"
    event = one(db, "SELECT * FROM events.events WHERE candidate_id = %s", cid)
    assert event["event_id"] == answer["event_id"]
    assert (event["source"], event["verified_by"], event["decision_id"]) == (
        "human", "alice", answer["decision_id"])
    assert (event["start_ts"], event["end_ts"], event["type"]) == (at(5), at(10), "follow")
    assert event["actors"] == {"leader": "1", "follower": "2"} and event["confidence"] == 1.0
    decision = one(db, "SELECT * FROM review.decisions WHERE decision_id = %s",
                   answer["decision_id"])
    assert (decision["reviewer"], decision["opinion"], decision["kind"], decision["adjusted"],
            decision["note"]) == ("alice", "first", "accept", False, "clear")
    assert one(db, "SELECT status FROM candidates.candidates WHERE candidate_id = %s",
               cid)["status"] == "accepted"
    audit = one(db, "SELECT actor, action, target, details FROM audit.log"
                    " WHERE action LIKE 'review.%%'")
    assert (audit["actor"], audit["action"], audit["target"]) == (
        "alice", "review.accept", f"candidate:{cid}")
    assert audit["details"]["event_id"] == event["event_id"]
    # It left the default queue.
    assert cid not in [r["candidate_id"] for r in alice.rpc("review_queue")]


def test_an_adjusted_span_must_lie_where_the_actors_are_tracked(db: Conn, dsn: str) -> None:
    # Track 1 from 0 to 20 s, track 2 only from 3 to 12 s.
    scene = make_scene(db, "acme", "north", tracks={"1": (0, 20), "2": (3, 12)})
    cid = make_candidate(db, scene, start=5, end=10)
    alice = as_person(dsn, scene.project_id, "alice")
    with pytest.raises(ApiError) as err:
        alice.rpc("decide", p_candidate_id=cid, p_decision="accept", p_start=at(4),
                  p_end=at(13))
    assert err.value.status == 400
    assert err.value.message.startswith(
        f"span [2026-01-01 00:00:04+00, 2026-01-01 00:00:13+00] is outside the time the actors "
        f"of candidate {cid} are tracked ([2026-01-01 00:00:03+00, 2026-01-01 00:00:12+00]")
    with pytest.raises(ApiError) as err:
        alice.rpc("decide", p_candidate_id=cid, p_decision="accept", p_start=at(9),
                  p_end=at(8))
    assert "is before its start" in err.value.message
    answer = alice.rpc("decide", p_candidate_id=cid, p_decision="accept", p_start=at(3.5),
                       p_end=at(11.9))
    event = one(db, "SELECT start_ts, end_ts FROM events.events WHERE event_id = %s",
                answer["event_id"])
    assert (event["start_ts"], event["end_ts"]) == (at(3.5), at(11.9))
    assert one(db, "SELECT adjusted FROM review.decisions WHERE decision_id = %s",
               answer["decision_id"])["adjusted"] is True


def test_reject_needs_a_listed_reason_and_removes_a_machine_event(db: Conn, dsn: str) -> None:
    scene = make_scene(db, "acme", "north")
    share(db, scene.project_id, 0.0, auto_model=0.9)
    cid = make_candidate(db, scene, model_score=0.97)
    db.execute("SELECT events.promote()")
    db.commit()
    machine = one(db, "SELECT source, verified_by FROM events.events WHERE candidate_id = %s",
                  cid)
    assert machine == {"source": "model", "verified_by": "m-1"}
    alice = as_person(dsn, scene.project_id, "alice")
    with pytest.raises(ApiError) as err:
        alice.rpc("decide", p_candidate_id=cid, p_decision="reject")
    assert (err.value.status, err.value.message) == (400, "a rejection needs a reason")
    assert err.value.hint is not None and "no_event" in err.value.hint
    with pytest.raises(ApiError) as err:
        alice.rpc("decide", p_candidate_id=cid, p_decision="reject", p_reason="meh")
    assert err.value.message == 'unknown rejection reason "meh"'
    with pytest.raises(ApiError) as err:
        alice.rpc("decide", p_candidate_id=cid, p_decision="maybe")
    assert err.value.message == 'unknown decision "maybe"'
    answer = alice.rpc("decide", p_candidate_id=cid, p_decision="reject", p_reason="no_event")
    assert answer["event_id"] is None and answer["status"] == "rejected"
    assert db.execute("SELECT 1 FROM events.events WHERE candidate_id = %s",
                      (cid,)).fetchone() is None
    assert one(db, "SELECT reason FROM review.decisions WHERE decision_id = %s",
               answer["decision_id"])["reason"] == "no_event"


def test_two_reviewers_at_once_one_wins_and_there_is_one_event(db: Conn, dsn: str) -> None:
    scene = make_scene(db, "acme", "north")
    share(db, scene.project_id, 0.0)
    people = {"alice": as_person(dsn, scene.project_id, "alice"),
              "bob": as_person(dsn, scene.project_id, "bob")}
    for round_ in range(6):
        cid = make_candidate(db, scene, start=1 + round_, end=2 + round_)
        barrier = threading.Barrier(2)
        results: dict[str, Any] = {}

        def decide(name: str, cid: int = cid, barrier: threading.Barrier = barrier,
                   results: dict[str, Any] = results) -> None:
            barrier.wait()
            try:
                results[name] = people[name].rpc("decide", p_candidate_id=cid,
                                                 p_decision="accept" if name == "alice"
                                                 else "reject",
                                                 p_reason=None if name == "alice" else "unclear")
            except ApiError as exc:
                results[name] = exc

        threads = [threading.Thread(target=decide, args=(n,)) for n in people]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        winners = [n for n, r in results.items() if isinstance(r, dict)]
        losers = [r for r in results.values() if isinstance(r, ApiError)]
        assert len(winners) == 1 and len(losers) == 1, results
        lost = losers[0]
        assert lost.status == 409 and lost.sqlstate == "PT409"
        assert lost.message.startswith(f"candidate {cid} was already decided by {winners[0]} at ")
        decisions = db.execute("SELECT reviewer FROM review.decisions WHERE candidate_id = %s",
                               (cid,)).fetchall()
        assert [d["reviewer"] for d in decisions] == winners
        events = db.execute("SELECT verified_by FROM events.events WHERE candidate_id = %s",
                            (cid,)).fetchall()
        assert events == ([{"verified_by": "alice"}] if winners == ["alice"] else [])
        db.commit()


def test_undo_takes_back_ones_own_last_decision_step_by_step(db: Conn, dsn: str) -> None:
    scene = make_scene(db, "acme", "north")
    share(db, scene.project_id, 0.0)
    first = make_candidate(db, scene, start=2, end=4, model_score=0.4)
    second = make_candidate(db, scene, start=5, end=7)
    alice = as_person(dsn, scene.project_id, "alice")
    bob = as_person(dsn, scene.project_id, "bob")
    a1 = alice.rpc("decide", p_candidate_id=first, p_decision="accept")
    a2 = alice.rpc("decide", p_candidate_id=second, p_decision="reject", p_reason="duplicate")
    with pytest.raises(ApiError) as err:
        bob.rpc("undo_last_decision")
    assert (err.value.status, err.value.message) == (404, "you have no decision to undo")

    undone = alice.rpc("undo_last_decision")
    assert (undone["undone_decision_id"], undone["candidate_id"], undone["kind"]) == (
        a2["decision_id"], second, "reject")
    assert one(db, "SELECT status FROM candidates.candidates WHERE candidate_id = %s",
               second)["status"] == "new"
    undone = alice.rpc("undo_last_decision")
    assert undone["undone_decision_id"] == a1["decision_id"]
    assert db.execute("SELECT 1 FROM events.events WHERE event_id = %s",
                      (a1["event_id"],)).fetchone() is None
    assert one(db, "SELECT status FROM candidates.candidates WHERE candidate_id = %s",
               first)["status"] == "scored"
    with pytest.raises(ApiError):
        alice.rpc("undo_last_decision")
    # Append-only: both decisions are still there, each with its undo row.
    log = db.execute("SELECT kind, undoes FROM review.decisions ORDER BY decision_id").fetchall()
    assert log == [{"kind": "accept", "undoes": None}, {"kind": "reject", "undoes": None},
                   {"kind": "undo", "undoes": a2["decision_id"]},
                   {"kind": "undo", "undoes": a1["decision_id"]}]
    assert db.execute("SELECT count(*) AS n FROM review.current").fetchone() == {"n": 0}
    audits = db.execute("SELECT action FROM audit.log WHERE action = 'review.undo'").fetchall()
    assert len(audits) == 2
    # Back in the queue: anyone may decide it again.
    assert bob.rpc("decide", p_candidate_id=first, p_decision="accept")["event_id"]


def test_other_projects_and_other_roles_cannot_decide(db: Conn, dsn: str) -> None:
    a = make_scene(db, "acme", "north")
    b = make_scene(db, "globex", "south")
    cid = make_candidate(db, a)
    intruder = as_person(dsn, b.project_id, "mallory")
    for fn, args in (("decide", {"p_decision": "accept"}),
                     ("give_second_opinion", {"p_decision": "accept"}),
                     ("candidate_detail", {})):
        with pytest.raises(ApiError) as err:
            intruder.rpc(fn, p_candidate_id=cid, **args)
        assert (err.value.status, err.value.message) == (404, f"no candidate {cid} in your project")
    for role in ("customer", "analyst"):
        with pytest.raises(ApiError) as err:
            as_person(dsn, a.project_id, "carl", role).rpc("decide", p_candidate_id=cid,
                                                            p_decision="accept")
        assert err.value.status == 403
        assert err.value.message == "permission denied for function decide"
    # Direct writes to the review tables are not a side door.
    reviewer = as_person(dsn, a.project_id, "alice")
    with pytest.raises(ApiError) as err:
        reviewer.request("POST", "/", sql.SQL(
            "INSERT INTO events.events (project_id, source_id, type, actors, start_ts, end_ts,"
            " confidence, source, verified_by) VALUES (%(p)s, %(s)s, 'follow', '{}', now(),"
            " now(), 1, 'rule', 'x')"), {"p": a.project_id, "s": a.source_id})
    assert err.value.message == "permission denied for table events"
    assert db.execute("SELECT count(*) AS n FROM review.decisions").fetchone() == {"n": 0}
