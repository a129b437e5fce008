"""The rules read the sampling period that candidates.run_rules measures once per range (their
$5), not 1 / fps: a 2.5 Hz source numbered at 25 fps (ETH/UCY's annotation) steps 0.4 s."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl
import psycopg
import pytest

from tests.support.factories import make_project
from workers.pipeline.runner import tick
from workers.pipeline.scene_copy import copy_points, scene_source
from workers.rules import store
from workers.rules.ontology import DEFAULT_PATH, load_ontology

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]
ORIGIN = "2026-01-01T00:00:00Z"
HZ = 2.5


def _overtake(seconds: float = 24.0) -> pl.DataFrame:
    """Track "slow" walks east at 1.0 m/s; "fast" starts 6 m behind it, 1 m to its side, at
    1.6 m/s and passes it after 10 s. Every 10th frame of 25 fps, as ETH/UCY annotate."""
    rows: list[dict[str, Any]] = []
    for i in range(int(seconds * HZ)):
        t = i / HZ
        rows.append({"track_id": "slow", "frame": 10 * i, "t": t, "x": 1.0 * t, "y": 0.0})
        rows.append({"track_id": "fast", "frame": 10 * i, "t": t, "x": -6.0 + 1.6 * t, "y": 1.0})
    df = pl.DataFrame(rows)
    return df.with_columns(pl.lit("pedestrian").alias("class"),
                           pl.lit(1.0, dtype=pl.Float32).alias("confidence"))


def test_an_overtake_at_2_5_hz_counts_its_rows_as_0_4_s_each(db: Conn) -> None:
    # overtake needs its `during` rows to cover 80 % of the pass (min_during_share), one
    # sampling period per row: with 1 / fps (0.04 s) they would cover a tenth of it.
    pid = make_project(db, "acme", "sampling")
    store.load(db, pid, load_ontology(DEFAULT_PATH))
    sid = scene_source(db, pid, {"source": "annotated", "fps": 25.0, "units": "m",
                                 "time_origin": ORIGIN})
    copy_points(db, pid, sid, _overtake(),
                datetime.fromisoformat(ORIGIN.replace("Z", "+00:00")), "annotated")
    report = tick(db, until_idle=True)
    assert not report.errors, report.errors

    step = db.execute("SELECT features.sampling_period_s(%s, 'infinity') AS s",
                      (sid,)).fetchone()
    assert step is not None and step["s"] == pytest.approx(0.4)
    found = db.execute("SELECT actors, start_ts, end_ts FROM candidates.candidates "
                       "WHERE source_id = %s AND type = 'overtake'", (sid,)).fetchall()
    assert [r["actors"] for r in found] == [{"passed": "slow", "passer": "fast"}], found
