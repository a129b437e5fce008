"""Rows for every tenant table, for the isolation matrix.

`populate(db, project_id)` writes at least one row into each tenant table for a project.
The matrix test fails on a tenant table that has no rows for both projects: a new table
must get data here (or from the real pipeline) before it counts as covered.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg

from workers import tenancy

Conn = psycopg.Connection[dict[str, Any]]


# The product's schemas: tenant tables (with project_id) live in them; the matrix reads
# every relation of them (tests/db/test_isolation.py, test_hostile_tenant.py).
SCHEMAS = ["core", "auth", "audit", "api", "ingest", "features", "rules", "candidates",
           "review", "events", "jobs", "datasets", "billing", "scoring", "pipeline",
           "analytics", "files", "records"]


def tenant_tables(db: Conn) -> list[str]:
    """Every table with a project_id column in the product's schemas (a partitioned table
    counts once: its partitions are reached through it, tests/db/test_audit_chain.py)."""
    rows = db.execute(
        """SELECT format('%%I.%%I', n.nspname, c.relname) AS rel
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%s) AND NOT c.relispartition
             AND EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid
                         AND a.attname = 'project_id' AND NOT a.attisdropped)
           ORDER BY 1""", (SCHEMAS,)).fetchall()
    return [r["rel"] for r in rows]


def _exists(db: Conn, rel: str) -> bool:
    row = db.execute("SELECT to_regclass(%s) IS NOT NULL AS ok", (rel,)).fetchone()
    return bool(row and row["ok"])


def populate(db: Conn, project_id: str, tag: str) -> None:
    """Write one small scene's worth of rows for the project (admin connection)."""
    tenancy.create_key(db, project_id, "customer", None, f"{tag}-key")
    db.execute("SELECT core.add_member(%s, 'user', %s, 'reviewer')",
               (project_id, f"{tag}-reviewer@example.com"))
    src = db.execute(
        "INSERT INTO ingest.sources (project_id, name, fps) VALUES (%s, %s, 10) "
        "RETURNING source_id", (project_id, f"{tag}-cam")).fetchone()
    assert src is not None
    source_id = src["source_id"]
    batch = db.execute(
        "INSERT INTO ingest.batches (project_id, source_id, idempotency_key, format, status,"
        " rows_total, rows_inserted) VALUES (%s, %s, %s, 'canonical-csv', 'applied', 3, 3)"
        " RETURNING batch_id", (project_id, source_id, f"{tag}-batch")).fetchone()
    assert batch is not None
    db.execute(
        "INSERT INTO ingest.track_points (project_id, source_id, track_id, frame, ts, x, y,"
        " class, confidence, batch_id)"
        " SELECT %s, %s, '1', f, '2026-01-01'::timestamptz + f * interval '100 ms', f * 0.1, 0,"
        "        'pedestrian', 0.9, %s FROM generate_series(0, 2) f",
        (project_id, source_id, batch["batch_id"]))
    db.execute(
        "INSERT INTO ingest.poses (project_id, source_id, track_id, frame, ts, keypoints, batch_id)"
        " VALUES (%s, %s, '1', 0, '2026-01-01', array_fill(0.5::real, ARRAY[51]), %s)",
        (project_id, source_id, batch["batch_id"]))
    db.execute("INSERT INTO ingest.zones (project_id, source_id, name, polygon)"
               " VALUES (%s, %s, 'gate', '((0,0),(0,1),(1,1),(1,0))')", (project_id, source_id))
    db.execute("INSERT INTO ingest.routes (project_id, source_id, name, from_zone, path)"
               " VALUES (%s, %s, 'north', 'gate', '[(0,0),(0,5)]')", (project_id, source_id))
    db.execute("INSERT INTO ingest.triggers (project_id, source_id, name, ts, position, radius)"
               " VALUES (%s, %s, 'bang', '2026-01-01 00:00:01', '(0,0)', 5)",
               (project_id, source_id))
    db.execute("INSERT INTO ingest.dirty_ranges (project_id, source_id, from_ts, to_ts)"
               " VALUES (%s, %s, '2026-01-01', '2026-01-01 00:00:01')", (project_id, source_id))
    if _exists(db, "pipeline.source_failures"):
        # A failing source, recorded the way a failed tick records it.
        db.execute("SELECT pipeline.tick_failed(%s, 'value out of range: overflow', '22003',"
                   " 'kinematics')", (source_id,))
    if _exists(db, "jobs.jobs"):
        # One job through the queue's own functions: queued → claimed → completed.
        job = db.execute("SELECT jobs.enqueue(%s, 'noop', '{}') AS id", (project_id,)).fetchone()
        assert job is not None
        claimed = db.execute(
            "SELECT job_id, attempt FROM jobs.claim(%s, ARRAY['noop'], 10) WHERE job_id = %s",
            (f"{tag}-worker", job["id"])).fetchone()
        assert claimed is not None
        db.execute("SELECT jobs.complete(%s, %s, '{\"ok\": true}')",
                   (claimed["job_id"], claimed["attempt"]))
        db.execute("SELECT jobs.enqueue(%s, 'noop', '{}')", (project_id,))
    if _exists(db, "review.decisions"):
        _review_rows(db, project_id, tag, source_id)
    if _exists(db, "datasets.versions"):
        # A published dataset version: a draft with a file and a passed gate, then published
        # (the only way the triggers allow).
        version = db.execute(
            "INSERT INTO datasets.versions (project_id, version, schema_version, split_seed,"
            " train_ratio, val_ratio, test_ratio, context_s, storage_path, data_card,"
            " manifest_sha256) VALUES (%s, '1.0.0', 1, 0, 0.7, 0.15, 0.15, 2, %s, '# card',"
            " repeat('0', 64)) RETURNING version_id",
            (project_id, f"/datasets/{tag}/events/1.0.0")).fetchone()
        assert version is not None
        part = (project_id, version["version_id"])
        db.execute("INSERT INTO datasets.files (project_id, version_id, path, kind, split, rows,"
                   " bytes, sha256) VALUES (%s, %s, 'train/events.parquet', 'events', 'train',"
                   " 0, 0, repeat('0', 64))", part)
        db.execute("INSERT INTO datasets.quality_reports (project_id, version_id, gate, passed,"
                   " summary) VALUES (%s, %s, 'schema', true, 'ok')", part)
        if _exists(db, "datasets.version_tracks"):
            db.execute("INSERT INTO datasets.version_tracks (project_id, version_id, source_id,"
                       " track_id) VALUES (%s, %s, %s, '1')", (*part, source_id))
        db.execute("UPDATE datasets.versions SET status = 'published' WHERE version_id = %s",
                   (version["version_id"],))
        if _exists(db, "records.tombstones"):
            _records_rows(db, project_id, source_id, version["version_id"])
    if _exists(db, "files.uploads"):
        # A signed upload, issued and not yet received.
        db.execute(
            "INSERT INTO files.uploads (project_id, source, filename, object_key, bytes, sha256,"
            " issued_by, expires_at)"
            " SELECT p.project_id, %s, 'tracks.csv', format('org/%%s/project/%%s/uploads/%%s/"
            "tracks.csv', p.org_id, p.project_id, gen_random_uuid()), 10, repeat('a', 64),"
            " 'fixture', now() + interval '1 hour' FROM core.projects p WHERE p.project_id = %s",
            (f"{tag}-cam", project_id))
    if _exists(db, "billing.usage"):
        # Metering: a count (with its work key), an operator's quota, a flushed request
        # count and a usage report waiting for Stripe.
        db.execute("SELECT billing.count(%s, 'points_ingested', 5, %s)",
                   (project_id, f"fixture:{tag}"))
        db.execute("INSERT INTO billing.quota_overrides (project_id, metric, quota, set_by,"
                   " reason) VALUES (%s, 'points_ingested', 1000, 'fixture', 'fixture row')",
                   (project_id,))
        db.execute("INSERT INTO billing.request_counts (epoch, project_id, hour, n)"
                   " VALUES ('fixture', %s, billing.hour_of(now()), 3)", (project_id,))
        db.execute("INSERT INTO billing.usage_reports (project_id, metric, hour, amount,"
                   " identifier) VALUES (%s, 'points_ingested', billing.hour_of(now()), 5, %s)",
                   (project_id, f"fixture-{project_id}"))
    db.commit()


