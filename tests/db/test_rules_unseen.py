"""Unseen spans (a track state's `unseen_max_s`, docs/rules.md "Unseen spans"): a track
that has no row for a while and is found again where it was lost stood there meanwhile, so
`stop` (default ontology v4) spans the time it was unseen; one found again elsewhere, or
after longer than unseen_max_s, is two stops (or none)."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import psycopg
import pytest

from tests.support.ontology_variants import default_with
from tests.support.scene_loader import candidates_of, load_tracks, project, run_tick
from workers.rules import store
from workers.rules.ontology import Ontology

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]
FPS = 5.0
DRIVE_S = 8.0
STAND_S = 3.0


def _vehicle(unseen_s: float, shift_m: float, stand_s: float = STAND_S,
             speed: float = 3.0) -> pl.DataFrame:
    """v drives DRIVE_S along x at `speed`, stands stand_s (none: it is lost while it
    moves), is unseen for unseen_s, is found again shift_m further on, stands stand_s and
    drives off for DRIVE_S. A second track, w, drives 60 m away for as long as the scene
    lasts plus 10 s, so that every interval of v is closed."""
    drive = np.arange(int(DRIVE_S * FPS)) / FPS
    stand = np.arange(1, int(stand_s * FPS) + 1) / FPS
    x_stop = speed * DRIVE_S
    t1 = np.concatenate([drive, DRIVE_S + stand])
    x1 = np.concatenate([speed * drive, np.full(len(stand), x_stop)])
    back = t1[-1] + unseen_s
    t2 = np.concatenate([back + np.arange(len(stand)) / FPS,
                         back + stand_s + np.arange(1, int(DRIVE_S * FPS) + 1) / FPS])
    x2 = np.concatenate([np.full(len(stand), x_stop + shift_m),
                         x_stop + shift_m + speed * np.arange(1, int(DRIVE_S * FPS) + 1) / FPS])
    if not stand_s:  # lost while moving, found moving on from (almost) the same place
        t2 = back + np.arange(int(DRIVE_S * FPS)) / FPS
        x2 = x_stop + shift_m + speed * (t2 - back)
    t = np.concatenate([t1, t2])
    x = np.concatenate([x1, x2])
    n = int((t[-1] + 10.0) * FPS)
    w = pl.DataFrame({"track_id": ["w"] * n, "frame": np.arange(n), "t": np.arange(n) / FPS,
                      "x": 3.0 * np.arange(n) / FPS, "y": [60.0] * n})
    v = pl.DataFrame({"track_id": ["v"] * len(t), "frame": np.round(t * FPS).astype(np.int64),
                      "t": t, "x": x, "y": [0.0] * len(t)})
    return pl.concat([v, w])


def _ontology(unseen_max_s: float | None) -> Ontology:
    """The default ontology, its stop's unseen span capped at unseen_max_s (None: none)."""
    span = {} if unseen_max_s is None else {"unseen_max_s": unseen_max_s,
                                            "unseen_shift_m": 1.0}
    return default_with("stop", ("unseen_max_s", "unseen_shift_m"), **span)


def _stops(db: Conn, slug: str, unseen_max_s: float | None, scene: pl.DataFrame
           ) -> list[tuple[float, float, Any]]:
    pid = project(db, slug)
    store.load(db, pid, _ontology(unseen_max_s))
    source = load_tracks(db, pid, scene, FPS, name=f"{slug}-cam")
    run_tick(db)
    rows = candidates_of(db, source, "stop")
    assert all(r["actors"] == {"actor": "v"} for r in rows)
    return [(round(r["t0"]), round(r["t1"]), r["evidence"].get("unseen_s")) for r in rows]


def test_a_vehicle_lost_where_it_stands_stops_once_across_the_span(db: Conn) -> None:
    scene = _vehicle(unseen_s=20.0, shift_m=0.3)
    # without unseen spans: the two standing phases, each a stop of its own
    spans = [(t0, t1) for t0, t1, _ in _stops(db, "split", None, scene)]
    assert len(spans) == 2 and spans[0][1] <= 11 and spans[1][0] >= 31
    # the default ontology (v4): one stop from the first standing row to the last, the
    # 20 s unseen in its evidence
    [(t0, t1, unseen)] = _stops(db, "joined", 60.0, scene)
    assert (t0, t1) == (spans[0][0], spans[1][1])
    assert unseen == pytest.approx(20.0, abs=0.3)


