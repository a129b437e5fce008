"""Retention, legal holds and erasure (issue 19, migration 0028; sql/770-790_records_*.sql).

Retention: whole chunks every source let expire go by drop_chunks, a chunk another project
still keeps loses only the expired project's rows (batched deletes), holds are spared, and
every run and unit is recorded. Holds: project_admin only, audited, refused to reviewers,
and an erasure under one is HTTP 423. Erasure: one track goes from every table it is in
(and nothing else does), the tombstone counts it, published dataset versions holding it
are superseded (and no longer downloadable), unpublished ones are deleted; a subject's
linked tracks go together; the `erase_subject` job does the same through the queue. The
audit log's oldest months go whole, and the chain still verifies from their anchor."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from typer.testing import CliRunner

from tests.support.factories import make_project
from tests.support.postgrest import Api, ApiError
from workers.cli.main import app
from workers.errors import NotFound, UserError
from workers.queue.worker import WorkerConfig, run_worker
from workers.records import Held, erasure, holds, retention

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]
DAY1 = datetime(2026, 1, 1, tzinfo=UTC)       # chunk of project A only
DAY2 = datetime(2026, 1, 2, tzinfo=UTC)       # chunk shared by A and B
LATER = datetime(2026, 3, 1, tzinfo=UTC)      # a run 'now' past A's 30 days (free plan)


def source(db: Conn, project: str, name: str) -> int:
    row = db.execute("INSERT INTO ingest.sources (project_id, name, fps) VALUES (%s, %s, 10)"
                     " RETURNING source_id", (project, name)).fetchone()
    assert row is not None
    return int(row["source_id"])


def points(db: Conn, project: str, source_id: int, track: str, start: datetime, n: int) -> None:
    """n points 0.1 s apart of one track (one batch), with their kinematics rows."""
    batch = db.execute(
        "INSERT INTO ingest.batches (project_id, source_id, idempotency_key, format, status,"
        " rows_total, rows_inserted) VALUES (%s, %s, gen_random_uuid()::text, 'canonical-csv',"
        " 'applied', %s, %s) RETURNING batch_id", (project, source_id, n, n)).fetchone()
    assert batch is not None
    db.execute("INSERT INTO ingest.track_points (project_id, source_id, track_id, frame, ts, x, y,"
               " class, confidence, batch_id) SELECT %s, %s, %s, f, %s + f * interval '100 ms',"
               " f * 0.1, 0, 'pedestrian', 0.9, %s FROM generate_series(0, %s - 1) f",
               (project, source_id, track, start, batch["batch_id"], n))
    db.execute("INSERT INTO features.kinematics (project_id, source_id, track_id, frame, ts,"
               " segment, x, y, speed) SELECT %s, %s, %s, f, %s + f * interval '100 ms', 0,"
               " f * 0.1, 0, 1.0 FROM generate_series(0, %s - 1) f",
               (project, source_id, track, start, n))


def count(db: Conn, rel: str, where: str = "true", *args: Any) -> int:
    row = db.execute(f"SELECT count(*) AS n FROM {rel} WHERE {where}", args).fetchone()
    db.rollback()
    assert row is not None
    return int(row["n"])


def chunks(db: Conn, table: str) -> list[datetime]:
    rows = db.execute("SELECT range_start FROM timescaledb_information.chunks"
                      " WHERE hypertable_name = %s ORDER BY 1", (table,)).fetchall()
    db.rollback()
    return [r["range_start"] for r in rows]


@pytest.fixture
def two(db: Conn) -> dict[str, Any]:
    a = make_project(db, "rec-org", "alpha")
    b = make_project(db, "rec-org", "beta")
    sa, sb = source(db, a, "cam-a"), source(db, b, "cam-b")
    points(db, a, sa, "1", DAY1, 100)
    points(db, a, sa, "1", DAY2, 100)
    points(db, b, sb, "9", DAY2 + (DAY2 - DAY1) / 2, 100)
    db.commit()
    return {"a": a, "b": b, "sa": sa, "sb": sb}


# ---------------------------------------------------------------- retention
def test_plan_defaults_and_a_projects_own_setting_are_audited(db: Conn, two: dict[str, Any]
                                                              ) -> None:
    shown = {r["category"]: r for r in retention.retention_of(db, two["a"])}
    assert shown["track_points"]["keep_days"] == 30 and shown["track_points"]["source"] == "plan"
    change = retention.set_retention(db, two["b"], "track_points", None, "keep for the study")
    assert change == {"category": "track_points", "keep": None, "source": "project",
                      "before": "30 days"}
    audit = db.execute("SELECT action, target, details FROM audit.log WHERE project_id = %s"
                       " AND action LIKE 'retention.%%'", (two["b"],)).fetchall()
    assert [(r["action"], r["target"]) for r in audit] == [("retention.set", "track_points")]
    assert audit[0]["details"]["reason"] == "keep for the study"
    with pytest.raises(UserError, match="unknown retention category"):
        retention.set_retention(db, two["a"], "videos", "1 day", "no such thing")
    with pytest.raises(UserError, match="at least 1 day"):
        retention.set_retention(db, two["a"], "events", "1 hour", "too short")
    assert retention.parse_keep("6mo") == "6 months" and retention.parse_keep("forever") is None
    with pytest.raises(UserError, match="--keep"):
        retention.parse_keep("soon")


def test_whole_chunks_drop_and_a_shared_chunk_loses_only_the_expired_rows(
        db: Conn, two: dict[str, Any]) -> None:
    retention.set_retention(db, two["b"], "track_points", None, "B keeps its points")
    retention.set_retention(db, two["b"], "features", None, "B keeps its features")
    assert chunks(db, "track_points") == [DAY1, DAY2]
    result = retention.run(db, batch=30, at=LATER)
    # A's own chunk went whole (both hypertables); the shared chunk keeps B's rows only.
    assert chunks(db, "track_points") == [DAY2] and chunks(db, "kinematics") == [DAY2]
    assert count(db, "ingest.track_points", "project_id = %s", two["a"]) == 0
    assert count(db, "ingest.track_points", "project_id = %s", two["b"]) == 100
    assert count(db, "features.kinematics", "project_id = %s", two["b"]) == 100
    steps = result["steps_detail"]
    dropped = [s for s in steps if s["method"] == "drop_chunks"]
    assert {s["relation"] for s in dropped} == {"ingest.track_points", "features.kinematics"}
    assert all(s["chunks"] == 1 for s in dropped)
    deleted = {s["relation"].split(".")[0]: s for s in steps if s["method"] == "delete"
               and s["project"] == "rec-org/alpha"}
    assert deleted["_timescaledb_internal"]["rows"] == 100          # by batches of 30
    assert result["rows"] == 200 and result["chunks"] == 2
    runs = retention.history(db)
    assert runs[0]["run_id"] == result["run_id"] and runs[0]["status"] == "ok"
    # A second run finds nothing more.
    again = retention.run(db, at=LATER)
    assert again["rows"] == 0 and again["chunks"] == 0


def test_a_legal_hold_spares_its_range_and_keeps_the_chunk(db: Conn, two: dict[str, Any]
                                                          ) -> None:
    hold = holds.set_hold(db, two["a"], "case 2026-17", source="cam-a",
                          from_ts=DAY1, to_ts=DAY1.replace(second=5))
    retention.run(db, at=LATER)
    # Day 1 is not dropped (the hold covers its first 5 s); the held points stay.
    assert chunks(db, "track_points")[0] == DAY1
    assert count(db, "ingest.track_points", "project_id = %s", two["a"]) == 50
    holds.lift_hold(db, two["a"], hold["hold_id"], "case closed")
    retention.run(db, at=LATER)
    assert count(db, "ingest.track_points", "project_id = %s", two["a"]) == 0
    acts = [r["action"] for r in db.execute(
        "SELECT action FROM audit.log WHERE project_id = %s AND action LIKE 'legal_hold.%%'"
        " ORDER BY audit_id", (two["a"],)).fetchall()]
    assert acts == ["legal_hold.set", "legal_hold.lift"]
    with pytest.raises(UserError, match="already lifted"):
        holds.lift_hold(db, two["a"], hold["hold_id"], "twice")
    with pytest.raises(NotFound, match="no source"):
        holds.set_hold(db, two["a"], "wrong source", source="nope")


def test_holds_are_for_project_admins_only(dsn: str, db: Conn, two: dict[str, Any]) -> None:
    api = Api(dsn)
    reviewer = api.as_("reviewer", project_id=two["a"], sub="rev@example.com")
    with pytest.raises(ApiError) as refused:
        reviewer.rpc("set_legal_hold", reason="not mine to set")
    assert refused.value.status == 403
    admin = api.as_("project_admin", project_id=two["a"], sub="admin@example.com")
    hold = admin.rpc("set_legal_hold", reason="litigation hold", source="cam-a")
    listed = admin.rpc("legal_holds")
    assert [h["hold_id"] for h in listed] == [hold["hold_id"]] and listed[0]["source"] == "cam-a"
    other = api.as_("project_admin", project_id=two["b"], sub="b-admin@example.com")
    with pytest.raises(ApiError) as foreign:
        other.rpc("lift_legal_hold", hold_id=hold["hold_id"], reason="not my project")
    assert foreign.value.status == 404
    # The hold stops an erasure with 423 Locked, naming the hold and how to lift it.
    with pytest.raises(ApiError) as locked:
        admin.rpc("erase_subject", reason="GDPR request 1", source="cam-a", track_id="1")
    assert locked.value.status == 423 and f"legal hold {hold['hold_id']}" in locked.value.message
    assert count(db, "records.tombstones") == 0
    admin.rpc("lift_legal_hold", hold_id=hold["hold_id"], reason="released")
    got = admin.rpc("erase_subject", reason="GDPR request 1", source="cam-a", track_id="1")
    assert got["job_id"] > 0 and got["status"] == "pending"


# ---------------------------------------------------------------- erasure
def scene(db: Conn) -> dict[str, Any]:
    """Two tracks of one source with candidates, a decision, an event, a published dataset
    version holding both and a draft holding track 1; a second source untouched."""
    p = make_project(db, "erase-org", "plaza")
    s, other = source(db, p, "cam-1"), source(db, p, "cam-2")
    for track in ("1", "2"):
        points(db, p, s, track, DAY1, 50)
    points(db, p, other, "1", DAY1, 50)
    db.execute("INSERT INTO features.change_points (project_id, source_id, track_id, ts, frame,"
               " signal, direction, magnitude, score) VALUES (%s, %s, '1', %s, 3, 'speed', 1, 1,"
               " 1)", (p, s, DAY1))
    ont = db.execute("INSERT INTO rules.ontologies (project_id, name, version, sha256, yaml,"
                     " parsed) VALUES (%s, 'o', 1, repeat('c', 64), 'x', '{}')"
                     " RETURNING ontology_id", (p,)).fetchone()
    assert ont is not None
    cands = [r["candidate_id"] for r in db.execute(
        "INSERT INTO candidates.candidates (project_id, source_id, type, actors, start_ts, end_ts,"
        " rule_name, ontology_id, ontology_version, rule_score, status) VALUES"
        " (%(p)s, %(s)s, 'follow', '{\"leader\": \"1\", \"follower\": \"2\"}', %(t)s,"
        "  %(t)s + interval '3 s', 'o.follow', %(o)s, 1, 0.9, 'scored'),"
        " (%(p)s, %(s)s, 'stop', '{\"actor\": \"2\"}', %(t)s, %(t)s + interval '2 s', 'o.stop',"
        "  %(o)s, 1, 0.8, 'scored'),"
        " (%(p)s, %(s2)s, 'stop', '{\"actor\": \"1\"}', %(t)s, %(t)s + interval '2 s', 'o.stop',"
        "  %(o)s, 1, 0.8, 'scored') RETURNING candidate_id",
        {"p": p, "s": s, "s2": other, "t": DAY1, "o": ont["ontology_id"]}).fetchall()]
    db.execute("SELECT core.add_member(%s, 'user', 'rev@example.com', 'reviewer')", (p,))
    db.execute("SELECT set_config('request.jwt.claims', %s, true)",
               (json.dumps({"role": "reviewer", "project_id": p, "sub": "rev@example.com"}),))
    db.execute("SELECT api.decide(%s, 'accept')", (cands[0],))
    db.execute("SELECT set_config('request.jwt.claims', '', true)")
    db.execute("INSERT INTO events.events (project_id, source_id, type, actors, start_ts,"
               " end_ts, confidence, source, verified_by) VALUES (%s, %s, 'stop',"
               " '{\"actor\": \"2\"}', %s, %s + interval '2 s', 0.8, 'rule', 'events.promote')",
               (p, s, DAY1, DAY1))
    db.execute("INSERT INTO records.subjects (project_id, subject_hash, source_id, track_id,"
               " linked_by) VALUES (%s, 'sha256:aaaabbbb', %s, '1', 'test')", (p, s))
    versions = {}
    for version, publish, tracks in (("1.0.0", True, ("1", "2")), ("1.1.0", False, ("1",)),
                                     ("2.0.0", True, ("2",))):
        row = db.execute(
            "INSERT INTO datasets.versions (project_id, version, schema_version, split_seed,"
            " train_ratio, val_ratio, test_ratio, context_s, storage_path, data_card,"
            " manifest_sha256, manifest) VALUES (%s, %s, 1, 0, 0.7, 0.15, 0.15, 2, %s, '# card',"
            " repeat('0', 64), '{\"split\": {\"sources\": {\"cam-1\": \"train\"}}}')"
            " RETURNING version_id", (p, version, f"org/x/project/{p}/datasets/events/{version}")
        ).fetchone()
        assert row is not None
        vid = versions[version] = row["version_id"]
        for t in tracks:
            db.execute("INSERT INTO datasets.version_tracks VALUES (%s, %s, %s, %s)",
                       (p, vid, s, t))
        db.execute("INSERT INTO datasets.files (project_id, version_id, path, kind, split, rows,"
                   " bytes, sha256) VALUES (%s, %s, 'train/events.parquet', 'events', 'train', 0,"
                   " 0, repeat('0', 64))", (p, vid))
        db.execute("INSERT INTO datasets.quality_reports (project_id, version_id, gate, passed,"
                   " summary) VALUES (%s, %s, 'schema', true, 'ok')", (p, vid))
        if publish:
            db.execute("UPDATE datasets.versions SET status = 'published' WHERE version_id = %s",
                       (vid,))
    db.commit()
    return {"p": p, "s": s, "other": other, "cands": cands, "versions": versions}


def test_erasing_a_track_removes_it_everywhere_and_nothing_else(db: Conn) -> None:
    sc = scene(db)
    p, s = sc["p"], sc["s"]
    stone = erasure.request(db, p, "GDPR request 42", source="cam-1", track="1")
    seen: list[dict[str, Any]] = []
    final = erasure.run(db, int(stone["tombstone_id"]), limit=20, progress=seen.append)
    assert final["status"] == "done" and len(seen) > 3 and seen[-1]["done"]
    for rel in ("ingest.track_points", "features.kinematics", "features.change_points"):
        assert count(db, rel, "source_id = %s AND track_id = '1'", s) == 0
    assert count(db, "ingest.track_points", "source_id = %s AND track_id = '2'", s) == 50
    assert count(db, "ingest.track_points", "source_id = %s", sc["other"]) == 50
    # The follow candidate (1 and 2), its decision and its event went; 2's stop and its
    # event stay.
    assert count(db, "candidates.candidates", "candidate_id = %s", sc["cands"][0]) == 0
    assert count(db, "candidates.candidates", "candidate_id = ANY(%s)", sc["cands"][1:]) == 2
    assert count(db, "review.decisions", "project_id = %s", p) == 0
    assert count(db, "events.events", "project_id = %s", p) == 1
    assert count(db, "records.subjects", "project_id = %s", p) == 0
    assert final["counts"] == {
        "ingest.track_points": 50, "features.kinematics": 50, "features.change_points": 1,
        "candidates.candidates": 1, "review.decisions": 1, "records.subjects": 1,
        "events.events": 1}  # the accepted follow became an event
    v = sc["versions"]
    assert [x["version"] for x in final["versions_superseded"]] == ["1.0.0"]
    assert [x["version"] for x in final["versions_deleted"]] == ["1.1.0"]
    assert count(db, "datasets.versions", "version_id = %s", v["1.1.0"]) == 0
    shown = db.execute("SELECT version, superseded_at IS NOT NULL AS superseded"
                       " FROM api.datasets WHERE project_id = %s ORDER BY version", (p,)).fetchall()
    assert [(r["version"], r["superseded"]) for r in shown] == [("1.0.0", True), ("2.0.0", False)]
    actions = [r["action"] for r in db.execute(
        "SELECT action FROM audit.log WHERE project_id = %s AND action LIKE 'erasure.%%'"
        " ORDER BY audit_id", (p,)).fetchall()]
    assert actions == ["erasure.request", "erasure.done"]
    # The tombstone holds ids and counts, never positions; nobody may change or delete it.
    assert "x" not in json.dumps(final["counts"])
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        db.execute("DELETE FROM records.tombstones")
    db.rollback()


def test_a_superseded_version_is_no_longer_downloadable(dsn: str, db: Conn) -> None:
    sc = scene(db)
    erasure.run(db, int(erasure.request(db, sc["p"], "request 7", source="cam-1",
                                        track="1")["tombstone_id"]))
    customer = Api(dsn).as_("customer", project_id=sc["p"], sub="key:sik_test")
    with pytest.raises(ApiError) as gone:
        customer.rpc("dataset_download", p_version="1.0.0")
    assert gone.value.status == 410 and "superseded" in gone.value.message


def test_a_subjects_tracks_go_together_through_the_queue(dsn: str, db: Conn) -> None:
    sc = scene(db)
    p = sc["p"]
    added = erasure.link_subjects(db, p, [{"source": "cam-1", "track_id": "2",
                                           "subject": "sha256:aaaabbbb"},
                                          {"source": "cam-2", "track_id": "1",
                                           "subject": "sha256:aaaabbbb"}])
    assert added == 2
    with pytest.raises(UserError, match="link 1: no source"):
        erasure.link_subjects(db, p, [{"source": "nope", "track_id": "1",
                                       "subject": "sha256:cccccccc"}])
    admin = Api(dsn).as_("project_admin", project_id=p, sub="dpo@example.com")
    got = admin.rpc("erase_subject", reason="subject access request", subject="sha256:aaaabbbb")
    assert len(got["tracks"]) == 3
    run_worker(dsn, WorkerConfig(kinds=("erase_subject",), mode="until_idle", concurrency=1,
                                 poll_s=0.2, lease_s=30.0), signals=False)
    job = db.execute("SELECT state, result FROM jobs.jobs j JOIN jobs.results r USING (job_id)"
                     " WHERE j.job_id = %s", (got["job_id"],)).fetchone()
    assert job is not None and job["state"] == "succeeded", job
    assert count(db, "ingest.track_points", "project_id = %s", p) == 0
    assert count(db, "events.events", "project_id = %s", p) == 0
    stones = admin.rpc("tombstones")
    assert stones[0]["status"] == "done" and stones[0]["counts"]["ingest.track_points"] == 150
    assert {v["version"] for v in stones[0]["versions_superseded"]} == {"1.0.0", "2.0.0"}


def test_erasure_requests_name_what_is_wrong(db: Conn) -> None:
    sc = scene(db)
    with pytest.raises(NotFound, match='source "cam-1" has no track "77"'):
        erasure.request(db, sc["p"], "request 9", source="cam-1", track="77")
    with pytest.raises(NotFound, match="no tracks are linked"):
        erasure.request(db, sc["p"], "request 9", subject="sha256:unknown0")
    with pytest.raises(UserError, match="name one actor"):
        erasure.request(db, sc["p"], "request 9")
    holds.set_hold(db, sc["p"], "matter 12")
    with pytest.raises(Held, match="legal hold"):
        erasure.request(db, sc["p"], "request 9", source="cam-1", track="1")
    assert count(db, "records.tombstones") == 0


def test_cli_erase_and_retention_commands(secinf_env: str, db: Conn) -> None:
    sc = scene(db)
    runner = CliRunner()
    out = runner.invoke(app, ["erase", "-p", "erase-org/plaza", "--source", "cam-1", "--track",
                              "2", "--reason", "ticket 5", "--json"])
    assert out.exit_code == 0, out.output
    final = json.loads(out.output)
    assert final["status"] == "done" and final["counts"]["ingest.track_points"] == 50
    listed = runner.invoke(app, ["tombstones", "-p", "erase-org/plaza", "--json"])
    assert json.loads(listed.output)["tombstones"][0]["subject"] == "2"
    refused = runner.invoke(app, ["erase", "-p", "erase-org/plaza", "--source", "cam-1",
                                  "--track", "2", "--reason", "ticket 5"])
    assert isinstance(refused.exception, NotFound) and refused.exception.exit_code == 2
    assert 'has no track "2"' in str(refused.exception)
    ran = runner.invoke(app, ["retention", "run", "--at", "2026-03-01", "--json"])
    assert ran.exit_code == 0, ran.output
    assert json.loads(ran.output)["rows"] > 0
    status = runner.invoke(app, ["db", "status", "--json"])
    assert json.loads(status.output)["retention"]["last_run"]["status"] == "ok"
    del sc


# ---------------------------------------------------------------- audit months
def test_old_audit_months_go_whole_and_the_chain_verifies_from_their_anchor(db: Conn) -> None:
    p = make_project(db, "audit-ret", "old-months")
    # A month long past: its partition, rows in it, sealed into the chain first.
    db.execute("SET ROLE secinf_owner")  # as audit.ensure_partitions makes them
    db.execute("CREATE TABLE audit.log_2019_01 PARTITION OF audit.log FOR VALUES FROM"
               " ('2019-01-01 00:00+00') TO ('2019-02-01 00:00+00')")
    db.execute("RESET ROLE")
    db.execute("SELECT set_config('secinf.audit_sealing', 'off', true)")
    db.execute("INSERT INTO audit.log (at, project_id, actor, action, target)"
               " SELECT '2019-01-10'::timestamptz + i * interval '1 minute', %s, 'old', 'old.row',"
               " 't' || i FROM generate_series(1, 5) i", (p,))
    db.commit()
    # Seal the old rows first (the chain takes rows in order of time).
    while db.execute("SELECT audit.seal() AS n").fetchone()["n"]:  # type: ignore[index]
        db.commit()
    db.commit()
    before = db.execute("SELECT * FROM audit.verify_chain()").fetchone()
    assert before is not None and before["first_broken"] is None
    db.rollback()
    with psycopg.connect(db.info.dsn, row_factory=dict_row, autocommit=True) as auto:
        got = auto.execute("CALL records.run_retention(50000, NULL, now())").fetchone()
    assert got is not None
    months = [r["partition"] for r in db.execute("SELECT partition FROM audit.anchors").fetchall()]
    assert months == ["log_2019_01"]
    assert db.execute("SELECT to_regclass('audit.log_2019_01') AS r").fetchone() == {"r": None}
    after = db.execute("SELECT * FROM audit.verify_chain()").fetchone()
    assert after is not None and after["first_broken"] is None
    assert after["rows_checked"] == before["rows_checked"] - 5
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        db.execute("DELETE FROM audit.anchors")
    db.rollback()


# ---------------------------------------------------------------- dataset files
def test_expired_dataset_versions_lose_their_objects_through_a_job(
        dsn: str, db: Conn, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.support.stored_dataset import store_version
    from workers.storage.local import LocalStorage

    monkeypatch.setenv("SECINF_DATASETS_DIR", str(tmp_path))
    store = LocalStorage(tmp_path)
    p = make_project(db, "ds-ret", "plaza")
    prefix = store_version(db, store, p, "1.0.0")
    assert store.list(prefix)
    # The free plan keeps dataset files 90 days: a run 100 days on takes this version.
    result = retention.run(db, at=datetime.now(UTC).replace(microsecond=0)
                           + (LATER - DAY1) + (LATER - DAY1))
    expired = [s for s in result["steps_detail"] if s["method"] == "expire"]
    assert [(s["project"], s["rows"]) for s in expired] == [("ds-ret/plaza", 1)]
    job = db.execute("SELECT job_id, kind, payload FROM jobs.jobs WHERE project_id = %s"
                     " AND kind = 'expire_dataset_files'", (p,)).fetchone()
    assert job is not None and len(job["payload"]["version_ids"]) == 1
    db.rollback()
    run_worker(dsn, WorkerConfig(kinds=("expire_dataset_files",), mode="until_idle",
                                 concurrency=1, poll_s=0.2, lease_s=30.0), signals=False)
    assert store.list(prefix) == []
    row = db.execute("SELECT objects_deleted_at IS NOT NULL AS gone FROM records.expired_versions"
                     " e JOIN datasets.versions v USING (version_id) WHERE v.project_id = %s",
                     (p,)).fetchone()
    assert row == {"gone": True}
    customer = Api(dsn).as_("customer", project_id=p, sub="key:sik_test")
    with pytest.raises(ApiError) as gone:
        customer.rpc("dataset_download", p_version="1.0.0")
    assert gone.value.status == 410 and "expired" in gone.value.message
    # The version's row stays as the record (the manifest, the checksums).
    assert count(db, "datasets.versions", "project_id = %s", p) == 1


def test_the_pipeline_role_deletes_only_what_retention_allows_today(
        dsn: str, db: Conn, two: dict[str, Any]) -> None:
    """The units the cron job calls as `pipeline` work out their own cut-offs: a caller may
    not name a later 'now', a table retention does not know, or a chunk of another table."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(dsn)
    params.update(user="pipeline")
    params.pop("password", None)
    retention.set_retention(db, two["b"], "track_points", None, "B keeps its points")
    chunk = db.execute("SELECT format('%%I.%%I', chunk_schema, chunk_name) AS c FROM"
                       " timescaledb_information.chunks WHERE hypertable_name = 'track_points'"
                       " AND range_start = %s", (DAY2,)).fetchone()
    db.rollback()
    assert chunk is not None
    with psycopg.connect(make_conninfo(**params), row_factory=dict_row,  # type: ignore[arg-type]
                         autocommit=True) as cron:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="later time"):
            cron.execute("SELECT records.retention_table_batch('events.events', %s,"
                         " now() + interval '10 years', 1000)", (two["a"],))
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="not a table retention"):
            cron.execute("SELECT records.retention_table_batch('core.api_keys', %s, NULL, 1000)",
                         (two["a"],))
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="not a chunk"):
            cron.execute("SELECT * FROM records.retention_chunk(1, 'ingest.sources', NULL)")
        # A source that keeps its points loses none, whatever chunk the caller names.
        got = cron.execute("SELECT records.retention_chunk_batch(%s, %s, NULL, 1000) AS n",
                           (chunk["c"], two["sb"])).fetchone()
    assert got == {"n": 0}
    assert count(db, "ingest.track_points", "project_id = %s", two["b"]) == 100