def _records_rows(db: Conn, project_id: str, source_id: int, version_id: int) -> None:
    """A retention setting, a (long past) legal hold, a subject link, a finished erasure's
    tombstone with the version it superseded, an expired version and a retention step."""
    db.execute("SELECT records.set_retention(%s, 'events', '2 years', 'fixture')", (project_id,))
    db.execute("SELECT records.set_hold(%s, NULL, '1990-01-01', '1990-01-02', 'fixture hold')",
               (project_id,))
    db.execute("SELECT records.link_subjects(%s, jsonb_build_array(jsonb_build_object("
               "'source', s.name, 'track_id', '1', 'subject', 'sha256:fixture1')))"
               " FROM ingest.sources s WHERE s.source_id = %s", (project_id, source_id))
    stone = db.execute(
        "INSERT INTO records.tombstones (project_id, subject_kind, subject, source_id, tracks,"
        " reason, requested_by, status, finished_at) VALUES (%s, 'track', '404', %s,"
        " jsonb_build_array(jsonb_build_object('source_id', %s, 'track_id', '404')),"
        " 'fixture erasure', 'fixture', 'done', now()) RETURNING tombstone_id",
        (project_id, source_id, source_id)).fetchone()
    assert stone is not None
    db.execute("INSERT INTO records.superseded_versions (version_id, project_id, tombstone_id)"
               " VALUES (%s, %s, %s)", (version_id, project_id, stone["tombstone_id"]))
    run = db.execute("INSERT INTO records.retention_runs (started_by, status) VALUES"
                     " ('fixture', 'ok') RETURNING run_id").fetchone()
    assert run is not None
    db.execute("INSERT INTO records.expired_versions (version_id, project_id, run_id,"
               " storage_path) VALUES (%s, %s, %s, 'fixture/path')",
               (version_id, project_id, run["run_id"]))
    db.execute("SELECT records.retention_record(%s, %s, 'events', 'events.events', 'delete',"
               " now(), 0, 0, 0.0)", (run["run_id"], project_id))


