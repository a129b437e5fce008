"""`secinf bench ingest` end to end at a small size: the real ingest path and the ceiling,
repeated in alternating order, in a scratch database that is dropped afterwards."""

from __future__ import annotations

import os

import psycopg
import pytest

from workers.bench.ingest_bench import bench_ingest
from workers.settings import load_settings


def test_bench_ingest_reports_median_of_alternating_pairs(capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    result = bench_ingest(3000, json_out=True, repeat=3)
    capsys.readouterr()
    assert result["inserted"] == 3000 and result["invalid"] == 0
    pairs = result["pairs"]
    assert [p["order"] for p in pairs] == ["ceiling, ingest", "ingest, ceiling",
                                           "ceiling, ingest"]
    # Every pair ingested all points into emptied tables (no duplicates from the last pair).
    assert all(p["inserted"] == 3000 for p in pairs)
    assert all(p["checkpointed"] for p in pairs)  # the test role is a superuser
    ratios = sorted(p["ratio"] for p in pairs)
    assert result["ratio"] == ratios[1]
    assert result["ratio_min"] == ratios[0] and result["ratio_max"] == ratios[2]
    for p in pairs:
        # The ratio is of the unrounded times; the seconds shown are rounded to the ms.
        c, i = p["ceiling_seconds"], p["ingest_seconds"]
        assert (c - 5e-4) / (i + 5e-4) - 1e-3 <= p["ratio"] <= (c + 5e-4) / max(i - 5e-4, 1e-9) \
            + 1e-3
    # The scratch database is gone.
    settings = load_settings()
    with psycopg.connect(settings.conninfo(dbname="postgres")) as admin:
        left = admin.execute("SELECT count(*) FROM pg_database WHERE datname = %s",
                             (f"secinf_bench_ingest_{os.getpid()}",)).fetchone()
    assert left is not None and left[0] == 0
