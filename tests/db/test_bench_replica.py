"""`secinf bench replica` at a tiny size: a scratch primary and its replica, every read
timed on both, the lag under a short write load. Milliseconds are printed, never asserted."""

from __future__ import annotations

import pytest

from workers.bench.replica_bench import TARGET_RATIO, bench_replica
from workers.settings import PG_BIN, load_settings

pytestmark = [
    pytest.mark.db,
    pytest.mark.slow,
    pytest.mark.skipif(not (PG_BIN / "pg_basebackup").exists(),
                       reason=f"{PG_BIN}/pg_basebackup is absent: PostgreSQL 15's server "
                              "package provides it (`make system`)"),
    pytest.mark.skipif(bool(load_settings().dsn),
                       reason="SECINF_DSN: the bench builds a scratch cluster of its own with "
                              "the local PostgreSQL binaries"),
]


def test_bench_replica_times_reads_on_both_and_the_lag(capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    result = bench_replica(candidates=300, repeats=3, load_seconds=1.0, batch=200)
    assert [r["query"] for r in result["reads"]] == [
        "queue uncertain page 1", "queue newest page 1", "counts", "candidate detail",
        "project metrics"]
    for r in result["reads"]:
        assert 0 < r["primary_median_ms"] <= r["primary_p95_ms"]
        assert 0 < r["replica_median_ms"] <= r["replica_p95_ms"] and r["ratio"] > 0
    assert result["within_target"] == (result["ratio_max"] <= TARGET_RATIO)
    lag = result["lag_under_load"]
    assert lag["samples"] >= 1 and lag["rows_per_s"] > 0 and lag["lag_bytes_max"] >= 0
    assert lag["caught_up_after_s"] is not None
    out = capsys.readouterr().out
    assert "reads on the replica vs the primary" in out and "lag under load" in out
