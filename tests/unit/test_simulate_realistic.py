"""The presets modelled on recorded data and the calibration-scale noise knob."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from workers.simulate import preset_config, simulate
from workers.simulate.config import SimulationConfigError


def test_groups_preset_samples_at_2p5_hz_with_groups_in_a_crowd() -> None:
    result = simulate(preset_config("groups-2p5hz", seed=2, duration=120))
    steps = (result.tracks.sort("track_id", "t")
             .with_columns(pl.col("t").diff().over("track_id").alias("dt"))["dt"].drop_nulls())
    assert float(steps.median()) == pytest.approx(0.4, abs=1e-6)  # type: ignore[arg-type]
    types = {e["type"] for e in result.truth["events"]}
    assert {"accompany", "meet"} <= types
    assert result.tracks["track_id"].n_unique() > 50  # a crowd around the groups


def test_meva_preset_scales_observed_positions_not_truth() -> None:
    cfg = preset_config("meva-30fps", seed=3, duration=60)
    assert cfg.fps == 30.0 and cfg.noise.scale == 0.75
    quiet = preset_config("meva-30fps", seed=3, duration=60,
                          noise={**cfg.noise.model_dump(), "jitter": 0.0, "drop_rate": 0.0,
                                 "id_switch_rate": 0.0, "false_tracks": 0})
    result = simulate(quiet)
    joined = result.tracks.join(result.clean, on=["track_id", "frame"], suffix="_true")
    ratio = joined["x"].to_numpy() / joined["x_true"].to_numpy()
    assert np.allclose(ratio[np.abs(joined["x_true"].to_numpy()) > 1], 0.75)
    assert result.truth == result.clean_truth  # truth is about the real scene


def test_scale_with_scene_geometry_is_refused() -> None:
    with pytest.raises(SimulationConfigError, match=r"noise\.scale"):
        preset_config("plaza", seed=0, noise={"scale": 0.8})


def _pairs(truth: dict, etype: str) -> set[frozenset[str]]:
    return {frozenset(e["actors"].values()) for e in truth["events"] if e["type"] == etype}


def test_group_labels_name_every_group_pair_over_its_copresence_and_no_stranger() -> None:
    result = simulate(preset_config("groups-2p5hz", seed=4, duration=150))
    groups = [p for p in result.planted
              if p["kind"] in ("accompany", "straggling_group", "standing_group")]
    strangers = [p for p in result.planted if p["kind"] == "strangers_abreast"]
    assert groups and strangers
    labelled = _pairs(result.clean_truth, "accompany")
    assert labelled == {frozenset(p["actors"]) for p in groups}
    assert not labelled & {frozenset(p["actors"]) for p in strangers}
    clean = result.clean
    for e in result.clean_truth["events"]:
        if e["type"] == "accompany":
            seen = [clean.filter(pl.col("track_id") == a)["t"] for a in e["actors"].values()]
            assert e["start"] == pytest.approx(max(float(s.min()) for s in seen))  # type: ignore[arg-type]
            assert e["end"] == pytest.approx(min(float(s.max()) for s in seen))  # type: ignore[arg-type]


def test_activity_labels_name_every_pair_of_a_talking_group() -> None:
    result = simulate(preset_config("meva-30fps", seed=5, duration=150))
    talks = [p for p in result.planted if p["kind"] in ("talk_group", "walk_talk", "meet")]
    assert any(len(p["actors"]) > 2 for p in talks)
    want = {frozenset((a, b)) for p in talks for i, a in enumerate(p["actors"])
            for b in p["actors"][i + 1:]}
    assert _pairs(result.clean_truth, "meet") == want
