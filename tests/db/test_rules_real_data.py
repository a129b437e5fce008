"""Rules on recorded trajectories (ETH/UCY crowds_zara01): they run, and pairs walking side
by side come out as accompany, not as follow or overtake of the same pair at that time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl
import psycopg
import pytest

from tests.conftest import shared_data
from tests.support.factories import make_project
from workers.pipeline.runner import tick
from workers.pipeline.scene_copy import copy_points, scene_source
from workers.rules import store
from workers.rules.ontology import DEFAULT_PATH, load_ontology

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]
ORIGIN = "2026-01-01T00:00:00Z"


def _zara(path: Any) -> pl.DataFrame:
    raw = pl.read_csv(path, separator="\t", has_header=False,
                      new_columns=["frame", "track_id", "x", "y"])
    frame = (raw["frame"] // 10).cast(pl.Int64)  # annotated every 10th frame at 25 fps
    return pl.DataFrame({
        "track_id": raw["track_id"].cast(pl.Int64).cast(pl.Utf8), "frame": frame,
        "t": frame.cast(pl.Float64) / 2.5, "x": raw["x"], "y": raw["y"],
        "class": "pedestrian", "confidence": pl.Series([1.0] * raw.height, dtype=pl.Float32)})


@pytest.mark.slow
def test_zara_groups_accompany_not_follow(db: Conn) -> None:
    tracks = _zara(shared_data("eth_ucy", "crowds_zara01.txt"))
    pid = make_project(db, "acme", "zara")
    store.load(db, pid, load_ontology(DEFAULT_PATH))
    sid = scene_source(db, pid, {"source": "zara01", "fps": 2.5, "units": "m",
                                 "time_origin": ORIGIN})
    copy_points(db, pid, sid, tracks, datetime.fromisoformat(ORIGIN.replace("Z", "+00:00")),
                "zara01")
    report = tick(db, until_idle=True)
    assert not report.errors, report.errors

    counts = {r["type"]: r["n"] for r in db.execute(
        "SELECT type, count(*) AS n FROM candidates.candidates GROUP BY type").fetchall()}
    assert counts.get("accompany", 0) >= 3, counts
    # A pair side by side is not, at the same time, one behind the other or passing.
    clash = db.execute("""
        SELECT a.actors, b.type FROM candidates.candidates a
        JOIN candidates.candidates b
          ON b.type IN ('follow', 'overtake')
         AND (SELECT array_agg(v ORDER BY v) FROM jsonb_each_text(b.actors) e(k, v))
           = (SELECT array_agg(v ORDER BY v) FROM jsonb_each_text(a.actors) e(k, v))
         AND tstzrange(a.start_ts, a.end_ts) && tstzrange(b.start_ts, b.end_ts)
        WHERE a.type = 'accompany'""").fetchall()
    assert len(clash) <= counts["accompany"] // 10, clash
    # Spans and scores are sane.
    row = db.execute("SELECT bool_and(end_ts >= start_ts) AS ok, min(rule_score) AS lo, "
                     "max(rule_score) AS hi FROM candidates.candidates").fetchone()
    assert row is not None and row["ok"] and 0.0 <= row["lo"] <= row["hi"] <= 1.0
