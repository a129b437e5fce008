"""Ingest against a real database: core path, idempotency, late data, scene, poses,
strict mode, the CLI, and the recorded datasets in ../shared/data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
import typer
from typer.testing import CliRunner

from tests.conftest import shared_data
from tests.support.factories import make_project
from workers.cli.ingest_cmd import ingest_command
from workers.errors import NotFound, SecinfError, UserError
from workers.ingest import IngestRequest, Rejected, ingest, load
from workers.simulate import preset_config, simulate, write_outputs

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    write_outputs(simulate(preset_config("plaza", 3, duration=60.0)), out, ["parquet", "csv"])
    return out


def counts(db: Conn) -> dict[str, int]:
    row = db.execute("""SELECT (SELECT count(*) FROM ingest.sources) AS sources,
                               (SELECT count(*) FROM ingest.batches) AS batches,
                               (SELECT count(*) FROM ingest.track_points) AS points,
                               (SELECT count(*) FROM ingest.poses) AS poses,
                               (SELECT count(*) FROM ingest.dirty_ranges) AS dirty""").fetchone()
    db.rollback()
    assert row is not None
    return dict(row)


def run(db: Conn, **kw: Any) -> Any:
    kw.setdefault("project", "acme/plaza")
    kw.setdefault("source", "cam-1")
    return ingest(db, IngestRequest(**kw))


@pytest.fixture
def project(db: Conn) -> str:
    return make_project(db, "acme", "plaza")


def test_parquet_then_csv_then_resubmit(db: Conn, project: str, scene_dir: Path) -> None:
    n = len(__import__("polars").read_parquet(scene_dir / "tracks.parquet"))
    first = run(db, path=scene_dir / "tracks.parquet", scene=scene_dir / "scene.json")
    assert (first.rows_total, first.inserted, first.duplicate, first.invalid) == (n, n, 0, 0)
    assert first.scene == {"zones": 4, "routes": 3, "triggers": first.scene["triggers"]}
    again = run(db, path=scene_dir / "tracks.parquet", scene=scene_dir / "scene.json")
    assert again.duplicate_batch and again.batch_id == first.batch_id
    assert again.inserted == n  # the original summary
    overlap = run(db, path=scene_dir / "tracks.csv")  # same points, another key
    assert (overlap.inserted, overlap.duplicate, overlap.duplicate_batch) == (0, n, False)
    c = counts(db)
    assert (c["points"], c["batches"], c["sources"], c["dirty"]) == (n, 2, 1, 0)
    src = db.execute("SELECT units, high_water, time_origin FROM ingest.sources").fetchone()
    assert src is not None and src["units"] == "m"
    tmax = db.execute("SELECT max(ts) AS m FROM ingest.track_points").fetchone()
    assert tmax is not None and src["high_water"] == tmax["m"]
    trig = db.execute("SELECT count(*) AS n FROM ingest.triggers "
                      "WHERE ts >= '2026-01-01' AND position IS NOT NULL").fetchone()
    assert trig is not None and trig["n"] == first.scene["triggers"]


def test_late_batch_records_a_dirty_range(db: Conn, project: str, tmp_path: Path) -> None:
    p1, p2 = tmp_path / "a.csv", tmp_path / "b.csv"
    p1.write_text("track_id,frame,t,x,y\n1,10,1.0,0,0\n1,11,1.1,0.1,0\n")
    p2.write_text("track_id,frame,t,x,y\n2,5,0.5,3,3\n2,6,0.6,3.1,3\n2,12,1.2,3.2,3\n")
    run(db, path=p1)
    late = run(db, path=p2)
    assert late.inserted == 3 and late.late is not None
    row = db.execute("SELECT from_ts, to_ts, batch_id FROM ingest.dirty_ranges").fetchone()
    assert row is not None and row["batch_id"] == late.batch_id
    assert (row["from_ts"].second, row["from_ts"].microsecond) == (0, 500000)
    assert (row["to_ts"].second, row["to_ts"].microsecond) == (0, 600000)


def test_default_keeps_valid_rows_strict_rejects_all(db: Conn, project: str,
                                                     tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("track_id,frame,t,x,y\n1,0,0,0,0\n1,1,0.1,inf,0\n1,2,0.2,0.2,0\n")
    before = counts(db)
    with pytest.raises(Rejected, match=r"row 2 x not_finite"):
        run(db, path=p, strict=True)
    assert counts(db) == before
    ok = run(db, path=p)
    assert (ok.inserted, ok.invalid) == (2, 1)
    stored = db.execute("SELECT errors, rows_invalid FROM ingest.batches").fetchone()
    assert stored is not None and stored["errors"][0]["code"] == "not_finite"


def test_fatal_inputs_change_nothing(db: Conn, project: str, tmp_path: Path) -> None:
    good = tmp_path / "t.csv"
    good.write_text("track_id,frame,t,x,y\n1,0,0,0,0\n")
    before = counts(db)
    with pytest.raises(NotFound, match='unknown project "nope/x"'):
        run(db, path=good, project="nope/x")
    bad = tmp_path / "u.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(UserError, match="missing required column"):
        run(db, path=bad)
    with pytest.raises(UserError, match="cannot read"):
        run(db, path=tmp_path / "absent.parquet")
    with pytest.raises(UserError, match="not a readable Parquet"):
        run(db, path=good, fmt="canonical-parquet")
    assert counts(db) == before


def test_source_settings_must_agree(db: Conn, project: str, tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("track_id,frame,x,y\n1,0,100,200\n1,1,101,200\n")
    first = run(db, path=p, fps=10.0, units="px", scale=0.01)
    assert first.units == "m"
    row = db.execute("SELECT x, raw_x FROM ingest.track_points ORDER BY frame").fetchone()
    assert row is not None and (row["x"], row["raw_x"]) == (1.0, 100.0)
    with pytest.raises(UserError, match="has fps 10"):
        run(db, path=p, fps=12.0, idempotency_key="k2")
    with pytest.raises(UserError, match="transform"):
        run(db, path=p, units="px", scale=0.02, idempotency_key="k3")
    px = run(db, path=p, source="raw-cam", fps=10.0, units="px")
    assert px.units == "px"


def test_poses_attach_to_points(db: Conn, project: str, tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("track_id,frame,t,x,y\n1,0,0,0,0\n1,1,0.1,0.1,0\n")
    kp = [[1.0, 2.0, 0.9]] * 17
    poses = tmp_path / "poses.jsonl"
    poses.write_text(json.dumps({"track_id": "1", "frame": 1, "keypoints": kp}) + "\n"
                     + json.dumps({"track_id": "9", "frame": 1, "keypoints": kp}) + "\n")
    with pytest.raises(Rejected, match="unknown_point"):
        run(db, path=p, poses=poses, strict=True)
    out = run(db, path=p, poses=poses)
    assert (out.poses_inserted, out.poses_invalid) == (1, 1)
    row = db.execute("SELECT cardinality(keypoints) AS n, frame FROM ingest.poses").fetchone()
    assert row is not None and (row["n"], row["frame"]) == (51, 1)


def test_cli_json_and_exit_codes(db: Conn, project: str, secinf_env: str,
                                 scene_dir: Path, tmp_path: Path) -> None:
    app = typer.Typer()
    app.command()(ingest_command)
    result = CliRunner().invoke(app, [str(scene_dir / "tracks.parquet"), "--project",
                                      "acme/plaza", "--source", "cli", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out) >= {"batch_id", "source", "rows_total", "inserted", "duplicate",
                        "invalid", "errors", "duplicate_batch", "seconds"}
    bad = tmp_path / "b.csv"
    bad.write_text("track_id,frame,t,x,y\n1,0,0,nan,0\n")
    rejected = CliRunner().invoke(app, [str(bad), "--project", "acme/plaza", "--source",
                                        "cli", "--strict", "--json"])
    assert isinstance(rejected.exception, Rejected)  # main() maps it to exit 2
    assert json.loads(rejected.stdout)["rejected"] is True


def test_a_deadlock_is_no_user_error_and_stores_nothing(db: Conn, project: str,
                                                       scene_dir: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 21: only the database's refusals are the user's (exit 2); a deadlock propagates
    as itself (the CLI's internal failure, exit 1; a worker retries the upload's job)."""
    db.execute("CREATE FUNCTION pg_temp.deadlock(text, text) RETURNS void LANGUAGE plpgsql "
               "AS $$BEGIN RAISE EXCEPTION 'deadlock detected' USING ERRCODE = '40P01'; END$$")
    db.commit()
    real = load.query
    monkeypatch.setattr(load, "query", lambda group, name: (
        "SELECT pg_temp.deadlock(%(project_id)s::text, %(key)s)" if name == "lock_key"
        else real(group, name)))
    before = counts(db)
    with pytest.raises(psycopg.errors.DeadlockDetected) as raised:
        run(db, path=scene_dir / "tracks.csv")
    assert not isinstance(raised.value, SecinfError)
    assert counts(db) == before


