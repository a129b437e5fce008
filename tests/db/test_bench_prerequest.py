"""`secinf bench prerequest` end to end at a tiny size: both variants timed in one run on a
scratch database that is dropped afterwards, every metered request counted once by the
flush. Milliseconds are printed, never asserted."""

from __future__ import annotations

import os

import psycopg
import pytest
from typer.testing import CliRunner

from workers.bench.prerequest_bench import bench_prerequest
from workers.cli.main import app
from workers.errors import UserError
from workers.settings import load_settings

pytestmark = pytest.mark.db


def test_bench_prerequest_prints_both_variants_and_the_p95_difference(
        capsys: pytest.CaptureFixture[str]) -> None:
    result = bench_prerequest(requests=20, json_out=False, warmup=4)
    printed = " ".join(capsys.readouterr().out.split())
    for variant in ("with_limits", "without_limits"):
        r = result["request"][variant]
        assert 0 < r["p50_ms"] <= r["p95_ms"]
    assert result["p95_added_ms"] == pytest.approx(
        result["request"]["with_limits"]["p95_ms"]
        - result["request"]["without_limits"]["p95_ms"], abs=0.002)
    assert result["passed"] == (result["p95_added_ms"] < 1.0)
    # Metering happened: the flush counted every request made through api.pre_request.
    assert result["counted"] == result["made_with_limits"] == 22
    for text in ("metered + limited", "baseline", "p95 added per request",
                 "< 1 ms", "22 of 22"):
        assert text in printed
    with psycopg.connect(load_settings().conninfo(dbname="postgres")) as admin:
        left = admin.execute("SELECT count(*) FROM pg_database WHERE datname = %s",
                             (f"secinf_bench_prerequest_{os.getpid()}",)).fetchone()
    assert left is not None and left[0] == 0


def test_too_few_requests_is_a_user_error() -> None:
    with pytest.raises(UserError, match="--requests 5 is too few"):
        bench_prerequest(requests=5, json_out=True)
    result = CliRunner().invoke(app, ["bench", "prerequest", "--requests", "5"])
    assert result.exit_code == 2
