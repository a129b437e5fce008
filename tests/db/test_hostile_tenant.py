"""The hostile tenant: project A, as every role, aims every `api` function at project B.

Both projects hold rows in every tenant table (tests/support/tenant_data.py, through the
real pipeline). Each API role of A calls every api function it may execute, with B's ids
wherever an argument takes one (B's candidate, event, source, job, key, dataset version).
Every answer must be free of B (its project id and its names), and afterwards not one row
of B has changed. An api function without an entry in CALLS fails the suite, so a new
function cannot slip past it; the relation matrix is tests/db/test_isolation.py, the
channels, sessions and identities are tests/db/test_security_hardening.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tests.support.factories import make_project
from tests.support.postgrest import Api, ApiError
from tests.support.tenant_data import populate, populate_pipeline, tenant_tables

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]
API_ROLES = ["customer", "reviewer", "analyst", "project_admin"]


@dataclass(frozen=True)
class Target:
    """Project B and the ids an attacker would aim at."""

    project: str
    candidate: int
    event: int
    source: int
    source_name: str
    job: int
    key_prefix: str
    upload: str
    version: str
    markers: tuple[str, ...]
    """Strings that only B's rows contain: none may appear in an answer to A."""


WHEN = {"p_from": "2025-01-01T00:00:00Z", "p_to": "2027-01-01T00:00:00Z"}
# Every api function, with the arguments that aim it at B. A function missing here fails
# test_every_api_function_is_attacked.
CALLS: dict[str, Callable[[Target], dict[str, Any]]] = {
    "agreement_by_type": lambda b: {},
    "candidate_detail": lambda b: {"p_candidate_id": b.candidate},
    "create_api_key": lambda b: {"role": "customer", "owner": "b-reviewer@example.com"},
    "create_job": lambda b: {"p_kind": "rules_backfill",
                             "p_params": Jsonb({"source_id": b.source})},
    "dataset_card": lambda b: {"p_version": b.version},
    "dataset_download": lambda b: {"p_version": b.version},
    "dataset_manifest": lambda b: {"p_version": b.version},
    "decide": lambda b: {"p_candidate_id": b.candidate, "p_decision": "reject",
                         "p_reason": "wrong_type"},
    "exchange_key": lambda b: {"api_key": b.key_prefix + "_" + "A" * 43},
    "give_second_opinion": lambda b: {"p_candidate_id": b.candidate, "p_decision": "reject",
                                      "p_reason": "wrong_type"},
    "ingest_batch": lambda b: {"p_batch": Jsonb({
        "source": b.source_name, "fps": 10, "units": "m",
        "points": [{"track_id": "666", "frame": 0, "x": 1, "y": 1}]})},
    "ingest_upload_complete": lambda b: {"upload_id": b.upload},
    "ingest_upload_url": lambda b: {"source": b.source_name, "filename": "tracks.csv",
                                    "bytes": 10, "sha256": "a" * 64,
                                    "options": Jsonb({"project_id": b.project})},
    "job": lambda b: {"p_job_id": b.job},
    "login": lambda b: {"username": "b-reviewer@example.com", "password": "guessing-it"},
    "me": lambda b: {},
    "metrics_class_balance": lambda b: {**WHEN, "p_source_ids": [b.source]},
    "metrics_dwell_histogram": lambda b: {**WHEN, "p_source_ids": [b.source]},
    "metrics_events_over_time": lambda b: {**WHEN, "p_source_ids": [b.source]},
    "metrics_follow_rate": lambda b: {**WHEN, "p_source_ids": [b.source]},
    "metrics_reaction_latency": lambda b: {**WHEN, "p_source_ids": [b.source]},
    "metrics_route_shares": lambda b: {**WHEN, "p_source_ids": [b.source]},
    "pre_request": lambda b: {},
    "project_metrics": lambda b: {**WHEN, "p_source_ids": [b.source]},
    "query_events": lambda b: {"p_source_ids": [b.source], "p_limit": 100},
    "review_counts": lambda b: {"p_source_ids": [b.source],
                                "p_statuses": ["new", "scored", "accepted", "rejected"]},
    "review_queue": lambda b: {"p_source_ids": [b.source],
                               "p_statuses": ["new", "scored", "accepted", "rejected"]},
    "reviewer_stats": lambda b: {},
    "revoke_api_key": lambda b: {"lookup_prefix": b.key_prefix},
    "second_opinions_for_me": lambda b: {"p_limit": 200},
    "similar_candidates": lambda b: {"candidate_id": b.candidate, "k": 5},
    "similar_events": lambda b: {"p_event_id": b.event, "p_k": 5},
    "undo_last_decision": lambda b: {},
    "usage": lambda b: {"p_project_id": b.project},
    "retention": lambda b: {"p_project_id": b.project},
    "set_retention": lambda b: {"category": "events", "keep_days": 1, "reason": "attack",
                                "p_project_id": b.project},
    "retention_runs": lambda b: {"p_project_id": b.project},
    "legal_holds": lambda b: {"p_all": True, "p_project_id": b.project},
    "set_legal_hold": lambda b: {"reason": "attack", "source": b.source_name,
                                 "p_project_id": b.project},
    "lift_legal_hold": lambda b: {"hold_id": 1, "reason": "attack", "p_project_id": b.project},
    "link_subjects": lambda b: {"links": Jsonb([{"source": b.source_name, "track_id": "1",
                                                 "subject": "sha256:attacker"}]),
                                "p_project_id": b.project},
    "erase_subject": lambda b: {"reason": "attack", "source": b.source_name, "track_id": "1",
                                "p_project_id": b.project},
    "tombstones": lambda b: {"p_project_id": b.project},
    "usage_hourly": lambda b: {"p_metric": "points_ingested", "p_project_id": b.project},
}


