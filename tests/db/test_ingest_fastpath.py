"""The append fast path (binary COPY straight into ingest.track_points) and its routing:
only chunks newer than everything stored go direct; overlapping or late chunks go through
the stage's anti-join; repeats across chunks of one batch are dropped, never stored twice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.db.test_ingest_load import counts, run
from tests.support.factories import make_project
from workers.ingest import IngestRequest, ingest
from workers.ingest.formats import open_tracks

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]


def _csv(path: Path, rows: list[tuple[str, int, float]], cls: str = "pedestrian") -> Path:
    path.write_text("track_id,frame,t,x,y,class,confidence\n" + "".join(
        f"{tid},{f},{t},{f * 0.1},{1.5},{cls if f % 3 else ''},{'' if f % 4 == 0 else 0.5}\n"
        for tid, f, t in rows))
    return path


def _load(db: Conn, path: Path, block_bytes: int, **kw: Any) -> Any:
    """Ingest with small read blocks, so the file arrives in several chunks."""
    import workers.ingest.load as load
    real = load.open_tracks
    load.open_tracks = lambda p, f=None, m=None, **kw: open_tracks(p, f, m, block_bytes, **kw)  # type: ignore[assignment]
    try:
        return ingest(db, IngestRequest(project="acme/plaza", source="cam-1", path=path, **kw))
    finally:
        load.open_tracks = real  # type: ignore[assignment]


@pytest.fixture
def project(db: Conn) -> str:
    return make_project(db, "acme", "plaza")


def _batch_of_points(db: Conn) -> list[dict[str, Any]]:
    rows = db.execute("SELECT batch_id, count(*) AS n FROM ingest.track_points "
                      "GROUP BY batch_id ORDER BY batch_id").fetchall()
    db.rollback()
    return [dict(r) for r in rows]


def test_append_is_exact_and_round_trips_values(db: Conn, project: str, tmp_path: Path) -> None:
    rows = [(str(k), f, f / 10) for f in range(0, 40) for k in range(3)]
    s = _load(db, _csv(tmp_path / "a.csv", rows), 256)
    assert (s.inserted, s.duplicate, s.invalid) == (120, 0, 0)
    got = db.execute("SELECT track_id, frame, extract(epoch FROM ts - '2026-01-01+00') AS t, x, "
                     "y, raw_x, class, confidence, project_id::text AS p, batch_id "
                     "FROM ingest.track_points ORDER BY frame, track_id").fetchall()
    assert len(got) == 120 and {g["batch_id"] for g in got} == {s.batch_id}
    g = got[5]  # track 2, frame 1
    assert (g["track_id"], g["frame"], float(g["t"]), g["x"], g["y"], g["raw_x"]) == \
        ("2", 1, 0.1, 0.1, 1.5, 0.1)
    assert (g["class"], g["confidence"]) == ("pedestrian", 0.5)
    assert got[0]["class"] is None and got[0]["confidence"] is None  # NULLs stay NULL
    b = db.execute("SELECT rows_inserted, min_ts, max_ts FROM ingest.batches").fetchone()
    src = db.execute("SELECT high_water FROM ingest.sources").fetchone()
    assert b is not None and src is not None and b["rows_inserted"] == 120
    assert src["high_water"] == b["max_ts"] and b["min_ts"] < b["max_ts"]


def test_repeats_across_chunks_are_dropped(db: Conn, project: str, tmp_path: Path) -> None:
    rows = [("1", f, f / 10) for f in range(30)] + [("1", 5, 0.5), ("2", 5, 0.5)]
    s = _load(db, _csv(tmp_path / "a.csv", rows), 128)
    assert (s.inserted, s.duplicate, s.invalid) == (31, 1, 0)
    assert counts(db)["points"] == 31


def test_overlap_and_late_chunks_take_the_stage(db: Conn, project: str,
                                                tmp_path: Path) -> None:
    first = _load(db, _csv(tmp_path / "a.csv", [("1", f, f / 10) for f in range(10, 20)]), 64)
    assert first.inserted == 10 and first.late is None
    # late frames, repeats of stored points, and new frames, in several chunks
    rows = ([("2", f, f / 10) for f in range(0, 5)] + [("1", f, f / 10) for f in range(10, 20)]
            + [("1", f, f / 10) for f in range(20, 30)])
    second = _load(db, _csv(tmp_path / "b.csv", rows), 64)
    assert (second.inserted, second.duplicate) == (15, 10)
    assert second.late is not None
    assert counts(db)["points"] == 25 and counts(db)["dirty"] == 1
    dup = db.execute("SELECT count(*) AS n FROM (SELECT source_id, track_id, frame "
                     "FROM ingest.track_points GROUP BY 1, 2, 3 HAVING count(*) > 1) d"
                     ).fetchone()
    assert dup is not None and dup["n"] == 0
    # the same (track, frame) at another t is still a duplicate, never a second row
    third = _load(db, _csv(tmp_path / "c.csv", [("1", 15, 9.0), ("1", 16, 9.1)]), 64)
    assert (third.inserted, third.duplicate) == (0, 2)


def test_frames_not_newer_than_stored_never_go_direct(db: Conn, project: str,
                                                      tmp_path: Path) -> None:
    run(db, path=_csv(tmp_path / "a.csv", [("1", 10, 1.0)]))
    # later time but an old frame number: must be anti-joined, not appended
    s = run(db, path=_csv(tmp_path / "b.csv", [("1", 10, 5.0), ("1", 11, 5.1)]))
    assert (s.inserted, s.duplicate) == (1, 1)
    assert _batch_of_points(db)[-1]["n"] == 1


def test_a_failed_append_leaves_nothing(db: Conn, project: str, tmp_path: Path) -> None:
    before = counts(db)

    def boom(conn: Conn) -> None:
        assert conn.execute("SELECT count(*) AS n FROM ingest.track_points").fetchone() == \
            {"n": 30}  # appended inside the transaction
        raise RuntimeError("injected")

    with pytest.raises(RuntimeError, match="injected"):
        _load(db, _csv(tmp_path / "a.csv", [("1", f, f / 10) for f in range(30)]), 128,
              before_merge=boom)
    assert counts(db) == before