def test_found_again_elsewhere_or_too_late_it_is_two_stops(db: Conn) -> None:
    moved = _stops(db, "moved", 60.0, _vehicle(unseen_s=20.0, shift_m=3.0))
    assert len(moved) == 2 and all(u == 0 for *_, u in moved)
    late = _stops(db, "late", 60.0, _vehicle(unseen_s=80.0, shift_m=0.3))
    assert len(late) == 2 and all(u == 0 for *_, u in late)


def test_a_track_lost_while_it_moves_and_found_where_it_was_stood_while_unseen(
        db: Conn) -> None:
    # the rows either side are too fast for the condition: the stop is the unseen span
    # itself (MEVA: a vehicle is not tracked while it stands)
    scene = _vehicle(unseen_s=15.0, shift_m=0.2, stand_s=0.0, speed=1.0)
    [(t0, t1, unseen)] = _stops(db, "gap-only", 60.0, scene)
    assert (t0, t1) == (round(DRIVE_S - 1 / FPS), round(DRIVE_S - 1 / FPS + 15.0))
    assert unseen == pytest.approx(15.0, abs=0.3)
    # a walker lost for 15 s and found 15 m on did not stop
    assert _stops(db, "walker", 60.0, _vehicle(unseen_s=15.0, shift_m=15.0, stand_s=0.0,
                                               speed=1.0)) == []


def _lost(stand_s: float = STAND_S, tail_s: float = 30.0) -> pl.DataFrame:
    """v drives, stands stand_s and is lost for good; w goes on for tail_s after that, and
    the recording has not ended (a live source)."""
    full = _vehicle(unseen_s=1000.0, shift_m=0.0, stand_s=stand_s)
    lost_at = DRIVE_S + stand_s
    return full.filter(((pl.col("track_id") == "v") & (pl.col("t") <= lost_at + 1e-9))
                       | ((pl.col("track_id") == "w") & (pl.col("t") <= lost_at + tail_s)))


def test_a_live_track_lost_while_it_stands_is_held_open_until_unseen_max_s(db: Conn) -> None:
    # lost 30 s before the data ends: it may still be found where it stood within 60 s, so
    # its stop is not emitted yet (a later tick emits it, joined or not)
    assert _stops(db, "live-held", 60.0, _lost()) == []
    # with a 20 s span the track can no longer be joined: the stand is emitted
    [(t0, t1, unseen)] = _stops(db, "live-short", 20.0, _lost())
    assert (t0, t1, unseen) == (round(DRIVE_S), round(DRIVE_S + STAND_S), 0)
    # without unseen spans it is emitted as soon as it is closed, as before
    assert len(_stops(db, "live-none", None, _lost())) == 1


def test_ticked_in_pieces_a_stop_across_the_span_is_emitted_once(db: Conn) -> None:
    """A live source: the first tick sees v lost (10 s ago), the second sees it found again
    where it stood. The stop is held open in between, so the pieces give one stop, the
    one-pass result, not the stand before the span and then the whole again."""
    from datetime import UTC, datetime

    from tests.support.scene_loader import ORIGIN
    from workers.pipeline.scene_copy import copy_points, scene_source

    scene = _vehicle(unseen_s=20.0, shift_m=0.3).with_columns(
        pl.lit("vehicle").alias("class"), pl.lit(0.9, dtype=pl.Float32).alias("confidence"))
    pid = project(db, "pieces")
    store.load(db, pid, _ontology(60.0))
    source = scene_source(db, pid, {"source": "pieces-cam", "fps": FPS, "units": "m",
                                    "time_origin": ORIGIN, "zones": [], "routes": [],
                                    "triggers": []})
    cut = DRIVE_S + STAND_S + 10.0
    for i, piece in enumerate((scene.filter(pl.col("t") < cut), scene.filter(pl.col("t") >= cut))):
        copy_points(db, pid, source, piece, datetime(2026, 1, 1, tzinfo=UTC), f"pieces-{i}")
        run_tick(db)
    rows = db.execute("SELECT count(*) AS n, max((evidence ->> 'unseen_s')::float8) AS unseen "
                      "FROM candidates.candidates WHERE source_id = %s AND type = 'stop'",
                      (source,)).fetchone()
    assert rows == {"n": 1, "unseen": pytest.approx(20.0, abs=0.3)}
