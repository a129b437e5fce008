"""`secinf bench delivery` end to end at a small size: downloads through the file service by
signed URL against plain reads, uploads through the signed PUT and the ingest_file job
against the CLI's ingest, in pairs of alternating order, in a scratch database that is
dropped afterwards. Seconds are printed, never asserted."""

from __future__ import annotations

import os

import psycopg
import pytest

from workers.bench.delivery_bench import UPLOAD_STEPS, bench_delivery
from workers.errors import UserError
from workers.settings import load_settings

pytestmark = pytest.mark.db


def test_bench_delivery_prints_both_ratios_from_alternating_pairs(
        capsys: pytest.CaptureFixture[str]) -> None:
    result = bench_delivery(mb=2, fetches=2, points=2000, repeat=2, json_out=False)
    printed = " ".join(capsys.readouterr().out.split())
    downloads, uploads = result["downloads"], result["uploads"]
    assert [p["order"] for p in downloads["pairs"]] == ["plain, service, loopback",
                                                        "service, plain, loopback"]
    for p in downloads["pairs"]:
        assert p["ratio"] == pytest.approx(p["service_mb_per_s"] / p["plain_mb_per_s"],
                                           rel=0.05, abs=0.002)
        # The machine's ceiling (the file's pages over loopback TCP, no HTTP), beside it.
        assert p["loopback_ratio"] == pytest.approx(
            p["loopback_mb_per_s"] / p["plain_mb_per_s"], rel=0.05, abs=0.002)
        assert p["of_loopback"] == pytest.approx(
            p["service_mb_per_s"] / p["loopback_mb_per_s"], rel=0.05, abs=0.002)
    assert downloads["ratio_min"] <= downloads["ratio"] <= downloads["ratio_max"]
    assert downloads["passed"] == (downloads["ratio"] >= 0.5)
    assert [p["order"] for p in uploads["pairs"]] == ["cli, upload", "upload, cli"]
    for p in uploads["pairs"]:
        # Every ingest, by either path, put all of the file's points in the tracks table.
        assert p["cli"]["points"] == p["upload"]["points"] == 2000
        assert p["cli"]["inserted"] == p["upload"]["inserted"] == 2000
        assert set(p["upload"]["steps_s"]) == set(UPLOAD_STEPS)
        assert p["ratio"] == pytest.approx(p["upload"]["seconds"] / p["cli"]["seconds"],
                                           rel=0.05, abs=0.01)
        assert p["checkpointed"]  # the test role is a superuser
    assert uploads["passed"] == (uploads["ratio"] <= 1.5)
    for text in ("download 2/2 (service, plain, loopback)", "download ceiling of this machine",
                 "upload 2/2 (upload, cli)",
                 "download MB/s", "upload→ingested s", ">= 0.5", "<= 1.5", "upload steps"):
        assert text in printed
    # The scratch database is gone, and the job's storage setting with it.
    assert "SECINF_DATASETS_DIR" not in os.environ
    settings = load_settings()
    with psycopg.connect(settings.conninfo(dbname="postgres")) as admin:
        left = admin.execute("SELECT count(*) FROM pg_database WHERE datname = %s",
                             (f"secinf_bench_delivery_{os.getpid()}",)).fetchone()
    assert left is not None and left[0] == 0


def test_bench_delivery_refuses_sizes_too_small_to_time() -> None:
    with pytest.raises(UserError, match="--points 10 is too small"):
        bench_delivery(points=10, json_out=True)
