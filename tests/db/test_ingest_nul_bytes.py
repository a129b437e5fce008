"""A NUL byte in a field (Postgres text cannot hold one) is that row's error, with its row
number and column, through the CLI's own entry: the other rows load; --strict refuses the
file naming the row and stores nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
import typer
from typer.testing import CliRunner

from tests.support.factories import make_project
from workers.cli.ingest_cmd import ingest_command
from workers.ingest import IngestRequest, Rejected, ingest

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]
# Data rows 2 (track_id), 3 (class) and 4 (x) hold a NUL byte; rows 1 and 5 are fine.
CSV = (b"track_id,frame,t,x,y,class\n"
       b"1,0,0,0,0,ped\n"
       b"2\x00,1,0.1,0,0,ped\n"
       b"1,2,0.2,0.2,0,pe\x00d\n"
       b"1,3,0.3,0\x00.3,0,ped\n"
       b"1,4,0.4,0.4,0,ped\n")
NUL_ERRORS = [
    {"row": 2, "column": "track_id", "code": "nul_byte",
     "message": "track_id contains a NUL byte (\\x00); remove it"},
    {"row": 3, "column": "class", "code": "nul_byte",
     "message": "class contains a NUL byte (\\x00); remove it"},
    {"row": 4, "column": "x", "code": "nul_byte",
     "message": "x contains a NUL byte (\\x00); remove it"},
]


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    app.command()(ingest_command)
    return app


def stored(db: Conn) -> dict[str, Any]:
    row = db.execute("SELECT (SELECT count(*) FROM ingest.sources) AS sources,"
                     " (SELECT count(*) FROM ingest.batches) AS batches,"
                     " (SELECT array_agg(frame ORDER BY frame) FROM ingest.track_points)"
                     " AS frames").fetchone()
    db.rollback()
    assert row is not None
    return dict(row)


def test_nul_bytes_are_row_errors_and_the_other_rows_load(db: Conn, secinf_env: str,
                                                          cli: typer.Typer,
                                                          tmp_path: Path) -> None:
    make_project(db, "acme", "plaza")
    path = tmp_path / "tracks.csv"
    path.write_bytes(CSV)
    result = CliRunner().invoke(cli, [str(path), "-p", "acme/plaza", "--source", "cam-1",
                                      "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert (out["rows_total"], out["inserted"], out["invalid"]) == (5, 2, 3)
    assert out["errors"] == NUL_ERRORS
    assert out["error_counts"] == {"nul_byte": 3}
    assert stored(db)["frames"] == [0, 4]
    batch = db.execute("SELECT errors, rows_invalid FROM ingest.batches").fetchone()
    assert batch is not None and (batch["errors"], batch["rows_invalid"]) == (NUL_ERRORS, 3)


def test_strict_refuses_the_file_naming_the_row_and_stores_nothing(
        db: Conn, secinf_env: str, cli: typer.Typer, tmp_path: Path) -> None:
    make_project(db, "acme", "plaza")
    path = tmp_path / "tracks.csv"
    path.write_bytes(CSV)
    before = stored(db)
    result = CliRunner().invoke(cli, [str(path), "-p", "acme/plaza", "--source", "cam-1",
                                      "--strict", "--json"])
    assert isinstance(result.exception, Rejected)  # main() maps it to exit 2
    assert str(result.exception).startswith(
        "--strict: batch rejected, 3 problem(s) in 3 row(s); first: row 2 track_id "
        "nul_byte: track_id contains a NUL byte (\\x00); remove it. Nothing was stored")
    assert json.loads(result.stdout)["errors"] == NUL_ERRORS
    assert stored(db) == before == {"sources": 0, "batches": 0, "frames": None}


def test_jsonl_points_and_poses_with_a_nul_byte(db: Conn, tmp_path: Path) -> None:
    make_project(db, "acme", "plaza")
    points = tmp_path / "tracks.jsonl"
    points.write_text("\n".join(json.dumps(p) for p in [
        {"track_id": "1", "frame": 0, "t": 0.0, "x": 0.0, "y": 0.0},
        {"track_id": "1\u0000", "frame": 1, "t": 0.1, "x": 0.1, "y": 0.0},
        {"track_id": "1", "frame": 2, "t": 0.2, "x": 0.2, "y": 0.0}]) + "\n")
    kp = [[1.0, 2.0, 0.9]] * 17
    poses = tmp_path / "poses.jsonl"
    poses.write_text(json.dumps({"track_id": "1", "frame": 0, "keypoints": kp}) + "\n"
                     + json.dumps({"track_id": "1\u0000", "frame": 2, "keypoints": kp}) + "\n")
    out = ingest(db, IngestRequest(project="acme/plaza", source="cam-1", path=points,
                                   poses=poses))
    assert (out.inserted, out.invalid, out.poses_inserted, out.poses_invalid) == (2, 1, 1, 1)
    assert [(e["row"], e["column"], e["code"]) for e in out.errors] == [
        (2, "track_id", "nul_byte"), (2, "track_id", "nul_byte")]
