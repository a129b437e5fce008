"""Metering and quotas (issue 18): every counter counts its work once, under replay, retry
and kill, in the transaction of the work; quotas refuse work where it enters, with nothing
stored, and warn past 80 %. API calls go through the PostgREST request model."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.db.review_helpers import as_person, make_candidate, make_scene, share
from tests.support.factories import make_project
from tests.support.postgrest import Api, ApiError
from workers.errors import UserError
from workers.ingest import IngestRequest, ingest
from workers.queue import client

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]

POINTS = [{"track_id": str(t), "frame": f, "t": f / 10, "x": 1.0 + f, "y": float(t)}
          for t in (1, 2) for f in range(5)]


def usage(db: Conn, project: str, metric: str) -> int:
    row = db.execute("SELECT coalesce(sum(amount), 0)::bigint AS n FROM billing.usage "
                     "WHERE project_id = %s AND metric = %s", (project, metric)).fetchone()
    db.rollback()
    assert row is not None
    return int(row["n"])


def stored(db: Conn, project: str) -> tuple[int, int, int]:
    row = db.execute(
        "SELECT (SELECT count(*) FROM ingest.sources WHERE project_id = %(p)s) AS s,"
        " (SELECT count(*) FROM ingest.batches WHERE project_id = %(p)s) AS b,"
        " (SELECT count(*) FROM ingest.track_points WHERE project_id = %(p)s) AS n",
        {"p": project}).fetchone()
    db.rollback()
    assert row is not None
    return int(row["s"]), int(row["b"]), int(row["n"])


def set_quota(db: Conn, project: str, metric: str, quota: int | None) -> None:
    db.execute("SELECT billing.set_quota(%s, %s, %s, 'test quota')", (project, metric, quota))
    db.commit()


def customer(dsn: str, project: str) -> Api:
    return Api(dsn).as_("customer", project_id=project, sub="key:sik_0123456789ab")


def batch(source: str = "cam", points: list[dict[str, Any]] | None = None) -> Jsonb:
    return Jsonb({"source": source, "fps": 10, "points": points or POINTS})


def csv_file(tmp_path: Path, n_tracks: int = 2, frames: int = 5, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text("track_id,frame,t,x,y\n" + "".join(
        f"{t},{f},{f / 10},{1 + f},{t}\n" for t in range(1, n_tracks + 1) for f in range(frames)))
    return path


@pytest.fixture
def project(db: Conn) -> str:
    p = make_project(db, "meter-org", "meter")
    db.commit()
    return p


# ---------------------------------------------------------------- ingest
def test_an_api_batch_counts_its_new_points_and_bytes_once(db: Conn, dsn: str,
                                                            project: str) -> None:
    api = customer(dsn, project)
    first = api.rpc("ingest_batch", p_batch=batch())
    assert first["inserted"] == 10
    body = len(json.dumps({"source": "cam", "fps": 10, "points": POINTS}).encode())
    assert usage(db, project, "points_ingested") == 10
    bytes_first = usage(db, project, "bytes_ingested")
    assert abs(bytes_first - body) < body * 0.2          # jsonb's canonical text, not ours
    # The same body again is the same batch (its idempotency key): adds 0.
    again = api.rpc("ingest_batch", p_batch=batch())
    assert again["duplicate_batch"] is True
    # Another batch that repeats the stored points stores none of them: 0 points, its bytes.
    other = api.rpc("ingest_batch", p_batch=Jsonb({"source": "cam", "fps": 10, "points": POINTS,
                                                   "idempotency_key": "second"}))
    assert (other["inserted"], other["duplicate"]) == (0, 10)
    assert usage(db, project, "points_ingested") == 10
    assert usage(db, project, "bytes_ingested") > bytes_first
    counted = db.execute("SELECT count(*) AS n FROM billing.counted WHERE project_id = %s "
                         "AND metric = 'bytes_ingested'", (project,)).fetchone()
    assert counted is not None and counted["n"] == 2


def test_a_file_ingest_counts_points_and_file_bytes_once(db: Conn, project: str,
                                                         tmp_path: Path) -> None:
    path = csv_file(tmp_path, 3, 4)
    out = ingest(db, IngestRequest(project=project, source="cli", path=path))
    assert out.inserted == 12
    assert usage(db, project, "points_ingested") == 12
    assert usage(db, project, "bytes_ingested") == path.stat().st_size
    replay = ingest(db, IngestRequest(project=project, source="cli", path=path))
    assert replay.duplicate_batch
    assert (usage(db, project, "points_ingested"), usage(db, project, "bytes_ingested")) == (
        12, path.stat().st_size)


def test_a_killed_ingest_counts_nothing_and_its_retry_counts_once(db: Conn, dsn: str,
                                                                  project: str,
                                                                  tmp_path: Path) -> None:
    """The ingest's backend is terminated between the merge (counted) and the commit."""
    path = csv_file(tmp_path, 2, 6)
    merged = threading.Event()
    release = threading.Event()
    failure: list[BaseException] = []

    def hold(conn: psycopg.Connection[Any]) -> None:
        merged.set()
        release.wait(30)

    def run() -> None:
        with psycopg.connect(dsn, row_factory=psycopg.rows.dict_row) as conn:
            try:
                ingest(conn, IngestRequest(project=project, source="kill", path=path,
                                           before_merge=hold))
            except BaseException as exc:  # the kill
                failure.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    assert merged.wait(30)
    pid = db.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                     "AND state = 'idle in transaction' AND pid <> pg_backend_pid()").fetchall()
    assert pid, "the ingest's backend is not waiting in its transaction"
    for row in pid:
        db.execute("SELECT pg_terminate_backend(%s)", (row["pid"],))
    db.commit()
    release.set()
    worker.join(30)
    assert failure, "the terminated ingest did not fail"
    assert usage(db, project, "points_ingested") == 0 and stored(db, project) == (0, 0, 0)
    ingest(db, IngestRequest(project=project, source="kill", path=path))
    ingest(db, IngestRequest(project=project, source="kill", path=path))     # replay
    assert usage(db, project, "points_ingested") == 12