@pytest.fixture(scope="module")
def projects(module_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Target]:
    tmp = tmp_path_factory.mktemp("hostile")
    with psycopg.connect(module_dsn, row_factory=dict_row) as db:
        a = make_project(db, "acme", "north")
        b = make_project(db, "globex", "south")
        for pid, tag in ((a, "a"), (b, "b")):
            populate_pipeline(db, pid, tag, tmp)
        for pid, tag in ((a, "a"), (b, "b")):
            populate(db, pid, tag)
        # A's reviewer acts as a person who is also invited into nothing of B.
        db.execute("SELECT core.add_member(%s, 'user', 'mallory', 'reviewer')", (a,))
        db.commit()

        def one(q: str) -> Any:
            row = db.execute(q, (b,)).fetchone()
            assert row is not None, q
            return next(iter(row.values()))

        names = [r["name"] for r in db.execute(
            "SELECT name FROM ingest.sources WHERE project_id = %s", (b,)).fetchall()]
        target = Target(
            project=b,
            candidate=one("SELECT min(candidate_id) FROM candidates.candidates"
                          " WHERE project_id = %s"),
            event=one("SELECT min(event_id) FROM events.events WHERE project_id = %s"),
            source=one("SELECT min(source_id) FROM ingest.sources WHERE project_id = %s"),
            source_name=one("SELECT min(name) FROM ingest.sources WHERE project_id = %s"),
            job=one("SELECT min(job_id) FROM jobs.jobs WHERE project_id = %s"),
            key_prefix=one("SELECT min(lookup_prefix) FROM core.api_keys WHERE project_id = %s"),
            upload=str(one("SELECT min(upload_id::text) FROM files.uploads"
                           " WHERE project_id = %s")),
            version="1.0.0",
            markers=(b, "/datasets/b/", "b-reviewer@example.com", "b-second@example.com",
                     *names))
    return a, target


@pytest.fixture
def db(module_dsn: str, projects: tuple[str, Target]) -> Iterator[Conn]:
    with psycopg.connect(module_dsn, row_factory=dict_row) as conn:
        yield conn


def fingerprint(db: Conn, project: str) -> dict[str, str]:
    """Per tenant table, a digest of every row of the project (content, not just counts)."""
    out = {}
    for rel in tenant_tables(db):
        row = db.execute(sql.SQL(
            "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)),"
            " '') AS d FROM {} t WHERE project_id = %s").format(sql.SQL(rel)),
            (project,)).fetchone()
        assert row is not None
        out[rel] = row["d"]
    return out


def api_functions(db: Conn, role: str | None = None) -> list[str]:
    rows = db.execute(
        "SELECT DISTINCT p.proname FROM pg_proc p WHERE p.pronamespace = 'api'::regnamespace"
        " AND (%(role)s::text IS NULL OR has_function_privilege(%(role)s, p.oid, 'EXECUTE'))"
        " ORDER BY 1", {"role": role}).fetchall()
    return [r["proname"] for r in rows]


def test_every_api_function_is_attacked(db: Conn) -> None:
    missing = sorted(set(api_functions(db)) - set(CALLS))
    assert missing == [], f"add these api functions to CALLS in {__file__}: {missing}"


