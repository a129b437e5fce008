"""A transform that maps points off the ground is refused where data enters (issue 16):
after the transform, ground coordinates must be finite and within the world bounds that
metric input is held to, and a homography's denominator must keep one sign over the batch.
Both paths, POST /rpc/ingest_batch (as a customer, the PostgREST request model) and the
file ingest, refuse the batch whole with a message naming the source, row and value."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.support.factories import make_project
from tests.support.postgrest import Api, ApiError
from workers.errors import UserError
from workers.ingest import IngestRequest, ingest

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]

POISON = [[1e300, 0, 0], [0, 1, 0], [0, 0, 1]]
POINTS = [{"track_id": "1", "frame": f, "t": f / 10, "x": 1 + f, "y": 2} for f in range(3)]
HINT_H = ("Check the source's homography: it maps image pixels to metres on the ground. A "
          "source keeps the transform of its first stored batch.")
OFF_WORLD = ('source "{src}": row 1 (x = 1, y = 2) maps to x = {x}, y = 2 under the '
             "source's homography, outside the world bounds (|x| and |y| below 1e6 m); "
             "nothing was stored")
HORIZON = ('source "{src}": row 2 (x = 2, y = 2) lies on the horizon of the source\'s '
           "homography (h20·x + h21·y + h22 = 0): it maps to no ground point; nothing was "
           "stored")
SIDES = ('source "{src}": rows 1 and 2 lie on opposite sides of the horizon of the '
         "source's homography (h20·x + h21·y + h22 = -0.5 and 0.5): one of them maps behind "
         "the camera; nothing was stored")
CASES = [
    # the homography: every point lands 1e300 m away
    ("poison", POISON, OFF_WORLD.format(src="poison", x="1e+300")),
    # overflows double precision on the way (1e303 · 999999): no finite ground point
    ("overflow", [[1e303, 0, 0], [0, 1, 0], [0, 0, 1]], None),
    # w = x - 2: row 2 (x = 2) is on the horizon line
    ("horizon", [[1, 0, 0], [0, 1, 0], [1, 0, -2]], HORIZON.format(src="horizon")),
    # w = x - 1.5: rows 1 and 2 straddle it
    ("sides", [[1, 0, 0], [0, 1, 0], [1, 0, -1.5]], SIDES.format(src="sides")),
]


@pytest.fixture
def tenants(db: Conn) -> tuple[str, str]:
    a = make_project(db, "acme", "north")
    b = make_project(db, "globex", "south")
    db.commit()
    return a, b


def stored(db: Conn, project_id: str) -> dict[str, int]:
    row = db.execute("""SELECT (SELECT count(*) FROM ingest.sources WHERE project_id = %(p)s) AS s,
                               (SELECT count(*) FROM ingest.batches WHERE project_id = %(p)s) AS b,
                               (SELECT count(*) FROM ingest.track_points
                                WHERE project_id = %(p)s) AS p""", {"p": project_id}).fetchone()
    db.rollback()
    assert row is not None
    return dict(row)


@pytest.mark.parametrize(("name", "matrix", "message"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("strict", [False, True])
def test_the_api_refuses_a_batch_its_homography_maps_off_the_ground(
        db: Conn, dsn: str, tenants: tuple[str, str], name: str, matrix: list[list[float]],
        message: str | None, strict: bool) -> None:
    a, _ = tenants
    api = Api(dsn).as_("customer", project_id=a, sub="key:sik_0123456789ab")
    pts = POINTS if name != "overflow" else [{**POINTS[0], "x": 999999}]
    with pytest.raises(ApiError) as err:
        api.rpc("ingest_batch", p_batch=Jsonb({"source": name, "units": "px", "fps": 10,
                                               "homography": matrix, "points": pts,
                                               "strict": strict}))
    assert (err.value.status, err.value.sqlstate) == (400, "22023")
    if message is None:
        message = ('source "overflow": row 1 (x = 999999, y = 2) maps to x = Infinity, y = 2 '
                   "under the source's homography, outside the world bounds (|x| and |y| "
                   "below 1e6 m); nothing was stored")
    assert err.value.message == message
    assert err.value.hint is not None and err.value.hint.startswith(HINT_H)
    assert stored(db, a) == {"s": 0, "b": 0, "p": 0}      # not even the source


def test_the_api_refuses_a_scale_that_lands_off_the_world(db: Conn, dsn: str,
                                                          tenants: tuple[str, str]) -> None:
    a, _ = tenants
    api = Api(dsn).as_("project_admin", project_id=a, sub="key:sik_0123456789ab")
    with pytest.raises(ApiError) as err:
        api.rpc("ingest_batch", p_batch=Jsonb({"source": "far", "scale": 500000, "fps": 10,
                                               "points": POINTS}))
    assert err.value.message == (
        'source "far": row 1 (x = 1, y = 2) maps to x = 500000, y = 1000000 under the '
        "source's scale 500000, outside the world bounds (|x| and |y| below 1e6 m); nothing "
        "was stored")
    assert err.value.hint == ("Check the source's scale: metres per pixel. A source keeps "
                              "the transform of its first stored batch.")
    assert stored(db, a) == {"s": 0, "b": 0, "p": 0}


@pytest.mark.parametrize(("matrix", "message"), [
    # a valid JSON number beyond double precision (json.dumps cannot write one)
    ("[[1, 1e400, 0], [0, 1, 0], [0, 0, 1]]",
     "homography[0][1] is not a finite double-precision number (|value| above 1.8e308)"),
    ("[[1, 0, 0], [0, 0, 0], [0, 0, 1]]",
     "homography: the matrix is singular (determinant 0); check the calibration"),
])
def test_the_api_refuses_a_matrix_that_is_not_finite_or_singular(
        db: Conn, dsn: str, tenants: tuple[str, str], matrix: str, message: str) -> None:
    a, _ = tenants
    api = Api(dsn).as_("customer", project_id=a, sub="key:sik_0123456789ab")
    body = json.dumps({"source": "m", "units": "px", "fps": 10, "points": POINTS,
                       "homography": "MATRIX"}).replace('"MATRIX"', matrix)
    with pytest.raises(ApiError) as err:
        api.rpc("ingest_batch", p_batch=Jsonb(body, dumps=lambda text: str(text)))
    assert (err.value.sqlstate, err.value.message) == ("22023", message)
    assert stored(db, a) == {"s": 0, "b": 0, "p": 0}


def test_a_good_homography_still_loads(db: Conn, dsn: str, tenants: tuple[str, str]) -> None:
    a, _ = tenants
    api = Api(dsn).as_("customer", project_id=a, sub="key:sik_0123456789ab")
    out = api.rpc("ingest_batch", p_batch=Jsonb({
        "source": "ok", "units": "px", "fps": 10, "points": POINTS,
        "homography": [[0.02, 0, -1], [0, 0.03, 2], [0.0001, 0.0002, 1]]}))
    assert out["inserted"] == 3 and out["invalid"] == 0


# ---------------------------------------------------------------- the file ingest
def _csv(tmp_path: Path, points: list[dict[str, Any]]) -> Path:
    path = tmp_path / "tracks.csv"
    path.write_text("track_id,frame,t,x,y\n" + "".join(
        f"{p['track_id']},{p['frame']},{p['t']},{p['x']},{p['y']}\n" for p in points))
    return path


@pytest.mark.parametrize(("name", "matrix", "message"), CASES, ids=[c[0] for c in CASES])
def test_the_file_ingest_refuses_the_same_batches_with_the_same_words(
        db: Conn, tenants: tuple[str, str], tmp_path: Path, name: str,
        matrix: list[list[float]], message: str | None) -> None:
    a, _ = tenants
    pts = POINTS if name != "overflow" else [{**POINTS[0], "x": 999999}]
    with pytest.raises(UserError) as err:
        ingest(db, IngestRequest(project="acme/north", source=name, path=_csv(tmp_path, pts),
                                 units="px", fps=10, homography=json.dumps(matrix)))
    if message is None:
        message = ('source "overflow": row 1 (x = 999999, y = 2) maps to x = Infinity, y = 2 '
                   "under the source's homography, outside the world bounds (|x| and |y| "
                   "below 1e6 m); nothing was stored")
    assert str(err.value) == f"{message}. {HINT_H.split('. A source')[0]}" + (
        ", or leave out points on or above the horizon" if name == "horizon" else
        ", or leave out points above the horizon" if name == "sides" else "")
    assert stored(db, a) == {"s": 0, "b": 0, "p": 0}


def test_scene_geometry_is_held_to_the_same_bounds(db: Conn, tenants: tuple[str, str],
                                                   tmp_path: Path) -> None:
    scene = tmp_path / "scene.json"
    scene.write_text(json.dumps({"units": "px", "zones": [
        {"name": "gate", "polygon": [[0, 0], [0, 1], [1, 1]]}]}))
    with pytest.raises(UserError) as err:
        ingest(db, IngestRequest(project="acme/north", source="geo", scene=scene, units="px",
                                 fps=10, homography=json.dumps(POISON)))
    assert str(err.value) == (
        f"--scene {scene} zone 'gate': point (1, 1) maps to (1e+300, 1) under the source's "
        "homography, outside the world bounds (|x| and |y| below 1e6 m); check the scene's "
        "units and the source's transform")
    assert stored(db, tenants[0]) == {"s": 0, "b": 0, "p": 0}
