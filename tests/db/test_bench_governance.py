"""`secinf bench governance` runs end to end on tiny sizes and reports a whole chain."""

from __future__ import annotations

import pytest

from workers.bench.governance_bench import bench_governance

pytestmark = pytest.mark.db


def test_bench_governance_prints_the_chain_and_records_figures(
        secinf_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    result = bench_governance(audit_rows=500, points=30_000, source_points=4_000, repeat=1)
    a = result["audit_chain"]
    assert a["rows"] == 500 and a["sealed"] >= 500 and a["rows_checked"] >= 500
    assert a["whole"] is True
    assert a["passed"] == (a["verify_s_per_million"] < 10)
    r = result["records"]
    assert r["track_points"] == 30_000
    assert r["erasure"]["points"] == 20                   # one of 200 tracks of 4,000 points
    t = r["retention"]
    assert t["points_removed"] == t["expected_removed"] > 0
    assert t["chunks_dropped"] > 0 and t["rows_deleted_in_batches"] > 0   # both ways used
    assert {q["name"] for q in r["exporter"]} and all(q["rows"] >= 0 for q in r["exporter"])
    printed = " ".join(capsys.readouterr().out.split())
    for text in ("audit chain sealed", "audit chain verified", "< 10 s per 1M",
                 "erasure of one actor", "retention run", "exporter queries"):
        assert text in printed
