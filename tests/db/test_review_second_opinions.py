"""Second opinions: routing (deterministic share, reputation-weighted draw), the blind
answer, and agreement statistics checked against a worked example."""

from __future__ import annotations

from collections import Counter
from typing import Any

import psycopg
import pytest

from tests.db.review_helpers import as_person, at, make_candidate, make_scene, member, share
from tests.support.postgrest import ApiError

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]

# The worked example (docs/review.md): alice decides first, bob gives the second opinion.
#   candidate:  1  2  3  4  5 | 6  7  8  9  10
#   type:       follow x5     | meet x5
#   alice:      A  A  A  A  A | A  R  R  R  R
#   bob:        A  A  A  A  R | R  R  R  R  A
# Both accepted 1-4; bob's spans: [5,10], [6,10], [5,9], [7,12] against alice's [5,10]:
# IoU 1, 0.8, 0.8, 3/7.
ALICE = "AAAAAARRRR"
BOB = "AAAARRRRRA"
BOB_SPANS = [(5, 10), (6, 10), (5, 9), (7, 12)]
MEAN_IOU = (1 + 0.8 + 0.8 + 3 / 7) / 4
# 2x2 table (first x second): aa 4, ar 2, ra 1, rr 3 → po 0.7, pe 0.6·0.5 + 0.4·0.5 = 0.5.
KAPPA = (0.7 - 0.5) / (1 - 0.5)
# follow: aa 4, ar 1 → po 0.8 = pe 0.8 → 0.  meet: ar 1, ra 1, rr 3 → po 0.6, pe 0.68.
KAPPA_MEET = (0.6 - 0.68) / (1 - 0.68)
# Reputation: pair scores 1, .9, .9, .5 + .5·3/7 (accepted), 1 x 3 (rejected), 0 x 3.
REPUTATION = (1 + 0.9 + 0.9 + 0.5 + 0.5 * 3 / 7 + 3 + 2) / (10 + 4)


