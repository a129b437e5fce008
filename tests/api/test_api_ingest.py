"""Contract: POST /rpc/ingest_batch — the CLI's validation and duplicate semantics, the size
cap, who may write, and where the batch lands."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.api.helpers import points
from tests.support.postgrest import Api, ApiError
from workers.ingest import IngestRequest, ingest
from workers.ingest.schema import Transform
from workers.ingest.transform import transform_point

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]

STORED = """SELECT track_id, frame, ts, x, y, raw_x, raw_y, class, confidence
            FROM ingest.track_points tp JOIN ingest.sources s USING (source_id)
            WHERE s.project_id = %s AND s.name = %s ORDER BY track_id, frame"""


def send(api: Api, batch: dict[str, Any]) -> dict[str, Any]:
    out = api.rpc("ingest_batch", p_batch=Jsonb(batch))
    assert isinstance(out, dict)
    return out


def count(db: Conn, sql: str, *args: Any) -> int:
    row = db.execute(sql, args).fetchone()
    assert row is not None
    return int(next(iter(row.values())))


# ---------------------------------------------------------------- happy path
def test_a_batch_lands_in_the_callers_project(db: Conn, api: Api,
                                              projects: tuple[str, str]) -> None:
    a, b = projects
    out = send(api, {"source": "gate", "fps": 10, "points": points(300)})
    assert {k: out[k] for k in ("rows_total", "inserted", "duplicate", "invalid", "ignored",
                                "duplicate_batch", "units", "source")} == {
        "rows_total": 300, "inserted": 300, "duplicate": 0, "invalid": 0, "ignored": 0,
        "duplicate_batch": False, "units": "m", "source": "gate"}
    assert out["errors"] == [] and out["error_counts"] == {}
    assert out["idempotency_key"].startswith("sha256:")
    batch = db.execute("SELECT project_id::text AS p, format, created_by, rows_inserted"
                       " FROM ingest.batches WHERE batch_id = %s", (out["batch_id"],)).fetchone()
    assert batch == {"p": a, "format": "api", "created_by": "key:sik_0123456789ab",
                     "rows_inserted": 300}
    assert count(db, "SELECT count(*) FROM ingest.track_points WHERE project_id = %s", a) == 300
    assert count(db, "SELECT count(*) FROM ingest.track_points WHERE project_id = %s", b) == 0
    assert count(db, "SELECT count(*) FROM audit.log WHERE action = 'ingest.batch'"
                     " AND actor = 'key:sik_0123456789ab'") == 1


# ---------------------------------------------------------------- validation = the CLI's
def faulty_points() -> list[Any]:
    """Valid walkers with one planted fault per listed row (1-based)."""
    rows: list[Any] = points(40, tracks=2)  # tracks "1", "2", frames 0..19, 1 m/s
    rows += [
        [1, 2],                                                             # 41 unparseable
        {"track_id": "", "frame": 1, "t": 0.1, "x": 0, "y": 0},             # 42 missing
        {"track_id": "3", "frame": "abc", "t": 0.1, "x": 0, "y": 0},        # 43 type
        {"track_id": "3", "frame": 2, "t": 0.2, "y": 0},                    # 44 missing x
        {"track_id": "3", "frame": 3, "t": 0.3, "x": "NaN", "y": 0},        # 45 not_finite
        {"track_id": "3", "frame": 2.5, "t": 0.25, "x": 0, "y": 0},         # 46 type (not int)
        {"track_id": "3", "frame": -1, "t": -0.1, "x": 0, "y": 0},          # 47 negative_frame
        {"track_id": "4", "frame": 4, "t": 0.4, "x": 2e6, "y": 0},          # 48 out_of_bounds
        {"track_id": "4", "frame": 5, "t": 0.5, "x": 1, "y": 0,
         "confidence": 1.5},                                                # 49 out_of_range
        {"track_id": "1", "frame": 3, "t": 0.3, "x": 0.3, "y": 0},          # 50 duplicate_key
        {"track_id": "5", "frame": 6, "t": 0.9, "x": 0, "y": 0},            # 51 frame_time_mismatch
        {"track_id": "5", "frame": 50, "t": 0.05, "x": 0, "y": 0},          # 52 time_not_increasing
        {"track_id": "9", "frame": 60, "t": 6.0, "x": 0, "y": 0},           # 53 ok
        {"track_id": "9", "frame": 61, "t": 6.1, "x": 100, "y": 0},         # 54 implausible_speed
        {"track_id": "6", "frame": 62, "t": "6.2", "x": " 1.5 ", "y": 0},   # 55 ok (numeric text)
        {"track_id": "6", "frame": 63, "t": 6.3, "x": 1.6, "y": True},      # 56 type (y)
        {"track_id": 7, "frame": 64, "t": 6.4, "x": 0, "y": 0},             # 57 ok (track "7")
        {"track_id": "8", "frame": 65, "t": 7e9, "x": 0, "y": 0},           # 58 out_of_bounds t
    ]
    return rows


def test_validation_codes_and_stored_rows_match_the_cli(db: Conn, api: Api, tmp_path: Path,
                                                        projects: tuple[str, str]) -> None:
    a, _ = projects
    items = faulty_points()
    out = send(api, {"source": "api-cam", "points": items})
    path = tmp_path / "same.jsonl"
    path.write_text("".join(json.dumps(i) + "\n" for i in items))
    cli = ingest(db, IngestRequest(project=a, source="cli-cam", path=path)).as_json()

    pairs = sorted((e["row"], e["code"]) for e in out["errors"])
    assert pairs == sorted((e["row"], e["code"]) for e in cli["errors"])
    assert pairs == [(41, "unparseable"), (42, "missing"), (43, "type"), (44, "missing"),
                     (45, "not_finite"), (46, "type"), (47, "negative_frame"),
                     (48, "out_of_bounds"), (49, "out_of_range"), (50, "duplicate_key"),
                     (51, "frame_time_mismatch"), (52, "time_not_increasing"),
                     (54, "implausible_speed"), (56, "type"), (58, "out_of_bounds")]
    for key in ("rows_total", "inserted", "duplicate", "invalid", "error_counts"):
        assert out[key] == cli[key], key
    assert out["invalid"] == 15 and out["inserted"] == 43
    assert db.execute(STORED, (a, "api-cam")).fetchall() == db.execute(
        STORED, (a, "cli-cam")).fetchall()
    messages = {e["row"]: e["message"] for e in out["errors"]}
    assert messages[50] == "track 1 has frame 3 twice in this batch"
    assert messages[54] == "track 9 moves at 1000.0 m/s (limit 100)"


def test_strict_rejects_the_whole_batch_with_the_errors(db: Conn, api: Api) -> None:
    batch = {"source": "gate", "strict": True, "points": faulty_points()}
    with pytest.raises(ApiError) as err:
        send(api, batch)
    assert err.value.status == 422
    assert err.value.message == ("batch rejected (strict): 15 of 58 points are invalid; "
                                 "nothing was stored")
    assert count(db, "SELECT count(*) FROM ingest.batches") == 0
    assert count(db, "SELECT count(*) FROM ingest.track_points") == 0


def test_a_source_transform_is_applied_and_raw_values_kept(db: Conn, api: Api,
                                                          projects: tuple[str, str]) -> None:
    out = send(api, {"source": "px-cam", "units": "px", "scale": 0.05, "fps": 25,
                     "points": [{"track_id": "1", "frame": f, "x": 100 + f, "y": 40}
                                for f in range(5)]})
    assert out["units"] == "m" and out["inserted"] == 5
    rows = db.execute("SELECT frame, ts, x, raw_x FROM ingest.track_points ORDER BY frame"
                      ).fetchall()
    assert [(r["x"], r["raw_x"]) for r in rows[:2]] == [(5.0, 100.0),
                                                        (pytest.approx(5.05), 101.0)]
    assert (rows[1]["ts"] - rows[0]["ts"]).total_seconds() == 0.04  # t = frame / fps
    with pytest.raises(ApiError) as err:
        send(api, {"source": "px-cam", "fps": 30, "points": points(3)})
    assert (err.value.status, err.value.message) == (
        400, 'source "px-cam" has fps 25; this batch says 30')


def test_a_homography_maps_points_as_the_cli_does(db: Conn, api: Api) -> None:
    h = ((0.02, 0.001, -1.0), (0.0005, 0.03, 2.0), (0.0001, 0.0002, 1.0))
    pts = [{"track_id": "1", "frame": f, "x": 100 + 7 * f, "y": 40 + 3 * f} for f in range(5)]
    out = send(api, {"source": "h-cam", "units": "px", "homography": [list(r) for r in h],
                     "fps": 10, "points": pts})
    assert out["inserted"] == 5
    rows = db.execute("SELECT x, y, raw_x, raw_y FROM ingest.track_points ORDER BY frame"
                      ).fetchall()
    for p, r in zip(pts, rows, strict=True):
        x, y = transform_point(p["x"], p["y"], Transform(homography=h))
        assert (r["x"], r["y"]) == (pytest.approx(x), pytest.approx(y))
        assert (r["raw_x"], r["raw_y"]) == (p["x"], p["y"])


def test_t_comes_from_the_frame_rate_or_is_missing(api: Api) -> None:
    no_t = [{"track_id": "1", "frame": f, "x": f * 0.1, "y": 0} for f in range(3)]
    out = send(api, {"source": "no-fps", "points": no_t})
    assert out["invalid"] == 3 and {e["message"] for e in out["errors"]} == {
        "t is missing (or give the source an fps to derive t from frame)"}
    assert send(api, {"source": "with-fps", "fps": 10, "points": no_t})["inserted"] == 3


# ---------------------------------------------------------------- duplicates
def test_resending_is_a_duplicate_batch_and_overlaps_count_as_duplicates(
        db: Conn, api: Api) -> None:
    body = {"source": "gate", "points": points(90)}
    first = send(api, body)
    again = send(api, body)
    assert again["duplicate_batch"] is True and again["batch_id"] == first["batch_id"]
    assert (again["inserted"], again["rows_total"]) == (90, 90)
    # Same key, other points: still the stored batch, nothing stored.
    keyed = send(api, {"source": "gate", "idempotency_key": "k-1", "points": points(30)})
    other = send(api, {"source": "gate", "idempotency_key": "k-1", "points": points(60)})
    assert other["duplicate_batch"] is True and other["batch_id"] == keyed["batch_id"]
    # New key, overlapping points: the stored ones are counted as duplicates; the late
    # (below the high water) new one opens a dirty range.
    overlap = points(120)
    overlap[0] = {**overlap[0], "track_id": "late", "x": 0.0}
    out = send(api, {"source": "gate", "idempotency_key": "k-2", "points": overlap})
    assert (out["inserted"], out["duplicate"], out["duplicate_batch"]) == (31, 89, False)
    assert out["late"]["from_ts"] == out["late"]["to_ts"]
    assert count(db, "SELECT count(*) FROM ingest.track_points") == 121
    assert count(db, "SELECT count(*) FROM ingest.dirty_ranges WHERE batch_id = %s",
                 out["batch_id"]) == 1


def test_concurrent_submissions_of_one_key_store_it_once(db: Conn, dsn: str,
                                                         projects: tuple[str, str]) -> None:
    body = {"source": "gate", "idempotency_key": "same", "points": points(600)}
    results: list[dict[str, Any]] = []
    start = threading.Barrier(3)

    def submit() -> None:
        start.wait()
        results.append(send(Api(dsn).as_("customer", project_id=projects[0]), body))

    threads = [threading.Thread(target=submit) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(r["duplicate_batch"] for r in results) == [False, True, True]
    assert len({r["batch_id"] for r in results}) == 1
    assert count(db, "SELECT count(*) FROM ingest.track_points") == 600


# ---------------------------------------------------------------- limits and errors
def test_the_size_cap_is_a_clear_413(db: Conn, api: Api) -> None:
    out = send(api, {"source": "big", "points": points(10_000, tracks=20)})
    assert out["inserted"] == 10_000
    with pytest.raises(ApiError) as err:
        send(api, {"source": "big", "points": points(10_001, tracks=20)})
    assert err.value.status == 413
    assert err.value.message == "a batch of 10001 points is over the limit of 10000 points"
    assert err.value.hint is not None and "secinf ingest" in err.value.hint


@pytest.mark.parametrize(("batch", "message"), [
    ([1, 2], "the batch must be a JSON object"),
    ({"source": "gate", "point": []}, "unknown field(s) in the batch: point"),
    ({"source": "gate", "points": []}, "points must be a non-empty array of points"),
    ({"source": "no spaces", "points": points(1)},
     'source must be a source name (letters, digits, ".", "_", "-"; up to 128)'),
    ({"source": "gate", "units": "ft", "points": points(1)}, 'units "ft": use px, m, cm or mm'),
    ({"source": "gate", "strict": "yes", "points": points(1)}, "strict must be true or false"),
    ({"source": "gate", "project_id": "north", "points": points(1)},
     'project_id "north" is not a project id'),
])
def test_malformed_batches_are_clear_400s(api: Api, batch: Any, message: str) -> None:
    with pytest.raises(ApiError) as err:
        send(api, batch)
    assert (err.value.status, err.value.message) == (400, message)


# ---------------------------------------------------------------- who may write where
def test_only_customers_and_project_admins_may_ingest(dsn: str,
                                                      projects: tuple[str, str]) -> None:
    a, _ = projects
    body = {"source": "gate", "points": points(3)}
    with pytest.raises(ApiError) as err:
        send(Api(dsn), body)
    assert (err.value.status, err.value.message) == (
        401, "permission denied for function ingest_batch")
    for role in ("reviewer", "analyst"):
        with pytest.raises(ApiError) as err:
            send(Api(dsn).as_(role, project_id=a), body)
        assert (err.value.status, err.value.message) == (
            403, "permission denied for function ingest_batch"), role
    assert send(Api(dsn).as_("project_admin", project_id=a), body)["inserted"] == 3


def test_writes_outside_ones_project_are_refused(db: Conn, api: Api,
                                                 projects: tuple[str, str]) -> None:
    a, b = projects
    with pytest.raises(ApiError) as err:
        send(api, {"project_id": b, "source": "gate", "points": points(3)})
    assert err.value.status == 403
    assert err.value.message == (f"not allowed: this needs role customer or project_admin in "
                                 f"project {b}")
    assert count(db, "SELECT count(*) FROM ingest.sources WHERE project_id = %s", b) == 0
    # B's source of the same name is not A's: A's batch creates A's own.
    db.execute("INSERT INTO ingest.sources (project_id, name) VALUES (%s, 'gate')", (b,))
    db.commit()
    out = send(api, {"source": "gate", "points": points(3)})
    owner = db.execute("SELECT project_id::text AS p FROM ingest.sources WHERE source_id = %s",
                       (out["source_id"],)).fetchone()
    assert owner == {"p": a}
    assert count(db, "SELECT count(*) FROM ingest.track_points WHERE project_id = %s", b) == 0
