"""Noise settings are respected and truth names the ids in the file."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest

from workers.simulate import preset_config, simulate

ZERO = {"jitter": 0.0, "drop_rate": 0.0, "id_switch_rate": 0.0, "false_tracks": 0,
        "fps_jitter": 0.0}


def run(**noise: Any) -> Any:
    return simulate(preset_config("plaza", 4, noise={**ZERO, **noise}))


def test_drop_rate_is_approximately_respected() -> None:
    r = run(drop_rate=0.1)
    assert r.tracks.height / r.clean.height == pytest.approx(0.9, abs=0.01)


def test_jitter_std_is_approximately_respected() -> None:
    r = run(jitter=0.2)
    joined = r.tracks.join(r.clean, on=["track_id", "frame"], suffix="_c")
    assert joined.height == r.clean.height
    dx = (joined["x"] - joined["x_c"]).to_numpy()
    assert np.std(dx) == pytest.approx(0.2, rel=0.05)


def test_fps_jitter_keeps_one_time_per_frame_and_order() -> None:
    r = run(fps_jitter=0.2)
    per_frame = r.tracks.group_by("frame").agg(pl.col("t").first()).sort("frame")
    t = per_frame["t"].to_numpy()
    nominal = per_frame["frame"].to_numpy() / r.config.fps
    assert np.all(np.diff(t) > 0)
    assert 0 < np.abs(t - nominal).max() <= 0.4 / r.config.fps + 1e-12


def test_id_switches_change_ids_and_truth_follows_them() -> None:
    r = run(id_switch_rate=1.0, drop_rate=0.02)
    assert r.stats["id_switches"] > 10
    file_ids = set(r.tracks["track_id"].unique())
    clean_ids = set(r.clean["track_id"].unique())
    assert file_ids - clean_ids, "switches create new ids"
    assert len(r.truth["events"]) == len(r.clean_truth["events"])
    spans = r.tracks.group_by("track_id").agg(pl.col("frame").min().alias("f0"),
                                               pl.col("frame").max().alias("f1"))
    span = {row["track_id"]: (row["f0"], row["f1"]) for row in spans.iter_rows(named=True)}
    fps = r.config.fps
    changed = 0
    for e, c in zip(r.truth["events"], r.clean_truth["events"], strict=True):
        changed += e["actors"] != c["actors"]
        for tid in e["actors"].values():
            f0, f1 = span[tid]
            assert f0 / fps <= e["start"] + 0.6 and e["end"] - 0.6 <= f1 / fps, (e, span[tid])
    assert changed > 0


def test_false_tracks_are_short_and_carry_no_events() -> None:
    r = run(false_tracks=5)
    clean_ids = set(r.clean["track_id"].unique())
    extra = r.tracks.filter(~pl.col("track_id").is_in(list(clean_ids)))
    assert extra["track_id"].n_unique() == 5
    lengths = extra.group_by("track_id").agg(pl.len().alias("n"))["n"]
    assert lengths.max() <= 1.5 * r.config.fps + 1
    assert extra["confidence"].max() < 0.5
    actors = {a for e in r.truth["events"] for a in e["actors"].values()}
    assert not actors & set(extra["track_id"].unique())


def test_zero_noise_reproduces_clean_tracks() -> None:
    r = run()
    a = r.tracks.select("track_id", "frame", "x", "y").sort(["frame", "track_id"])
    b = r.clean.select("track_id", "frame", "x", "y").sort(["frame", "track_id"])
    assert a.equals(b)
