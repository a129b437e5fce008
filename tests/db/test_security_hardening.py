"""Issue 16's holes, one test each, acting as the real roles: tokens live as long as the
server says, follow the current membership, notifications name no tenant on channels only
the pipeline knows, one person is one reviewer, a blind second reviewer sees nothing of the
first decision, and the smaller items (analyst candidate page, revoke messages, direct
status writes, the audit log)."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.db.review_helpers import Scene, make_candidate, make_scene, share
from tests.support.factories import analyst_session, make_key
from tests.support.postgrest import Api, ApiError
from workers.queue.notify import JOBS, channel_name, parse_notice
from workers.review import accounts

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]
PASSWORD = "correct horse battery"


def person(db: Conn, dsn: str, scene: Scene, username: str, role: str = "reviewer") -> Api:
    """A signed-in person: an account, a membership, and the caller api.login makes."""
    accounts.create(db, username, PASSWORD, scene.project_id, role)
    grant = Api(dsn).rpc("login", username=username, password=PASSWORD,
                         project=scene.project_id)
    return Api(dsn, grant["claims"]["role"], dict(grant["claims"]))


def key_caller(db: Conn, dsn: str, project: str, role: str, owner: str | None = None) -> Api:
    """A caller with the token api.exchange_key gives for a new key."""
    key = db.execute("SELECT api_key FROM core.create_api_key(%s, %s, NULL, NULL, %s)",
                     (project, role, owner)).fetchone()
    db.commit()
    assert key is not None
    grant = Api(dsn).rpc("exchange_key", api_key=key["api_key"])
    return Api(dsn, grant["claims"]["role"], dict(grant["claims"]))


# ---------------------------------------------------------------- 1. token lifetimes
def test_token_lifetimes_are_the_servers_and_capped_per_role(db: Conn, dsn: str) -> None:
    scene = make_scene(db, "acme", "north")
    customer = make_key(db, scene.project_id, "customer")
    grant = Api(dsn).rpc("exchange_key", api_key=customer["api_key"])
    assert grant["claims"]["exp"] - grant["claims"]["iat"] == 3600
    # A key expiring sooner caps its token.
    short = make_key(db, scene.project_id, "customer", "10m")
    grant = Api(dsn).rpc("exchange_key", api_key=short["api_key"])
    assert grant["claims"]["exp"] - grant["claims"]["iat"] <= 600
    # Sign-ins: per role (auth.token_lifetimes): reviewer 8 h, project admin 4 h.
    accounts.create(db, "rita", PASSWORD, scene.project_id, "reviewer")
    accounts.create(db, "paul", PASSWORD, scene.project_id, "project_admin")
    for name, hours in (("rita", 8), ("paul", 4)):
        claims = Api(dsn).rpc("login", username=name, password=PASSWORD)["claims"]
        assert claims["exp"] - claims["iat"] == hours * 3600, name
    # Nobody can ask for more: the two-argument forms are gone, for every caller.
    with analyst_session(db, dsn, scene.project_id) as conn:
        with pytest.raises(psycopg.errors.UndefinedFunction):
            conn.execute("SELECT core.exchange_api_key(%s, interval '100 years')",
                         (customer["api_key"],))
        conn.rollback()
        with pytest.raises(psycopg.errors.UndefinedFunction):
            conn.execute("SELECT core.login_account('rita', %s, NULL, interval '100 years')",
                         (PASSWORD,))
        conn.rollback()
        # The lifetimes themselves are the administrator's.
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE auth.token_lifetimes SET login_ttl = '1 day'")


# ---------------------------------------------------------------- 2. membership changes
def test_removed_member_and_changed_role_end_the_session(db: Conn, dsn: str) -> None:
    scene = make_scene(db, "acme", "north")
    cid = make_candidate(db, scene)
    other = make_candidate(db, scene, actors={"leader": "2", "follower": "1"})
    rita = person(db, dsn, scene, "rita")
    assert rita.rpc("decide", p_candidate_id=cid, p_decision="accept")["status"] == "accepted"
    # The role changes: the old reviewer token stops at the door.
    db.execute("UPDATE core.memberships SET role = 'analyst' WHERE member = 'rita'")
    db.commit()
    with pytest.raises(ApiError) as err:
        rita.rpc("decide", p_candidate_id=other, p_decision="accept")
    assert err.value.status == 401
    assert err.value.message == "your access to this project has changed since you signed in"
    # Removed: the same, and even past the door the token sees no project.
    db.execute("DELETE FROM core.memberships WHERE member = 'rita'")
    db.commit()
    with pytest.raises(ApiError) as err:
        rita.get("events")
    assert err.value.status == 401
    assert no_projects_past_the_door(dsn, rita)
    status = db.execute("SELECT status FROM candidates.candidates WHERE candidate_id = %s",
                        (other,)).fetchone()
    assert status == {"status": "new"}


def no_projects_past_the_door(dsn: str, caller: Api) -> bool:
    """auth.project_ids() for the caller's claims without api.pre_request (defence in depth:
    policies ask it, so a path that skipped the pre-request would still see nothing)."""
    params = conninfo_to_dict(dsn)
    params["user"] = "authenticator"
    with psycopg.connect(make_conninfo(**params)) as conn:  # type: ignore[arg-type]
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(caller.role)))
        conn.execute("SELECT set_config('request.jwt.claims', %s, true)",
                     (json.dumps(caller.claims),))
        row = conn.execute("SELECT cardinality(auth.project_ids()),"
                           " (SELECT count(*) FROM api.events)").fetchone()
    return row == (0, 0)


def test_a_key_token_follows_its_key(db: Conn, dsn: str) -> None:
    scene = make_scene(db, "acme", "north")
    caller = key_caller(db, dsn, scene.project_id, "customer")
    assert caller.get("projects")[0]["project_id"] is not None
    # A token whose claims disagree with its key (another role) sees nothing.
    forged = Api(dsn, "project_admin", {**(caller.claims or {}), "role": "project_admin"})
    with pytest.raises(ApiError) as err:
        forged.get("api_keys")
    assert err.value.status == 401
    assert no_projects_past_the_door(dsn, forged)


# ---------------------------------------------------------------- 4. notifications
def test_channels_are_secret_and_payloads_name_no_tenant(db: Conn, dsn: str) -> None:
    scene = make_scene(db, "acme", "north")
    with analyst_session(db, dsn, scene.project_id) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT auth.channel('jobs')")
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT channel FROM auth.notify_channels")
        conn.rollback()
    name = channel_name(db, JOBS)
    assert name.startswith("secinf_jobs_") and len(name) == len("secinf_jobs_") + 24
    db.commit()
    params = conninfo_to_dict(dsn)
    params["user"] = "pipeline"
    with psycopg.connect(make_conninfo(**params), autocommit=True) as worker, \
         psycopg.connect(dsn, autocommit=True) as guesser:
        assert channel_name(worker, JOBS) == name  # the worker's role may read it
        worker.execute(sql.SQL("LISTEN {}").format(sql.Identifier(name)))
        guesser.execute("LISTEN jobs_queued")  # the old, well-known name
        db.execute("SELECT jobs.enqueue(%s, 'echo', '{}')", (scene.project_id,))
        db.commit()
        notes = list(worker.notifies(timeout=2.0, stop_after=1))
        assert len(notes) == 1
        payload = json.loads(notes[0].payload)
        assert payload == {"type": "job", "kind": "echo"}  # no job id, no project
        assert parse_notice(notes[0].payload) == {"type": "job", "kind": "echo"}
        assert list(guesser.notifies(timeout=0.3)) == []


# ---------------------------------------------------------------- 6. identity, blindness
def test_a_persons_key_and_account_are_one_reviewer(db: Conn, dsn: str) -> None:
    scene = make_scene(db, "acme", "north")
    share(db, scene.project_id, 1.0)
    cid = make_candidate(db, scene)
    carol = person(db, dsn, scene, "carol")
    person(db, dsn, scene, "dave")
    carol_key = key_caller(db, dsn, scene.project_id, "reviewer", owner="carol")
    answer = carol_key.rpc("decide", p_candidate_id=cid, p_decision="accept")
    assert answer["second_opinion"] is True
    assert db.execute("SELECT reviewer FROM review.decisions WHERE candidate_id = %s",
                      (cid,)).fetchone() == {"reviewer": "carol"}
    # The second opinion goes to dave, never to carol's account.
    assert db.execute("SELECT assigned_to FROM review.second_opinions WHERE candidate_id = %s",
                      (cid,)).fetchone() == {"assigned_to": "dave"}
    assert carol.rpc("second_opinions_for_me") == []
    db.execute("UPDATE review.second_opinions SET assigned_to = NULL")  # open to anyone
    db.commit()
    with pytest.raises(ApiError) as err:
        carol.rpc("give_second_opinion", p_candidate_id=cid, p_decision="accept")
    assert err.value.status == 403
    assert "you made the first decision" in err.value.message
    # A key with no owner is a machine: it does not decide.
    machine = key_caller(db, dsn, scene.project_id, "reviewer")
    other = make_candidate(db, scene, actors={"leader": "2", "follower": "1"})
    with pytest.raises(ApiError) as err:
        machine.rpc("decide", p_candidate_id=other, p_decision="reject", p_reason="wrong_type")
    assert err.value.status == 403
    assert "has no owner: review decisions are made by people" in err.value.message
    # Owners are members of the project.
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="not an account of this"):
        db.execute("SELECT core.create_api_key(%s, 'reviewer', NULL, NULL, 'nobody')",
                   (scene.project_id,))
    db.rollback()


def test_a_blind_second_reviewer_sees_nothing_of_the_first_decision(db: Conn, dsn: str
                                                                     ) -> None:
    scene = make_scene(db, "acme", "north")
    share(db, scene.project_id, 1.0)
    cid = make_candidate(db, scene, start=5, end=10)
    alice = person(db, dsn, scene, "alice")
    bob = person(db, dsn, scene, "bob")
    alice.rpc("decide", p_candidate_id=cid, p_decision="accept")
    decided = ["accepted", "rejected"]

    def visible(caller: Api) -> dict[str, Any]:
        return {
            "queue": [r["candidate_id"] for r in caller.rpc(
                "review_queue", p_statuses=decided, p_limit=50) or []],
            "counts": caller.rpc("review_counts", p_statuses=decided)["total"],
            "events": [r["candidate_id"] for r in caller.get("events")],
            "query_events": [r["candidate_id"] for r in caller.rpc(
                "query_events", p_limit=100) or []],
        }

    hidden = {"queue": [], "counts": 0, "events": [], "query_events": []}
    shown = {"queue": [cid], "counts": 1, "events": [cid], "query_events": [cid]}
    assert visible(bob) == hidden
    assert visible(alice) == shown  # the first reviewer sees their own decision
    page = bob.rpc("candidate_detail", p_candidate_id=cid)
    assert page["blind"] is True and page["decisions"] == [] and page["event"] is None
    # Deciding it again says only that it waits for a second opinion, not who decided.
    with pytest.raises(ApiError) as err:
        bob.rpc("decide", p_candidate_id=cid, p_decision="reject", p_reason="wrong_type")
    assert err.value.status == 409
    assert err.value.message == f"candidate {cid} is waiting for a second opinion"
    # A customer's events are not a review: they are not blinded.
    customer = Api(dsn).as_("customer", project_id=scene.project_id)
    assert [r["candidate_id"] for r in customer.get("events")] == [cid]
    # Once bob has answered, nothing is withheld.
    bob.rpc("give_second_opinion", p_candidate_id=cid, p_decision="accept")
    assert visible(bob) == shown


# ---------------------------------------------------------------- 7. analyst candidate page
def test_a_psql_analyst_opens_the_candidate_page(db: Conn, dsn: str) -> None:
    scene = make_scene(db, "acme", "north")
    other = make_scene(db, "globex", "south")
    cid = make_candidate(db, scene)
    foreign = make_candidate(db, other)
    with analyst_session(db, dsn, scene.project_id) as conn:
        page = conn.execute("SELECT api.candidate_detail(%s) AS p", (cid,)).fetchone()
        assert page is not None and page["p"]["candidate"]["candidate_id"] == cid
        with pytest.raises(psycopg.Error) as err:
            conn.execute("SELECT api.candidate_detail(%s)", (foreign,))
        assert other.project_id not in str(err.value)


# ---------------------------------------------------------------- 9. direct writes, audit
def test_status_and_audit_are_written_only_through_decisions(db: Conn, dsn: str) -> None:
    scene = make_scene(db, "acme", "north")
    cid = make_candidate(db, scene)
    reviewer = Api(dsn).as_("reviewer", project_id=scene.project_id, sub="rita")
    with pytest.raises(ApiError) as err:
        reviewer.write("PATCH", "/candidates", sql.SQL(
            "UPDATE candidates.candidates SET status = 'accepted' WHERE candidate_id = %(c)s"),
            {"c": cid})
    assert err.value.message == "permission denied for table candidates"
    admin = Api(dsn).as_("project_admin", project_id=scene.project_id, sub="paul")
    before = db.execute("SELECT count(*) AS n FROM audit.log").fetchone()
    for caller in (reviewer, admin):
        with pytest.raises(ApiError) as err:
            caller.request("POST", "/rpc/record", sql.SQL(
                "SELECT audit.record(%(p)s, 'review.accept', 'candidate:1', '{}')"),
                {"p": scene.project_id})
        # Reviewers have no audit schema at all; project admins no longer the function.
        assert err.value.message == ("permission denied for schema audit"
                                     if caller is reviewer else
                                     "permission denied for function record")
    assert db.execute("SELECT count(*) AS n FROM audit.log").fetchone() == before
    assert db.execute("SELECT status FROM candidates.candidates WHERE candidate_id = %s",
                      (cid,)).fetchone() == {"status": "new"}
