"""Determinism, output contract, event coverage and near misses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
import pytest

from workers.simulate import EVENT_TYPES, NEAR_MISS_KINDS, preset_config, simulate, write_outputs


@pytest.fixture(scope="module")
def plaza() -> Any:
    return simulate(preset_config("plaza", 7))


def test_deterministic_for_a_seed(plaza: Any) -> None:
    again = simulate(preset_config("plaza", 7))
    assert again.tracks.equals(plaza.tracks)
    assert again.truth == plaza.truth
    other = simulate(preset_config("plaza", 8))
    assert not other.tracks.equals(plaza.tracks)
    assert other.truth != plaza.truth


def test_written_files_follow_the_contract(plaza: Any, tmp_path: Path) -> None:
    paths = write_outputs(plaza, tmp_path)
    assert set(paths) == {"parquet", "csv", "scene", "truth"}
    schema = pq.read_schema(paths["parquet"])
    assert [(f.name, str(f.type)) for f in schema] == [
        ("track_id", "large_string"), ("frame", "int64"), ("t", "double"), ("x", "double"),
        ("y", "double"), ("class", "large_string"), ("confidence", "float")]
    df = pl.read_parquet(paths["parquet"])
    assert df.equals(df.sort(["frame", "track_id"]))
    assert df["frame"].min() >= 0
    assert set(df["class"].unique()) <= {"pedestrian", "cyclist", "vehicle"}
    assert 0.0 <= df["confidence"].min() and df["confidence"].max() <= 1.0
    per_frame = df.group_by("frame").agg(pl.col("t").n_unique().alias("n"))
    assert per_frame["n"].max() == 1
    csv = pl.read_csv(paths["csv"], schema_overrides={"track_id": pl.Utf8})
    assert csv.columns == df.columns and csv.height == df.height
    scene = json.loads(paths["scene"].read_text())
    assert set(scene) == {"source", "preset", "seed", "fps", "units", "time_origin", "duration",
                          "extent", "zones", "routes", "triggers", "noise"}
    assert scene["source"] == "plaza-7" and scene["units"] == "m"
    assert scene["time_origin"] == "2026-01-01T00:00:00Z"
    assert {z["kind"] for z in scene["zones"]} == {"zone", "branch"}
    assert all(set(t) == {"name", "kind", "t", "position", "radius"} for t in scene["triggers"])
    names = {z["name"] for z in scene["zones"] if z["kind"] == "branch"}
    assert all(r["from_zone"] in names for r in scene["routes"])
    truth = json.loads(paths["truth"].read_text())
    assert set(truth) == {"source", "time_origin", "events"}
    roles = {"enter": {"actor"}, "exit": {"actor"}, "dwell": {"actor"}, "stop": {"actor"},
             "choose_route": {"actor"}, "startle": {"actor"}, "follow": {"leader", "follower"},
             "overtake": {"passer", "passed"}, "meet": {"a", "b"}, "accompany": {"a", "b"},
             "handover": {"a", "b"}}
    attrs = {"enter": {"zone"}, "exit": {"zone"}, "dwell": {"zone"},
             "choose_route": {"zone", "route"}, "startle": {"trigger", "latency"}}
    ids = set(df["track_id"].unique())
    for e in truth["events"]:
        assert set(e) == {"type", "actors", "start", "end", "attributes"}
        assert set(e["actors"]) == roles[e["type"]]
        assert set(e["attributes"]) == attrs.get(e["type"], set())
        assert e["start"] < e["end"]
        assert set(e["actors"].values()) <= ids


def test_formats_option(plaza: Any, tmp_path: Path) -> None:
    paths = write_outputs(plaza, tmp_path, formats=("csv",))
    assert "parquet" not in paths and paths["csv"].exists()
    with pytest.raises(ValueError, match="unknown format"):
        write_outputs(plaza, tmp_path, formats=("xlsx",))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_plaza_has_every_event_type_at_least_five_times(seed: int) -> None:
    counts = simulate(preset_config("plaza", seed)).stats["events"]
    assert {t for t in EVENT_TYPES if counts[t] < 5} == set(), counts


CLAIMS = {
    "corridor": {"follow", "accompany", "overtake", "stop", "enter", "exit"},
    "intersection": {"enter", "exit", "choose_route", "startle"},
    "crowd": set(EVENT_TYPES),
}


@pytest.mark.parametrize("name", sorted(CLAIMS))
def test_presets_contain_what_they_claim(name: str) -> None:
    extra = {"agents": 100} if name == "crowd" else {}
    counts = simulate(preset_config(name, 0, **extra)).stats["events"]
    assert {t for t in CLAIMS[name] if counts[t] == 0} == set(), counts


def test_near_misses_are_planted_and_never_labelled(plaza: Any) -> None:
    kinds = {p["kind"] for p in plaza.planted if p["near_miss"]}
    assert kinds == set(NEAR_MISS_KINDS)
    allowed = {  # events a near-miss group may legitimately carry
        "zone_graze": set(), "slow_down": set(), "far_follow": set(),
        "wide_side_by_side": set(), "wide_pass": set(), "crossing": set(),
        "trigger_ignored": set(), "spontaneous_change": set(), "short_stay": {"enter", "exit"},
    }
    for p in plaza.planted:
        if not p["near_miss"]:
            continue
        members = set(p["actors"])
        got = {e["type"] for e in plaza.clean_truth["events"]
               if set(e["actors"].values()) & members}
        assert got <= allowed[p["kind"]], (p, got)


def test_planted_scenarios_produce_their_event(plaza: Any) -> None:
    expected = {"pass_through": "enter", "dwell": "dwell", "stop": "stop", "follow": "follow",
                "accompany": "accompany", "overtake": "overtake", "meet": "meet",
                "handover": "handover", "choose_route": "choose_route", "startle": "startle"}
    for p in plaza.planted:
        if p["near_miss"]:
            continue
        members = set(p["actors"])
        got = {e["type"] for e in plaza.clean_truth["events"]
               if set(e["actors"].values()) <= members}
        assert expected[p["kind"]] in got, (p, got)