def test_the_points_quota_refuses_a_batch_whole_naming_use_quota_and_reset(
        db: Conn, dsn: str, project: str) -> None:
    set_quota(db, project, "points_ingested", 15)
    api = customer(dsn, project)
    api.rpc("ingest_batch", p_batch=batch("a"))                     # 10 of 15
    with pytest.raises(ApiError) as refused:
        api.rpc("ingest_batch", p_batch=batch("b"))                 # 20 > 15
    err = refused.value
    assert (err.status, err.sqlstate) == (402, "PT402")
    assert err.message.startswith("quota exceeded: points_ingested would be 20 of this "
                                  "project's quota of 15 points per month, which resets at ")
    assert err.hint is not None and "Used so far this month: 10 points" in err.hint
    assert "secinf quotas set" in err.hint
    assert stored(db, project) == (1, 1, 10)                        # source b: not even that
    assert usage(db, project, "points_ingested") == 10


def test_the_bytes_quota_refuses_before_anything_is_staged(db: Conn, dsn: str,
                                                           project: str) -> None:
    set_quota(db, project, "bytes_ingested", 100)
    with pytest.raises(ApiError) as refused:
        customer(dsn, project).rpc("ingest_batch", p_batch=batch())
    assert refused.value.sqlstate == "PT402"
    assert refused.value.message.startswith("quota exceeded: bytes_ingested would be ")
    assert stored(db, project) == (0, 0, 0)


def test_the_cli_refuses_past_the_quota_and_stores_nothing(db: Conn, project: str,
                                                           tmp_path: Path) -> None:
    set_quota(db, project, "points_ingested", 5)
    with pytest.raises(UserError) as refused:
        ingest(db, IngestRequest(project=project, source="cli", path=csv_file(tmp_path)))
    text = str(refused.value)
    assert "nothing was stored" in text and "quota exceeded: points_ingested would be 10" in text
    assert "secinf quotas set" in text
    assert stored(db, project) == (0, 0, 0) and usage(db, project, "points_ingested") == 0


def test_past_80_percent_the_work_passes_with_a_warning(db: Conn, dsn: str, project: str,
                                                        tmp_path: Path) -> None:
    set_quota(db, project, "points_ingested", 12)
    warnings: list[str] = []
    ingest(db, IngestRequest(project=project, source="cli", path=csv_file(tmp_path),
                             on_warning=warnings.append))
    assert [w for w in warnings if w.startswith("points_ingested at 83% of its quota "
                                                "(10 of 12 points per month, resets ")]
    # For API callers the same warning is a response header (PostgREST's response.headers).
    with db.transaction():
        db.execute("SELECT billing.check_quota(%s, 'points_ingested', 1)", (project,))
        row = db.execute("SELECT current_setting('response.headers', true) AS h").fetchone()
    assert row is not None
    headers = json.loads(row["h"])
    assert headers == [{"X-Quota-Warning": headers[0]["X-Quota-Warning"]}]
    assert headers[0]["X-Quota-Warning"].startswith("points_ingested at 91% ")