def _review_rows(db: Conn, project_id: str, tag: str, source_id: int) -> None:
    """Review settings, a decision with its live row, an answered second opinion, a human
    and a machine event: through the review functions, acting as the project's reviewers."""
    first, second = f"{tag}-reviewer@example.com", f"{tag}-second@example.com"
    db.execute("SELECT core.add_member(%s, 'user', %s, 'reviewer')", (project_id, second))
    ont = db.execute(
        "INSERT INTO rules.ontologies (project_id, name, version, sha256, yaml, parsed)"
        " VALUES (%s, 'iso-review', 1, repeat('b', 64), 'x', '{}') RETURNING ontology_id",
        (project_id,)).fetchone()
    assert ont is not None
    ids = [r["candidate_id"] for r in db.execute(
        "INSERT INTO candidates.candidates (project_id, source_id, type, actors, start_ts,"
        " end_ts, rule_name, ontology_id, ontology_version, rule_score, model_score, status)"
        " SELECT %s, %s, 'stop', '{\"actor\": \"1\"}', '2026-01-01'::timestamptz"
        " + v.i * interval '1 ms', '2026-01-01 00:00:00.2', 'iso-review.stop', %s, 1, 0.5,"
        " v.s, 'scored' FROM (VALUES (1, 0.5), (2, 0.99)) v (i, s) ORDER BY v.i"
        " RETURNING candidate_id", (project_id, source_id, ont["ontology_id"])).fetchall()]
    db.execute("INSERT INTO review.settings (project_id, second_opinion_share, auto_accept_model)"
               " VALUES (%s, 1.0, 0.95) ON CONFLICT (project_id) DO UPDATE"
               " SET second_opinion_share = 1.0, auto_accept_model = 0.95", (project_id,))
    for who, call in ((first, "SELECT api.decide(%s, 'accept')"),
                      (second, "SELECT api.give_second_opinion(%s, 'accept')")):
        db.execute("SELECT set_config('request.jwt.claims', %s, true)",
                   (json.dumps({"role": "reviewer", "project_id": project_id, "sub": who}),))
        db.execute(call, (ids[0],))
    db.execute("SELECT set_config('request.jwt.claims', '', true)")
    db.execute("SELECT events.promote(%s)", (project_id,))
    if _exists(db, "scoring.examples"):
        # The agreed decision as a training example (the project's own sync), and a
        # recorded change of the project's model (back to the global one).
        db.execute("SELECT scoring.sync_review_examples(%s)", (project_id,))
        db.execute("INSERT INTO scoring.activations (project_id, version, action, reason)"
                   " VALUES (%s, NULL, 'rollback', 'isolation fixture')", (project_id,))

def populate_pipeline(db: Conn, project_id: str, tag: str, tmp: Path) -> None:
    """Run the real product over a short scene for the project: ontology, ingest, pipeline.

    Fills the feature, rules, candidate and scoring tables the way production does. A model
    row scoped to the project makes the scoring stage queue jobs for its candidates.
    """
    from workers.ingest import IngestRequest, ingest
    from workers.pipeline.runner import tick
    from workers.rules import store
    from workers.rules.ontology import load_ontology
    from workers.settings import ONTOLOGIES_DIR
    from workers.simulate import preset_config, simulate, write_outputs

    store.load(db, project_id, load_ontology(ONTOLOGIES_DIR / "default.yaml"))
    weights = f"not a real model: {tag}".encode()
    db.execute(
        "INSERT INTO scoring.models (project_id, version, sha256, weights, config, normalisation)"
        " VALUES (%s, %s, encode(sha256(%s), 'hex'), %s, '{}', '{}')",
        (project_id, f"iso-{tag}-{project_id[:8]}", weights, weights))
    db.commit()
    result = simulate(preset_config("plaza", seed=11, duration=40.0))
    files = write_outputs(result, tmp / tag)
    ingest(db, IngestRequest(project=project_id, source=f"{tag}-plaza", path=files["parquet"],
                             scene=files["scene"]))
    tick(db, until_idle=True)