@pytest.mark.parametrize("role", API_ROLES)
def test_project_a_reaches_nothing_of_project_b(db: Conn, module_dsn: str,
                                                projects: tuple[str, Target], role: str
                                                ) -> None:
    a, b = projects
    before = fingerprint(db, b.project)
    db.commit()
    api = Api(module_dsn).as_(role, project_id=a, sub="mallory")
    reached = 0
    for fn in api_functions(db, role):
        args = CALLS[fn](b)
        try:
            answer = api.rpc(fn, **args)
        except ApiError as err:
            text = f"{err.message} {err.hint}"
        else:
            reached += 1
            text = str(answer)
        # An echo of the attacker's own argument is no leak.
        sent = json.dumps(args, default=lambda o: getattr(o, "obj", str(o)))
        leaks = [m for m in b.markers if m in text and m not in sent]
        assert leaks == [], f"{role} learns {leaks} of project B through api.{fn}: {text[:300]}"
    assert reached > 0, f"{role} could call nothing: the suite would prove nothing"
    assert fingerprint(db, b.project) == before, f"{role} changed project B's rows"


# ---------------------------------------------------------------- a poisoned source
def test_a_poisoned_source_of_a_stops_nothing_of_b(dsn: str) -> None:
    """A's customer cannot send the poison (validated after the transform); a source of A
    poisoned anyway (a point stored before the check existed) fails alone, and B's source
    is processed by the same scheduled tick."""
    import numpy as np
    import polars as pl

    from tests.support.scene_loader import load_tracks

    f = np.arange(50)
    tracks = pl.concat([pl.DataFrame({"track_id": tid, "frame": f, "t": f / 10.0,
                                      "x": f * 0.1 + off, "y": np.full(50, off)})
                        for tid, off in (("1", 0.0), ("2", 1.0))])
    with psycopg.connect(dsn, row_factory=dict_row) as db:
        a = make_project(db, "acme", "north")
        b = make_project(db, "globex", "south")
        customer = Api(dsn).as_("customer", project_id=a)
        with pytest.raises(ApiError) as err:
            customer.rpc("ingest_batch", p_batch=Jsonb({
                "source": "poison", "fps": 10, "units": "px",
                "homography": [[1e300, 0, 0], [0, 1, 0], [0, 0, 1]],
                "points": [{"track_id": "1", "frame": 0, "x": 5, "y": 5}]}))
        assert err.value.status == 400
        poisoned = load_tracks(db, a, tracks, 10.0, name="a-cam")
        healthy = load_tracks(db, b, tracks, 10.0, name="b-cam")
        db.execute("UPDATE ingest.track_points SET x = 1e300 WHERE source_id = %s"
                   " AND track_id = '1' AND frame = 20", (poisoned,))
        db.commit()
        with psycopg.connect(dsn, autocommit=True) as cron:
            cron.execute("SET ROLE pipeline")
            cron.execute("CALL pipeline.run_scheduled()")  # does not raise
        done = db.execute(
            "SELECT count(*) AS n FROM features.kinematics WHERE source_id = %s",
            (healthy,)).fetchone()
        failed = db.execute("SELECT failures FROM pipeline.source_failures"
                            " WHERE source_id = %s", (poisoned,)).fetchone()
        assert done is not None and done["n"] > 0  # B was worked in the same call
        assert failed == {"failures": 1}
        assert db.execute("SELECT count(*) AS n FROM pipeline.source_failures"
                          " WHERE project_id = %s", (b,)).fetchone() == {"n": 0}


# ---------------------------------------------------------------- channels
def test_an_analyst_of_a_hears_nothing_of_b(dsn: str) -> None:
    """A's analyst, listening on every channel name it could know or guess, hears nothing
    when B's pipeline finds candidates and queues jobs; it cannot read the real names."""
    from tests.support.factories import analyst_session

    with psycopg.connect(dsn, row_factory=dict_row) as db:
        a = make_project(db, "acme", "north")
        b = make_project(db, "globex", "south")
        db.commit()
        with analyst_session(db, dsn, a) as spy:
            spy.autocommit = True
            for guess in ("jobs_queued", "secinf_candidates", "secinf_jobs", "pgrst", "jobs"):
                spy.execute(sql.SQL("LISTEN {}").format(sql.Identifier(guess)))
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                spy.execute("SELECT channel FROM auth.notify_channels")
            db.execute("SELECT jobs.enqueue(%s, 'echo', '{}')", (b,))
            db.execute("SELECT pg_notify(auth.channel('candidates'), '{\"count\": 1}')")
            db.commit()
            assert list(spy.notifies(timeout=0.5)) == []