def test_an_upload_url_checks_the_file_against_the_bytes_quota(db: Conn, dsn: str,
                                                               project: str) -> None:
    set_quota(db, project, "bytes_ingested", 1000)
    api = customer(dsn, project)
    with pytest.raises(ApiError) as refused:
        api.rpc("ingest_upload_url", source="cam", filename="t.csv", bytes=1001,
                sha256="0" * 64)
    assert refused.value.sqlstate == "PT402"
    n = db.execute("SELECT count(*) AS n FROM files.uploads WHERE project_id = %s",
                   (project,)).fetchone()
    assert n is not None and n["n"] == 0
    ok = api.rpc("ingest_upload_url", source="cam", filename="t.csv", bytes=1000,
                 sha256="0" * 64)
    assert ok["upload_id"]


# ---------------------------------------------------------------- the pipeline
def test_the_pipeline_counts_source_time_once(db: Conn, dsn: str, project: str) -> None:
    points = [{"track_id": "1", "frame": f, "t": f / 10, "x": 1.0 + f / 10, "y": 1.0}
              for f in range(301)]                                   # 30 s of source time
    customer(dsn, project).rpc("ingest_batch", p_batch=batch("cam", points))
    db.execute("SELECT pipeline.tick(true)")
    db.commit()
    assert usage(db, project, "source_seconds") == 30
    db.execute("SELECT pipeline.tick(true)")                        # nothing new: 0
    db.commit()
    later = [{**p, "frame": p["frame"] + 301, "t": (p["frame"] + 301) / 10} for p in points[:101]]
    customer(dsn, project).rpc("ingest_batch", p_batch=batch("cam", later))
    db.execute("SELECT pipeline.tick(true)")
    db.commit()
    assert usage(db, project, "source_seconds") == 30 + 11          # up to 40.1 s: ceil


def test_a_used_up_source_time_quota_refuses_pipeline_jobs(db: Conn, dsn: str,
                                                           project: str) -> None:
    customer(dsn, project).rpc("ingest_batch", p_batch=batch())
    set_quota(db, project, "source_seconds", 0)
    with pytest.raises(ApiError) as refused:
        customer(dsn, project).rpc("create_job", p_kind="pipeline_run",
                                   p_params=Jsonb({"source": "cam"}))
    assert refused.value.sqlstate == "PT402"
    assert "source_seconds" in refused.value.message
    jobs = db.execute("SELECT count(*) AS n FROM jobs.jobs WHERE project_id = %s",
                      (project,)).fetchone()
    assert jobs is not None and jobs["n"] == 0


# ---------------------------------------------------------------- scoring
def _score_job(db: Conn, project: str) -> tuple[int, list[int]]:
    scene_src = db.execute("INSERT INTO ingest.sources (project_id, name, fps) "
                           "VALUES (%s, 'score-src', 10) RETURNING source_id",
                           (project,)).fetchone()
    onto = db.execute(
        "INSERT INTO rules.ontologies (project_id, name, version, sha256, yaml, parsed, active) "
        "VALUES (%s, 'default', 1, repeat('b', 64), '', '{}', true) RETURNING ontology_id",
        (project,)).fetchone()
    assert scene_src is not None and onto is not None
    ids = [int(r["candidate_id"]) for r in db.execute(
        "INSERT INTO candidates.candidates (project_id, source_id, type, actors, start_ts, "
        "end_ts, rule_name, ontology_id, ontology_version, rule_score) "
        "SELECT %s, %s, 'follow', '{\"leader\": \"1\", \"follower\": \"2\"}', "
        "'2026-01-01'::timestamptz + i * interval '1 s', "
        "'2026-01-01'::timestamptz + (i + 5) * interval '1 s', 'default.follow', %s, 1, 0.5 "
        "FROM generate_series(1, 3) i RETURNING candidate_id",
        (project, scene_src["source_id"], onto["ontology_id"])).fetchall()]
    job = client.enqueue(db, project, "score_candidates", {"candidate_ids": ids})
    db.commit()
    return job, ids


def _write(conn: Conn, job: int, attempt: int, ids: list[int]) -> None:
    conn.execute("SELECT scoring.write_scores(%s, %s, %s, %s, %s, 'test-model')",
                 (job, attempt, ids, [0.5] * len(ids),
                  ["[" + ",".join(["0"] * 64) + "]"] * len(ids)))