def test_second_opinion_flow_and_agreement_statistics(db: Conn, dsn: str) -> None:
    scene = make_scene(db, "acme", "north", tracks={str(t): (0, 20) for t in range(1, 12)})
    share(db, scene.project_id, 1.0)  # every first decision is routed
    for name in ("alice", "bob"):
        member(db, scene.project_id, name)
    alice = as_person(dsn, scene.project_id, "alice")
    bob = as_person(dsn, scene.project_id, "bob")
    ids = [make_candidate(db, scene, type="follow" if i < 5 else "meet", start=5, end=10,
                          actors={"leader": "1", "follower": str(i + 2)},
                          rule_score=0.5 + i / 100)
           for i in range(10)]
    for cid, kind in zip(ids, ALICE, strict=True):
        answer = alice.rpc("decide", p_candidate_id=cid,
                           p_decision="accept" if kind == "A" else "reject",
                           p_reason=None if kind == "A" else "wrong_type")
        assert answer["second_opinion"] is True
    assigned = db.execute("SELECT DISTINCT assigned_to FROM review.second_opinions").fetchall()
    assert assigned == [{"assigned_to": "bob"}]  # the only other reviewer

    # The queue of second opinions: bob's, not alice's; blind to alice's decision.
    assert alice.rpc("second_opinions_for_me") == []
    todo = bob.rpc("second_opinions_for_me", p_limit=100)
    assert sorted(r["candidate_id"] for r in todo) == ids
    page = bob.rpc("candidate_detail", p_candidate_id=ids[0])
    assert page["blind"] is True and page["decisions"] == [] and page["event"] is None
    assert page["candidate"]["status"] is None and page["second_opinion"]["for_me"] is True
    assert alice.rpc("candidate_detail", p_candidate_id=ids[0])["decisions"][0]["kind"] == \
        "accept"
    with pytest.raises(ApiError) as err:
        alice.rpc("give_second_opinion", p_candidate_id=ids[0], p_decision="accept")
    assert err.value.status == 403
    assert err.value.message.startswith(f"you made the first decision on candidate {ids[0]}")

    spans = iter(BOB_SPANS)
    for cid, kind in zip(ids, BOB, strict=True):
        if kind == "A":
            s, e = next(spans) if cid in ids[:4] else (5, 10)
            bob.rpc("give_second_opinion", p_candidate_id=cid, p_decision="accept",
                    p_start=at(s), p_end=at(e))
        else:
            bob.rpc("give_second_opinion", p_candidate_id=cid, p_decision="reject",
                    p_reason="no_event")
    assert bob.rpc("second_opinions_for_me") == []
    with pytest.raises(ApiError) as err:
        bob.rpc("give_second_opinion", p_candidate_id=ids[0], p_decision="accept")
    assert err.value.status == 409
    assert err.value.message.startswith(
        f"the second opinion on candidate {ids[0]} was already given by bob at ")
    # The event stays as the first decision made it.
    event = db.execute("SELECT verified_by, start_ts, end_ts FROM events.events"
                       " WHERE candidate_id = %s", (ids[1],)).fetchone()
    assert event == {"verified_by": "alice", "start_ts": at(5), "end_ts": at(10)}

    stats = {r["reviewer"]: r for r in alice.rpc("reviewer_stats")}
    assert set(stats) == {"alice", "bob"}
    for name in ("alice", "bob"):
        r = stats[name]
        assert r["decisions"] == 10
        assert r["kappa"] == pytest.approx(KAPPA)
        assert r["mean_iou"] == pytest.approx(MEAN_IOU)
        assert r["reputation"] == pytest.approx(REPUTATION)
        # Ten decisions in well under a minute: one session of 60 s → ~600 an hour.
        assert 500 < r["per_hour"] <= 600
    assert (stats["alice"]["accepts"], stats["alice"]["rejects"]) == (6, 4)
    assert (stats["bob"]["accepts"], stats["bob"]["rejects"]) == (5, 5)
    assert (stats["alice"]["second_opinions"], stats["bob"]["second_opinions"]) == (0, 10)
    by_type = {r["type"]: r for r in alice.rpc("agreement_by_type")}
    assert by_type["follow"]["pairs"] == 5 and by_type["meet"]["pairs"] == 5
    assert by_type["follow"]["kappa"] == pytest.approx(0.0)
    assert by_type["follow"]["mean_iou"] == pytest.approx(MEAN_IOU)
    assert by_type["meet"]["kappa"] == pytest.approx(KAPPA_MEET)
    assert by_type["meet"]["mean_iou"] is None
    # A window before everything: no decisions, no pairs.
    assert alice.rpc("reviewer_stats", p_to=at(0)) == []

    # Undo of a second opinion reopens it; undo of a first decision dissolves the pair.
    undone = bob.rpc("undo_last_decision")
    assert undone["opinion"] == "second" and undone["candidate_id"] == ids[-1]
    assert [r["candidate_id"] for r in bob.rpc("second_opinions_for_me")] == [ids[-1]]
    alice.rpc("undo_last_decision")
    assert bob.rpc("second_opinions_for_me") == []
    assert {r["type"]: r["pairs"] for r in alice.rpc("agreement_by_type")} == {
        "follow": 5, "meet": 4}


def test_routing_share_is_a_fixed_hash_of_the_candidate(db: Conn, dsn: str) -> None:
    scene = make_scene(db, "acme", "north")
    share(db, scene.project_id, 0.3)
    alice = as_person(dsn, scene.project_id, "alice")
    routed = {}
    for i in range(60):
        cid = make_candidate(db, scene, start=1 + i * 0.1, end=2 + i * 0.1)
        routed[cid] = alice.rpc("decide", p_candidate_id=cid, p_decision="reject",
                                p_reason="unclear")["second_opinion"]
    expected = {cid: db.execute("SELECT review.routed_to_second_opinion(%s, 0.3) AS r",
                                (cid,)).fetchone()["r"] for cid in routed}  # type: ignore[index]
    assert routed == expected
    assert 8 <= sum(routed.values()) <= 28  # about 30 % of 60
    # Nobody else in the project: the request is open to anyone but alice.
    assert {r["assigned_to"] for r in db.execute(
        "SELECT assigned_to FROM review.second_opinions").fetchall()} == {None}
    assert db.execute("SELECT count(*) AS n FROM review.second_opinions").fetchone() == {
        "n": sum(routed.values())}


