"""`secinf export` over a scene run through the real pipeline: Parquet splits grouped by
source, manifest checksums, every quality gate blocking on a constructed failure, drift
against the previous version, semver, immutability in the database, and `datasets verify`
catching a tampered file: on the local backend (storage keys under
org/{org}/project/{project}/datasets/…), for versions recorded under the directory layout
before keys, and on S3 (moto's server mode: a stand-in for S3, see tests/support/moto_s3.py)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pyarrow.parquet as pq
import pytest
import typer
from psycopg.rows import dict_row
from typer.testing import CliRunner

from tests.db import datasets_helpers as h
from tests.support.factories import make_project
from tests.support.moto_s3 import moto_s3
from tests.support.postgrest import Api, ApiError
from workers.cli import datasets_cmd
from workers.datasets import ExportRequest, GateConfig, export, verify_version
from workers.datasets.schema import EVENTS_SCHEMA, FEATURES_SCHEMA, SPLITS
from workers.datasets.storage import sha256_file
from workers.errors import SecinfError
from workers.rules import store
from workers.rules.ontology import load_ontology
from workers.settings import ONTOLOGIES_DIR
from workers.storage import S3Storage

pytestmark = [pytest.mark.db, pytest.mark.slow]
Conn = psycopg.Connection[dict[str, Any]]
GATES = GateConfig(min_per_type=3)
RELAXED = GateConfig(min_per_type=1, max_class_share=1.0, max_imbalance=1e9)
_COPIES = count()


@dataclass(frozen=True)
class Scene:
    dsn: str
    project: str       # acme/north: four plaza sources, events of every type
    project_id: str


@pytest.fixture(scope="module")
def scene_template(module_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Scene:
    tmp = tmp_path_factory.mktemp("dataset-scenes")
    with psycopg.connect(module_dsn, row_factory=dict_row) as db:
        a = make_project(db, "acme", "north")
        h.load_default_ontology(db, a)
        for seed in range(1, 5):
            h.add_scene(db, a, f"plaza-{seed}", seed, tmp, duration=45.0)
        h.run_pipeline(db)
        h.score_candidates(db, a)
        assert h.promote(db, a) > 40
    return Scene(module_dsn, "acme/north", a)


@pytest.fixture
def scene(scene_template: Scene) -> Iterator[Scene]:
    """A fresh copy of the scene database for each test (tests change events)."""
    with h.copy_of(scene_template.dsn, f"t{next(_COPIES)}") as dsn:
        yield Scene(dsn, scene_template.project, scene_template.project_id)


@pytest.fixture(autouse=True)
def _local_root(_clear_secinf_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                ) -> None:
    """The local backend's root is the test's tmp_path (exports also pass it as --storage),
    so `datasets verify` finds what was exported."""
    monkeypatch.setenv("SECINF_DATASETS_DIR", str(tmp_path))


@pytest.fixture
def db(scene: Scene) -> Iterator[Conn]:
    with psycopg.connect(scene.dsn, row_factory=dict_row) as conn:
        yield conn


def _export(db: Conn, scene: Scene, root: Path, gates: GateConfig = GATES,
            **kw: Any) -> Any:
    return export(db, ExportRequest(project=scene.project, storage_root=root, gates=gates,
                                    **kw))


def _cli(scene: Scene, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str, str]:
    """Run a command as `secinf` does: a SecinfError exits with its code, stdout apart."""
    monkeypatch.setenv("SECINF_DSN", scene.dsn)
    app = typer.Typer()
    app.command("export")(datasets_cmd.export_command)
    app.add_typer(datasets_cmd.app, name="datasets")
    result = CliRunner().invoke(app, list(args))
    if isinstance(result.exception, SecinfError):
        return result.exception.exit_code, result.stdout, str(result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.stdout, ""


# ------------------------------------------------------------------------------- export


def test_export_publishes_grouped_splits_with_checked_files(db: Conn, scene: Scene,
                                                            tmp_path: Path) -> None:
    r = _export(db, scene, tmp_path)
    assert (r.status, r.version, r.failed) == ("published", "1.0.0", [])
    row = db.execute("SELECT * FROM datasets.versions WHERE version_id = (SELECT max(version_id)"
                     " FROM datasets.versions)").fetchone()
    assert row is not None and row["status"] == "published" and row["published_at"]
    n_events = db.execute("SELECT count(*) AS n FROM events.events WHERE project_id = %s",
                          (scene.project_id,)).fetchone()["n"]  # type: ignore[index]
    assert row["events"] == n_events == r.statistics["events"]

    org = db.execute("SELECT org_id FROM core.projects WHERE project_id = %s",
                     (scene.project_id,)).fetchone()["org_id"]  # type: ignore[index]
    assert row["storage_path"] == r.key == (
        f"org/{org}/project/{scene.project_id}/datasets/events/1.0.0")
    base = tmp_path / row["storage_path"]
    assert r.path == base and r.as_dict()["path"] == str(base)
    assert sorted(p.name for p in base.parent.iterdir()) == ["1.0.0"]  # no staging left
    assert db.execute("SELECT files.valid_key(%s) AS ok",  # signable by dataset_download
                      (f"{r.key}/manifest.json",)).fetchone() == {"ok": True}
    # Publishing is audited (sql/751_datasets_audit.sql): who, which version, what it holds.
    audit = db.execute("SELECT project_id, actor, action, target, details FROM audit.log"
                       " WHERE action LIKE 'dataset.%%'").fetchall()
    files = db.execute("SELECT count(*) AS n, sum(bytes) AS b FROM datasets.files"
                       " WHERE version_id = %s", (row["version_id"],)).fetchone()
    assert files is not None
    assert audit == [{"project_id": UUID(scene.project_id), "actor": row["published_by"],
                      "action": "dataset.publish", "target": "events@1.0.0",
                      "details": {"version_id": row["version_id"], "files": files["n"],
                                  "bytes": int(files["b"]), "failed_gates": [],
                                  "manifest_sha256": row["manifest_sha256"]}}]
    manifest = json.loads((base / "manifest.json").read_text())
    assert manifest == row["manifest"]
    assert sha256_file(base / "manifest.json") == row["manifest_sha256"]
    assert manifest["split"]["seed"] == 0 and manifest["schema_version"] == 1
    assert manifest["ontology"]["name"] == "default" and manifest["ontology"]["version"] == 4
    assert manifest["model_version"] == h.MODEL_VERSION
    db_files = {f["path"]: f for f in db.execute(
        "SELECT path, kind, split, rows, bytes, sha256 FROM datasets.files WHERE version_id = %s",
        (row["version_id"],)).fetchall()}
    assert {f["path"] for f in manifest["files"]} == set(db_files)
    for f in manifest["files"]:
        assert db_files[f["path"]] == f
        assert (base / f["path"]).stat().st_size == f["bytes"]
        assert sha256_file(base / f["path"]) == f["sha256"]

    # Parquet: the schemas, the rows the manifest promises, every event once.
    sources: dict[str, set[str]] = {}
    all_ids: list[int] = []
    for split in SPLITS:
        events = pq.read_table(base / split / "events.parquet")
        feats = pq.read_table(base / split / "features.parquet")
        assert events.schema.equals(EVENTS_SCHEMA, check_metadata=False)
        assert feats.schema.equals(FEATURES_SCHEMA, check_metadata=False)
        assert events.num_rows == db_files[f"{split}/events.parquet"]["rows"]
        assert feats.num_rows == db_files[f"{split}/features.parquet"]["rows"]
        assert set(events.column("split").to_pylist()) <= {split}
        sources[split] = set(events.column("source").to_pylist())
        ids = events.column("event_id").to_pylist()
        all_ids += ids
        actors = {(e["event_id"], a["role"], a["track_id"]): e for e in events.to_pylist()
                  for a in e["actors"]}
        for fr in feats.select(["event_id", "role", "track_id", "t_rel_s", "in_span"]
                               ).to_pylist():
            e = actors[(fr["event_id"], fr["role"], fr["track_id"])]
            assert -2.0 - 1e-6 <= fr["t_rel_s"] <= e["duration_s"] + 2.0 + 1e-6
            assert fr["in_span"] == (0 <= fr["t_rel_s"] <= e["duration_s"] + 1e-9)
        assert set(feats.column("event_id").to_pylist()) == set(ids)  # features for each
    assert sorted(all_ids) == [r["event_id"] for r in db.execute(
        "SELECT event_id FROM events.events WHERE project_id = %s ORDER BY 1",
        (scene.project_id,))]
    # Grouped by source: no source in two splits; every split has one here (4 sources).
    assert all(sources[s] for s in SPLITS)
    assert sum(len(v) for v in sources.values()) == len(set().union(*sources.values())) == 4
    assert manifest["split"]["sources"] == {src: s for s, v in sources.items() for src in v}

    card = (base / "card" / "README.md").read_text()
    assert card == row["data_card"]
    assert "## Class balance per split" in card and "| held_out | 120 | 50 | 0.91" in card
    assert (base / "card" / "class_balance.png").read_bytes()[:4] == b"\x89PNG"
    report = json.loads((base / "quality_report.json").read_text())
    assert [g["gate"] for g in report["gates"]] == [
        "schema", "finite_values", "spans_in_tracks", "no_duplicates", "min_per_type",
        "class_balance", "drift"]
    assert all(g["passed"] for g in report["gates"])


def test_same_seed_same_splits_next_version_and_no_drift(db: Conn, scene: Scene,
                                                         tmp_path: Path) -> None:
    first = _export(db, scene, tmp_path, seed=7)
    second = _export(db, scene, tmp_path, seed=7)
    assert (first.version, second.version, second.previous_version) == (
        "1.0.0", "1.1.0", "1.0.0")
    for split in SPLITS:
        a = pq.read_table(first.path / split / "events.parquet")
        b = pq.read_table(second.path / split / "events.parquet")
        assert a.equals(b), split
    drift = next(g for g in second.gates if g.gate == "drift")
    assert drift.passed and drift.details["type_mix_tvd"] == 0.0
    assert drift.details["duration_ks"]["all"]["ks"] == 0.0
    third = _export(db, scene, tmp_path, seed=7, version="1.1.5")
    assert third.version == "1.1.5"
    with pytest.raises(SecinfError, match=r"not newer than the latest published 1\.1\.5"):
        _export(db, scene, tmp_path, version="1.1.5")


# ------------------------------------------------------------------------------- gates

FIRST_ENTER = ("(SELECT min(event_id) FROM events.events WHERE project_id = %(p)s "
               "AND type = 'enter')")
BREAKERS: dict[str, tuple[str | None, GateConfig]] = {
    "schema": (f"UPDATE events.events SET actors = jsonb_build_object('who', actors->'actor')"
               f" WHERE event_id = {FIRST_ENTER}", RELAXED),
    "finite_values": ("UPDATE events.events SET latency_s = 'Infinity' WHERE event_id = "
                      "(SELECT min(event_id) FROM events.events WHERE project_id = %(p)s "
                      "AND type = 'startle')", RELAXED),
    "spans_in_tracks": (f"UPDATE events.events SET end_ts = end_ts + interval '1 hour' "
                        f"WHERE event_id = {FIRST_ENTER}", RELAXED),
    "no_duplicates": (
        "INSERT INTO events.events (project_id, source_id, type, actors, zone, start_ts, "
        "end_ts, confidence, source, verified_by) SELECT project_id, source_id, type, actors, "
        f"zone, start_ts, end_ts, confidence, 'rule', 'copy' FROM events.events "
        f"WHERE event_id = {FIRST_ENTER}", RELAXED),
    "min_per_type": (None, GateConfig(min_per_type=1000, max_class_share=1.0)),
    "class_balance": (None, GateConfig(min_per_type=1, max_class_share=0.05)),
}


@pytest.mark.parametrize("gate", sorted(BREAKERS))
def test_each_gate_blocks_publishing(db: Conn, scene: Scene, tmp_path: Path,
                                     gate: str) -> None:
    change, config = BREAKERS[gate]
    if change:
        db.execute(change, {"p": scene.project_id})
        db.commit()
    r = _export(db, scene, tmp_path, gates=config)
    assert r.status == "blocked"
    assert [g.gate for g in r.failed] == [gate]
    row = db.execute("SELECT v.status, v.published_at, r.passed, r.summary FROM datasets.versions"
                     " v JOIN datasets.quality_reports r USING (version_id) WHERE r.gate = %s",
                     (gate,)).fetchone()
    assert row == {"status": "blocked", "published_at": None, "passed": False,
                   "summary": r.failed[0].summary}
    assert "**FAILED**" in (r.path / "card" / "README.md").read_text()
    blocked = db.execute("SELECT action, target, details->'failed_gates' AS gates"
                         " FROM audit.log WHERE action LIKE 'dataset.%%'").fetchall()
    assert blocked == [{"action": "dataset.block", "target": "events@1.0.0", "gates": [gate]}]
    # The same version again, once the cause is gone, replaces the blocked one.
    if change is None:
        fixed = _export(db, scene, tmp_path, gates=GATES)
        assert (fixed.status, fixed.version) == ("published", "1.0.0")
        assert db.execute("SELECT count(*) AS n FROM datasets.versions").fetchone() == {"n": 1}


def test_drift_against_the_previous_version_blocks_and_the_cli_exits_2(
    db: Conn, scene: Scene, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _export(db, scene, tmp_path, gates=RELAXED).status == "published"
    db.execute("DELETE FROM events.events WHERE project_id = %s AND type IN ('enter', 'exit')",
               (scene.project_id,))
    db.execute("UPDATE events.events SET end_ts = start_ts + (end_ts - start_ts) / 20 "
               "WHERE project_id = %s", (scene.project_id,))
    db.commit()
    code, out, message = _cli(scene, monkeypatch, "export", "--project", scene.project,
                              "--storage", str(tmp_path), "--min-per-type", "1",
                              "--max-class-share", "1", "--json")
    assert code == 2
    doc = json.loads(out)
    assert (doc["status"], doc["version"], doc["previous_version"]) == (
        "blocked", "1.1.0", "1.0.0")
    assert "drift" in doc["failed_gates"]
    assert "blocked by quality gates: drift (type mix moved: TVD" in message
    drift = next(g for g in doc["gates"] if g["gate"] == "drift")
    assert drift["details"]["type_mix_tvd"] > 0.25
    assert "all durations moved: KS" in drift["summary"]


def test_ontology_change_needs_a_major_version(db: Conn, scene: Scene, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    assert _export(db, scene, tmp_path).version == "1.0.0"
    text = (ONTOLOGIES_DIR / "default.yaml").read_text().replace("version: 4", "version: 5", 1)
    (tmp_path / "v5.yaml").write_text(text)
    store.load(db, scene.project_id, load_ontology(tmp_path / "v5.yaml"))
    args = ["export", "--project", scene.project, "--storage", str(tmp_path),
            "--min-per-type", "3"]
    code, _, message = _cli(scene, monkeypatch, *args, "--version", "1.1.0")
    assert code == 2
    assert "the ontology changed (default v4 → default v5): version 1.1.0 must be a major" \
        in message
    code, out, _ = _cli(scene, monkeypatch, *args, "--json")
    assert code == 0 and json.loads(out)["version"] == "2.0.0"
    code, out, _ = _cli(scene, monkeypatch, "datasets", "list", "--json")
    assert [(r["version"], r["status"]) for r in json.loads(out)] == [
        ("2.0.0", "published"), ("1.0.0", "published")]
    code, out, _ = _cli(scene, monkeypatch, "datasets", "show", "events@2.0.0", "--json")
    shown = json.loads(out)
    assert (shown["ontology_version"], len(shown["quality_reports"])) == (5, 7)


# ------------------------------------------------------------------------------- immutability


def test_published_versions_are_immutable_for_everyone(db: Conn, scene: Scene,
                                                       tmp_path: Path) -> None:
    _export(db, scene, tmp_path)
    refused = "published and immutable"
    statements = [
        "UPDATE datasets.versions SET data_card = 'rewritten'",
        "UPDATE datasets.versions SET status = 'blocked'",
        "DELETE FROM datasets.versions",
        "UPDATE datasets.files SET sha256 = repeat('0', 64)",
        "DELETE FROM datasets.files",
        "INSERT INTO datasets.files (project_id, version_id, path, kind, bytes, sha256) "
        "SELECT project_id, version_id, 'extra.txt', 'report', 1, repeat('0', 64) "
        "FROM datasets.versions",
        "UPDATE datasets.quality_reports SET passed = false",
        "DELETE FROM datasets.quality_reports",
        "TRUNCATE datasets.quality_reports",
        "DELETE FROM core.projects",
    ]
    for role in ("postgres", "secinf_owner"):
        for stmt in statements:
            db.execute(f"SET ROLE {role}")
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match=refused):
                db.execute(stmt)
            db.rollback()
    # API roles cannot write at all.
    api = Api(scene.dsn).as_("project_admin", project_id=scene.project_id)
    with pytest.raises(ApiError) as err:
        api.write("PATCH", "datasets.versions", psycopg.sql.SQL(
            "UPDATE datasets.versions SET data_card = 'x' RETURNING 1"))
    assert err.value.status == 403
    assert err.value.message == "permission denied for table versions"
    row = db.execute("SELECT status, data_card LIKE '# Dataset%%' AS card FROM datasets.versions"
                     ).fetchone()
    assert row == {"status": "published", "card": True}


def test_a_draft_is_published_only_with_passed_gates(db: Conn, scene: Scene) -> None:
    vid = db.execute(
        "INSERT INTO datasets.versions (project_id, version, schema_version, split_seed, "
        "train_ratio, val_ratio, test_ratio, context_s, storage_path, data_card, "
        "manifest_sha256) VALUES (%s, '9.0.0', 1, 0, 0.7, 0.15, 0.15, 2, '/nowhere', 'card', "
        "repeat('a', 64)) RETURNING version_id", (scene.project_id,)).fetchone()["version_id"]  # type: ignore[index]
    publish = "UPDATE datasets.versions SET status = 'published' WHERE version_id = %s"
    with pytest.raises(psycopg.errors.CheckViolation, match="has no quality report or no files"):
        db.execute(publish, (vid,))
    db.rollback()
    with pytest.raises(psycopg.errors.CheckViolation, match="must be created as a draft"):
        db.execute("INSERT INTO datasets.versions (project_id, version, status, schema_version,"
                   " split_seed, train_ratio, val_ratio, test_ratio, context_s, storage_path) "
                   "VALUES (%s, '9.9.9', 'published', 1, 0, 1, 0, 0, 0, '/x')",
                   (scene.project_id,))


# ------------------------------------------------------------------------------- verify


def test_verify_names_a_tampered_file(db: Conn, scene: Scene, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    r = _export(db, scene, tmp_path)
    assert verify_version(db, "1.0.0").ok
    code, out, _ = _cli(scene, monkeypatch, "datasets", "verify", "1.0.0", "--json")
    assert code == 0 and json.loads(out)["ok"] is True

    target = r.path / "train" / "features.parquet"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different bytes
    target.write_bytes(bytes(data))
    problems = verify_version(db, "1.0.0", scene.project).problems
    assert [p["path"] for p in problems] == ["train/features.parquet"]
    assert problems[0]["problem"].startswith("sha256 ")
    code, _, message = _cli(scene, monkeypatch, "datasets", "verify", "1.0.0")
    assert code == 2 and "train/features.parquet: sha256" in message

    (r.path / "card" / "durations.png").unlink()
    (r.path / "notes.txt").write_text("not ours")
    manifest = json.loads((r.path / "manifest.json").read_text())
    manifest["split"]["seed"] = 99
    (r.path / "manifest.json").write_text(json.dumps(manifest))
    got = {(p["path"], p["problem"].split(" ")[0])
           for p in verify_version(db, "events@1.0.0").problems}
    assert got == {("train/features.parquet", "sha256"), ("card/durations.png", "missing"),
                   ("notes.txt", "not"), ("manifest.json", "sha256"),
                   ("manifest.json", "content")}


def _version_id(db: Conn, version: str) -> int:
    row = db.execute("SELECT version_id FROM datasets.versions WHERE version = %s",
                     (version,)).fetchone()
    assert row is not None
    return int(row["version_id"])


def test_a_version_recorded_under_the_old_directory_layout_still_verifies(
    db: Conn, scene: Scene, tmp_path: Path
) -> None:
    """Versions exported before storage keys recorded <root>/<project_id>/<name>/<version>
    as storage_path; they are read where they are, whatever the backend now is."""
    r = _export(db, scene, tmp_path)
    old = tmp_path / "old-root" / scene.project_id / "events" / "0.9.0"
    old.parent.mkdir(parents=True)
    r.path.rename(old)
    vid = db.execute(
        "INSERT INTO datasets.versions (project_id, name, version, schema_version, split_seed,"
        " train_ratio, val_ratio, test_ratio, context_s, storage_path, data_card, manifest,"
        " manifest_sha256, events) SELECT project_id, name, '0.9.0', schema_version,"
        " split_seed, train_ratio, val_ratio, test_ratio, context_s, %s, data_card, manifest,"
        " manifest_sha256, events FROM datasets.versions WHERE version = '1.0.0'"
        " RETURNING version_id", (str(old),)).fetchone()["version_id"]  # type: ignore[index]
    db.execute("INSERT INTO datasets.files (project_id, version_id, path, kind, split, rows,"
               " bytes, sha256) SELECT project_id, %s, path, kind, split, rows, bytes, sha256"
               " FROM datasets.files f WHERE version_id = %s", (vid, _version_id(db, "1.0.0")))
    db.execute("INSERT INTO datasets.quality_reports (project_id, version_id, gate, passed,"
               " summary) SELECT project_id, %s, gate, passed, summary FROM"
               " datasets.quality_reports WHERE version_id = %s", (vid, _version_id(db, "1.0.0")))
    db.execute("UPDATE datasets.versions SET status = 'published' WHERE version_id = %s",
               (vid,))
    db.commit()
    v = verify_version(db, "0.9.0")
    assert (v.ok, v.path, v.files) == (True, str(old), len(r.files))
    (old / "val" / "events.parquet").write_bytes(b"not parquet")
    assert [(p["path"], p["problem"].split(" ")[0]) for p in verify_version(db, "0.9.0").problems
            ] == [("val/events.parquet", "size")]
    # The version whose files moved away is reported, not crashed on.
    assert verify_version(db, "1.0.0").problems == [
        {"path": str(r.path), "problem": "nothing is stored for the version"}]


def test_export_and_verify_through_s3(db: Conn, scene: Scene, tmp_path: Path) -> None:
    """The S3 backend's code path against moto's server mode, a stand-in for S3 (an API
    contract test): every file uploaded encrypted, manifest.json last, the key recorded,
    no local staging left; `datasets verify` reads the objects back and names a tampered
    one."""
    with moto_s3() as s3:
        bucket = s3.bucket()
        client = s3.client()
        store = S3Storage(bucket, "prod", client)
        order: list[str] = []
        put = store.put_file

        def recording(key: str, src: Path) -> None:
            order.append(key.rsplit("/1.0.0/", 1)[1])
            put(key, src)

        store.put_file = recording  # type: ignore[method-assign]
        staged_before = set(Path(tempfile.gettempdir()).glob("secinf-staging-*"))
        r = export(db, ExportRequest(project=scene.project, storage=store, gates=GATES))
        assert (r.status, r.local_dir) == ("published", None)
        assert r.location == f"s3://{bucket}/prod/{r.key}"
        row = db.execute("SELECT storage_path FROM datasets.versions").fetchone()
        assert row == {"storage_path": r.key}
        assert order[-1] == "manifest.json" and sorted(order) == sorted(
            [f.path for f in r.files] + ["manifest.json"])
        for rel in order:
            head = client.head_object(Bucket=bucket, Key=f"prod/{r.key}/{rel}")
            assert head["ServerSideEncryption"] == "AES256"
        assert set(Path(tempfile.gettempdir()).glob("secinf-staging-*")) == staged_before
        got = verify_version(db, "1.0.0", store=store)
        assert (got.ok, got.path, got.files) == (True, r.location, len(r.files))
        client.put_object(Bucket=bucket, Key=f"prod/{r.key}/test/events.parquet",
                          Body=b"tampered", ServerSideEncryption="AES256")
        client.put_object(Bucket=bucket, Key=f"prod/{r.key}/extra.bin", Body=b"x",
                          ServerSideEncryption="AES256")
        problems = verify_version(db, "1.0.0", store=store).problems
        assert [(p["path"], p["problem"].split(" ")[0]) for p in problems] == [
            ("test/events.parquet", "size"), ("extra.bin", "not")]
