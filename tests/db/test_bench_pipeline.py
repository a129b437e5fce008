"""`secinf bench pipeline` end to end at a small size: pairs of 1x and 2x scenes ticked to
completion in alternating order, medians of the tick's own stage timings, the write floor
measured on empty twins of the feature tables, and the dense real scene (a cut of UCY
students001 + students003, skipped with its reason where the shared data are absent), all
in a scratch database that is dropped afterwards."""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path
from typing import Any

import psycopg
import pytest

from workers.bench import real_scene
from workers.bench.pipeline_bench import FEATURES, STAGES, TARGET_POINTS_PER_S, bench_pipeline
from workers.errors import UserError
from workers.settings import load_settings


def test_bench_pipeline_reports_medians_scaling_and_write_floor(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # No data sets in tmp_path: the real scene is skipped, and says why.
    result = bench_pipeline(1000, json_out=False, repeat=3, data_dir=tmp_path)
    printed = capsys.readouterr().out
    pairs = result["pairs"]
    assert [p["order"] for p in pairs] == ["1x, 2x", "2x, 1x", "1x, 2x"]
    for p in pairs:
        one, two = p["one_x"], p["two_x"]
        assert one["points"] > 1000 and two["points"] > one["points"]
        # Every pair met emptied tables: each tick wrote exactly its own scene's rows.
        assert one["rows"]["kinematics"] == one["points"] == pairs[0]["one_x"]["points"]
        assert two["rows"]["kinematics"] == two["points"] == pairs[0]["two_x"]["points"]
        assert set(FEATURES) <= set(one["stage_s"])
        assert one["features_s"] == pytest.approx(sum(one["stage_s"][s] for s in FEATURES),
                                                  abs=0.005)
        assert p["scaling_2x_over_1x"] == pytest.approx(two["features_s"] / one["features_s"],
                                                        abs=0.01)
    # The warm-up tick ran (and was emptied away: the pairs' row counts above are exact).
    assert result["warm_up_s"] > 0
    density = result["relation_pairs_per_point"]
    assert density["one_x"] == pytest.approx(
        pairs[-1]["one_x"]["rows"]["pairs"] / 2 / pairs[-1]["one_x"]["points"], abs=1e-4)
    median = result["one_x"]
    assert median["features_s"] == statistics.median(p["one_x"]["features_s"] for p in pairs)
    assert median["points_per_s"] == pytest.approx(median["points"] / median["features_s"],
                                                   rel=0.01)
    assert result["scaling_2x_over_1x"] == statistics.median(
        p["scaling_2x_over_1x"] for p in pairs)
    assert result["scaling_min"] <= result["scaling_2x_over_1x"] <= result["scaling_max"]
    # The floor re-inserted exactly what the last 1x tick wrote, table by table.
    floor, last = result["write_floor"], pairs[-1]["one_x"]
    for table in STAGES:
        assert floor["rows"][table] == last["rows"][table]
    assert "relations" not in floor["rows"]
    assert last["rows"]["pairs"] > 0 and last["rows"]["change_points"] > 0
    assert floor["checkpointed"]  # the test role is a superuser
    assert 0 < floor["seconds"]["kinematics"] <= floor["total_s"]
    assert result["target_budget_s"] == pytest.approx(median["points"] / TARGET_POINTS_PER_S,
                                                      abs=0.001)
    assert result["write_floor_share_of_budget"] == pytest.approx(
        floor["total_s"] / result["target_budget_s"], rel=0.01)
    assert "pair 3/3 (1x, 2x)" in printed and "write floor" in printed
    skipped = result["real_scene"]["skipped"]
    assert skipped.startswith(f"no students001.txt, students003.txt under {tmp_path}")
    assert f"real scene skipped: {skipped}" in " ".join(printed.split())
    assert result["whole_tick_points_per_s"] == {"simulated_1x": median["tick_points_per_s"],
                                                 "real": None}
    # The scratch database, and the twins with it, is gone.
    settings = load_settings()
    with psycopg.connect(settings.conninfo(dbname="postgres")) as admin:
        left = admin.execute("SELECT count(*) FROM pg_database WHERE datname = %s",
                             (f"secinf_bench_pipeline_{os.getpid()}",)).fetchone()
    assert left is not None and left[0] == 0


def test_bench_pipeline_refuses_sizes_too_small_to_time() -> None:
    with pytest.raises(UserError, match="--points 10 is too small"):
        bench_pipeline(10, json_out=True)


@pytest.mark.skipif(real_scene.missing_reason() is not None,
                    reason=str(real_scene.missing_reason()))
def test_bench_pipeline_real_scene_on_a_cut_of_the_ucy_files(
        capsys: pytest.CaptureFixture[str]) -> None:
    result = bench_pipeline(1000, json_out=True, repeat=1, real_points=400)
    printed = json.loads(capsys.readouterr().out)
    real = result["real_scene"]
    assert printed["real_scene"] == real
    assert real["files"] == ["students001.txt", "students003.txt"]
    # The first 400 lines of each file, every one a point; every stage ran, rules included.
    assert real["points"] == 800 == real["rows"]["kinematics"]
    assert set(STAGES) | {"candidates", "analyze"} <= set(real["stage_s"])
    assert "relations" not in real["stage_s"]  # pair rows are computed, not stored
    assert real["pair_rows"] > 0
    assert real["relation_pairs_per_point"] == pytest.approx(
        real["pair_rows"] / 2 / 800, abs=0.01)
    assert real["tick_points_per_s"] == pytest.approx(800 / real["tick_s"], rel=0.01)
    assert result["whole_tick_points_per_s"] == {
        "simulated_1x": result["one_x"]["tick_points_per_s"], "real": real["tick_points_per_s"]}
    # The tick analyzed the chunks it filled before the rules ran on them.
    assert any(t.startswith("_timescaledb_internal.") for t in real["analyzed"])
    assert real["candidates_in_tick_s"] == real["stage_s"]["candidates"]
    assert real["candidates_alone_s"] > 0
    # The ratio is of the unrounded times; the seconds shown are rounded to the ms.
    num, den = real["candidates_in_tick_s"], real["candidates_alone_s"]
    assert (num - 5e-4) / (den + 5e-4) - 0.01 <= real["candidates_in_tick_over_alone"] \
        <= (num + 5e-4) / max(den - 5e-4, 1e-9) + 0.01
    assert real["target_in_tick_over_alone"] == 2.0
    # The same cut on two parallel lanes in a second project: every point, the same
    # candidates as one transaction.
    lanes = real["parallel"]
    assert lanes["lanes"] == 2 and lanes["same_candidates_as_one_lane"] is True
    assert lanes["tick_points_per_s"] == pytest.approx(800 / lanes["tick_s"], rel=0.01)
    assert {"kinematics", "candidates"} <= set(lanes["stage_s"])


def test_bench_pipeline_parallel_sources_and_a_dense_source_beside_a_light_one(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data_dir = real_scene.DATA_DIR if real_scene.missing_reason() is None else tmp_path
    result = bench_pipeline(4000, json_out=False, repeat=3, real=True, real_points=300,
                            data_dir=data_dir, real_lanes=1, parallel=2, parallel_sources=3)
    printed = capsys.readouterr().out
    several = result["parallel"]["several_sources"]
    assert several["sources"] == 3 and several["backends"] == 2
    rounds = several["rounds"]
    # every arm ticks every point, and the order of the arms rotates
    assert [r["order"] for r in rounds] == ["transaction, one, many", "one, many, transaction",
                                            "many, transaction, one"]
    for r in rounds:
        assert r["transaction"]["points"] == r["one"]["points"] == r["many"]["points"] \
            == several["points"] > 0
        assert (r["one"]["backends"], r["many"]["backends"]) == (1, 2)
        assert r["speedup"] == pytest.approx(r["one"]["features_s"] / r["many"]["features_s"],
                                             abs=0.01)
        # a unit is a source's range and then its pair rows, in one pass: the lanes' pair
        # seconds fit in the pass's wall time on every lane
        for arm in ("one", "many"):
            assert 0 < r[arm]["pairs_s"] <= r[arm]["features_s"] * r[arm]["backends"] + 1e-3
    assert several["speedup"] == statistics.median(r["speedup"] for r in rounds)
    assert "per-source units on one backend" in printed
    light = result["parallel"]["dense_and_light"]
    if data_dir == tmp_path:
        assert "skipped" in light and "dense and light sources skipped" in printed
        return
    for run, lanes in ((light["one_lane"], 1), (light["parallel"], 2)):
        assert run["lanes"] == lanes and run["settle_s"] == 2.0
        assert 0 < run["light_lag_s"] <= run["dense_done_s"] + 1e-3
    assert "the light source done" in printed


def test_emptying_between_rounds_drops_the_chunks(
        db: psycopg.Connection[dict[str, Any]]) -> None:
    """Rounds meet empty tables without chunks, so each times the lanes making their day's
    chunks (pipeline.prepare_chunks; parallel_sources.empty_tables)."""
    from tests.support.scene_loader import load_sim, project, run_tick
    from workers.bench.parallel_sources import empty_tables
    from workers.simulate import preset_config, simulate

    pid = project(db, "bench-chunks")
    load_sim(db, pid, simulate(preset_config("corridor", seed=1, duration=20)))
    run_tick(db)

    def chunks() -> list[str]:
        return [r["chunk_name"] for r in db.execute(
            "SELECT chunk_name FROM timescaledb_information.chunks WHERE hypertable_schema "
            "= 'features' AND hypertable_name = 'kinematics' ORDER BY 1").fetchall()]

    before = chunks()
    assert before and db.execute("SELECT count(*) AS n FROM features.kinematics"
                                 ).fetchone()["n"] > 0
    empty_tables(db)
    assert chunks() == []
    for table in ("features.kinematics", "ingest.track_points", "ingest.sources",
                  "features.change_points"):
        assert db.execute(f"SELECT count(*) AS n FROM {table}").fetchone() == {"n": 0}