def test_second_reviewers_are_drawn_by_reputation(db: Conn) -> None:
    scene = make_scene(db, "acme", "north")
    for name in ("alice", "bob", "carol", "dave", "erin"):
        member(db, scene.project_id, name)
    member(db, scene.project_id, "carl", "customer")  # customers never review
    db.execute("SELECT core.add_member(%s, 'db_role', 'analyst_x', 'analyst')",
               (scene.project_id,))
    db.execute("INSERT INTO core.accounts (username, password_hash, disabled_at)"
               " VALUES ('erin', '$2a$10$x', now())")  # disabled: never drawn
    # 20 pairs where bob agreed with alice, 20 where dave disagreed: reputations
    # bob (20 + 2) / 24, dave 2 / 24, carol (no pairs) 0.5.
    for i in range(40):
        cid = make_candidate(db, scene, start=0.1 * i, end=0.1 * i + 1)
        second, kind = ("bob", "reject") if i < 20 else ("dave", "accept")
        first_id = db.execute(
            "INSERT INTO review.decisions (project_id, candidate_id, reviewer, opinion, kind,"
            " reason) VALUES (%s, %s, 'alice', 'first', 'reject', 'unclear')"
            " RETURNING decision_id", (scene.project_id, cid)).fetchone()["decision_id"]  # type: ignore[index]
        second_id = db.execute(
            "INSERT INTO review.decisions (project_id, candidate_id, reviewer, opinion, kind,"
            " reason, start_ts, end_ts) VALUES (%s, %s, %s, 'second', %s, %s, %s, %s)"
            " RETURNING decision_id",
            (scene.project_id, cid, second, kind, "unclear" if kind == "reject" else None,
             at(0.1 * i) if kind == "accept" else None,
             at(0.1 * i + 1) if kind == "accept" else None)).fetchone()["decision_id"]  # type: ignore[index]
        db.execute("INSERT INTO review.second_opinions (candidate_id, project_id,"
                   " first_decision_id, first_reviewer, assigned_to, decision_id, answered_at)"
                   " VALUES (%s, %s, %s, 'alice', %s, %s, now())",
                   (cid, scene.project_id, first_id, second, second_id))
    reps = {r["reviewer"]: r["reputation"] for r in db.execute(
        "SELECT * FROM review.reputations(%s)", (scene.project_id,)).fetchall()}
    assert reps["bob"] == pytest.approx(22 / 24) and reps["dave"] == pytest.approx(2 / 24)
    db.execute("SELECT setseed(0.42)")
    draws = Counter(r["who"] for r in db.execute(
        "SELECT review.pick_second_reviewer(%s, 'alice') AS who FROM generate_series(1, 3000)",
        (scene.project_id,)).fetchall())
    assert set(draws) == {"bob", "carol", "dave"}
    total = 22 / 24 + 0.5 + 2 / 24
    for name, weight in (("bob", 22 / 24), ("carol", 0.5), ("dave", 2 / 24)):
        assert draws[name] / 3000 == pytest.approx(weight / total, abs=0.035), draws
    # The first reviewer is never drawn; alone, nobody is.
    assert db.execute("SELECT review.pick_second_reviewer(%s, 'bob') AS who",
                      (scene.project_id,)).fetchone()["who"] != "bob"  # type: ignore[index]
    lone = make_scene(db, "acme", "solo")
    member(db, lone.project_id, "zoe")
    assert db.execute("SELECT review.pick_second_reviewer(%s, 'zoe') AS who",
                      (lone.project_id,)).fetchone() == {"who": None}
