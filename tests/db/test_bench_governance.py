"""`secinf bench governance` runs end to end on tiny sizes and reports a whole chain."""

from __future__ import annotations

import pytest

from workers.bench.governance_bench import bench_governance

pytestmark = pytest.mark.db


def test_bench_governance_prints_the_audit_chain_figures(
        secinf_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    result = bench_governance(audit_rows=500)
    a = result["audit_chain"]
    assert a["rows"] == 500 and a["sealed"] >= 500 and a["rows_checked"] >= 500
    assert a["whole"] is True
    assert a["passed"] == (a["verify_s_per_million"] < 10)
    printed = " ".join(capsys.readouterr().out.split())
    for text in ("audit chain sealed", "audit chain verified", "< 10 s per 1M"):
        assert text in printed
