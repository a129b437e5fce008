"""`secinf bench pipeline` end to end at a small size: both scenes ticked to completion, the
figures derived from the tick's own stage timings, and the write floor measured on empty
twins of the feature tables, all in a scratch database that is dropped afterwards."""

from __future__ import annotations

import psycopg
import pytest

from workers.bench.pipeline_bench import FEATURES, TARGET_POINTS_PER_S, bench_pipeline
from workers.settings import load_settings


def test_bench_pipeline_reports_throughput_scaling_and_write_floor(
        capsys: pytest.CaptureFixture[str]) -> None:
    result = bench_pipeline(1000, json_out=False)
    printed = capsys.readouterr().out
    one, two = result["one_x"], result["two_x"]
    assert one["points"] > 1000 and two["points"] > one["points"]
    assert set(FEATURES) <= set(one["stage_s"])
    assert one["features_s"] == pytest.approx(sum(one["stage_s"][s] for s in FEATURES),
                                              abs=0.005)
    assert one["points_per_s"] == pytest.approx(one["points"] / one["features_s"], rel=0.01)
    assert result["scaling_2x_over_1x"] == pytest.approx(
        two["features_s"] / one["features_s"], abs=0.01)
    # The floor re-inserted exactly what the 1x tick wrote, table by table.
    floor = result["write_floor"]
    assert floor["rows"]["kinematics"] == one["rows"]["kinematics"] == one["points"]
    for table in ("relations", "change_points", "zone_presence"):
        assert floor["rows"][table] == one["rows"][table]
    assert one["rows"]["relations"] > 0 and one["rows"]["change_points"] > 0
    assert floor["checkpointed"]  # the test role is a superuser
    assert 0 < floor["seconds"]["kinematics"] <= floor["total_s"]
    assert result["target_budget_s"] == pytest.approx(one["points"] / TARGET_POINTS_PER_S,
                                                      abs=0.001)
    assert result["write_floor_share_of_budget"] == pytest.approx(
        floor["total_s"] / result["target_budget_s"], rel=0.01)
    assert "write floor" in printed and "2x actors" in printed
    # Neither the scratch database nor the twins' schema is left behind.
    settings = load_settings()
    with psycopg.connect(settings.conninfo(dbname="postgres")) as admin:
        left = admin.execute("SELECT count(*) FROM pg_database "
                             "WHERE datname LIKE 'secinf_bench_pipeline_%'").fetchone()
    assert left is not None and left[0] == 0