def test_scores_count_once_across_a_killed_attempt_and_a_replayed_write(db: Conn,
                                                                        project: str) -> None:
    job, ids = _score_job(db, project)
    first = client.claim(db, "w1", kinds=["score_candidates"])[0]
    db.commit()
    _write(db, job, first.attempt, ids)
    db.rollback()                                     # the attempt dies before its commit
    assert usage(db, project, "candidates_scored") == 0
    _write(db, job, first.attempt, ids)
    db.commit()
    assert usage(db, project, "candidates_scored") == 3
    _write(db, job, first.attempt, ids)               # the same batch written again
    db.commit()
    assert usage(db, project, "candidates_scored") == 3


# ---------------------------------------------------------------- review and downloads
def test_an_accepting_decision_counts_one_verified_event(db: Conn, dsn: str) -> None:
    scene = make_scene(db, "meter-review", "north")
    share(db, scene.project_id, 0.0)
    accepted = make_candidate(db, scene, model_score=0.7)
    rejected = make_candidate(db, scene, model_score=0.7, start=11, end=15)
    alice = as_person(dsn, scene.project_id, "alice")
    alice.rpc("decide", p_candidate_id=accepted, p_decision="accept")
    alice.rpc("decide", p_candidate_id=rejected, p_decision="reject", p_reason="wrong_type")
    assert usage(db, scene.project_id, "events_verified") == 1


def test_served_dataset_bytes_count_per_access_and_refusals_count_nothing(db: Conn,
                                                                          project: str) -> None:
    org = db.execute("SELECT org_id FROM core.projects WHERE project_id = %s",
                     (project,)).fetchone()
    assert org is not None
    key = f"org/{org['org_id']}/project/{project}/datasets/d/1.0.0/train/a.parquet"
    for result, details in (("served", {"bytes": 900, "sent": 100}),
                            ("served", {"bytes": 900}),
                            ("refused", {"error": "expired"})):
        db.execute("SELECT files.record_access(%s, 'GET', %s, '127.0.0.1', %s)",
                   (key, result, Jsonb(details)))
    db.commit()
    assert usage(db, project, "dataset_bytes_downloaded") == 1000


# ---------------------------------------------------------------- operators
def test_quotas_are_set_by_administrators_only_audited_and_cleared(db: Conn, dsn: str,
                                                                   project: str) -> None:
    status = {r["metric"]: r for r in db.execute(
        "SELECT * FROM billing.quota_status(%s)", (project,)).fetchall()}
    assert status["points_ingested"]["quota"] == 5_000_000              # the free plan's
    assert status["points_ingested"]["quota_source"] == "plan"
    assert status["api_requests"]["period"] == "day"
    set_quota(db, project, "points_ingested", None)                     # unlimited
    row = db.execute("SELECT * FROM billing.quota(%s, 'points_ingested')", (project,)).fetchone()
    assert row == {"quota": None, "source": "override"}
    audit = db.execute("SELECT actor, target, details FROM audit.log WHERE project_id = %s "
                       "AND action = 'quota.set'", (project,)).fetchone()
    assert audit is not None and audit["target"] == "points_ingested"
    assert audit["details"]["before"] == 5_000_000 and audit["details"]["reason"] == "test quota"
    db.execute("SELECT billing.set_quota(%s, 'points_ingested', NULL, 'back to plan', true)",
               (project,))
    db.commit()
    row = db.execute("SELECT * FROM billing.quota(%s, 'points_ingested')", (project,)).fetchone()
    assert row == {"quota": 5_000_000, "source": "plan"}
    with pytest.raises(psycopg.Error) as bad:
        db.execute("SELECT billing.set_quota(%s, 'points', 5, 'typo')", (project,))
    assert bad.value.diag.message_primary == 'unknown metric "points"'
    db.rollback()
    # A project admin of the project cannot raise its own quota.
    with psycopg.connect(dsn, row_factory=psycopg.rows.dict_row) as conn:
        conn.execute("SET ROLE project_admin")
        conn.execute("SELECT set_config('request.jwt.claims', %s, false)",
                     (json.dumps({"role": "project_admin", "project_id": project}),))
        with pytest.raises(psycopg.Error) as refused:
            conn.execute("SELECT billing.set_quota(%s, 'points_ingested', 1e12::bigint, "
                         "'more please')", (project,))
        assert refused.value.diag.sqlstate == "42501"