# ---------------------------------------------------------------- recorded data, in place
def test_recorded_eth_ucy_and_trajnet(db: Conn, project: str) -> None:
    for i, path in enumerate([shared_data("eth_ucy", "biwi_eth.txt"),
                              shared_data("trajnet", "biwi", "biwi_hotel.txt")]):
        lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
        out = run(db, path=path, source=f"rec-{i}")
        assert (out.rows_total, out.inserted, out.invalid) == (len(lines), len(lines), 0)
    first = db.execute("SELECT ts, x FROM ingest.track_points tp JOIN ingest.sources s "
                       "USING (source_id) WHERE s.name = 'rec-0' AND frame = 780 "
                       "AND track_id = '1'").fetchone()
    assert first is not None and first["x"] == 8.46
    assert first["ts"].timestamp() - 1767225600 == pytest.approx(780 / 25)


def test_recorded_mot17_gt_with_seqinfo(db: Conn, project: str) -> None:
    path = shared_data("motchallenge", "MOT17", "MOT17-02-FRCNN", "gt", "gt.txt")
    rows = [ln.split(",") for ln in path.read_text().splitlines() if ln.strip()]
    kept = [r for r in rows if float(r[6]) != 0]
    out = run(db, path=path, source="mot17-02")
    assert (out.rows_total, out.ignored, out.inserted) == (len(rows), len(rows) - len(kept),
                                                           len(kept))
    assert out.units == "px"
    src = db.execute("SELECT fps, units FROM ingest.sources WHERE name = 'mot17-02'").fetchone()
    assert src is not None and (src["fps"], src["units"]) == (30.0, "px")
