"""The presets modelled on recorded data and the calibration-scale noise knob."""

from __future__ import annotations

from typing import Any

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


# --- groups-real and meva-real (measured on the labelled scenes) --------------------------

QUIET = {"jitter": 0.0, "drop_rate": 0.0, "id_switch_rate": 0.0, "false_tracks": 0,
         "fps_jitter": 0.0}


@pytest.fixture(scope="module")
def groups_real() -> Any:
    return simulate(preset_config("groups-real", seed=3, duration=150))


def _ends(clean: pl.DataFrame) -> pl.DataFrame:
    return clean.sort("frame").group_by("track_id").agg(
        pl.col("x").first().alias("x0"), pl.col("y").first().alias("y0"),
        pl.col("frame").first().alias("f0"), pl.col("x").last().alias("x1"),
        pl.col("y").last().alias("y1"), pl.col("frame").last().alias("f1"))


def test_groups_real_is_a_crowded_view_crossed_both_ways(groups_real: Any) -> None:
    r = groups_real
    assert r.config.fps == 2.5 and r.config.layout == "mingled"
    assert 10 <= float(r.clean.group_by("frame").len()["len"].mean()) <= 30
    (x0, y0), (x1, y1) = r.config.extent
    last = round(r.config.duration * r.config.fps)

    def edge(x: float, y: float) -> float:
        return float(min(x - x0, x1 - x, y - y0, y1 - y))

    rightward = 0
    ends = list(_ends(r.clean).iter_rows(named=True))
    for row in ends:  # tracks begin and end at the edge of the view (or of the scene's time)
        assert row["f0"] == 0 or edge(row["x0"], row["y0"]) < 1.0, row
        assert row["f1"] == last or edge(row["x1"], row["y1"]) < 1.0, row
        rightward += row["x1"] > row["x0"]
    assert 0.3 < rightward / len(ends) < 0.7


def _close_frames(clean: pl.DataFrame, radius: float) -> dict[tuple[str, str], list[float]]:
    """Per pair, the distances at the frames where they are within `radius`."""
    out: dict[tuple[str, str], list[float]] = {}
    for (_,), g in clean.group_by(["frame"]):
        ids, xy = g["track_id"].to_list(), g.select("x", "y").to_numpy()
        d = np.linalg.norm(xy[:, None] - xy[None, :], axis=2)
        for i, j in zip(*np.nonzero(np.triu(d < radius, 1)), strict=True):
            out.setdefault(tuple(sorted((ids[i], ids[j]))), []).append(float(d[i, j]))
    return out


def test_strangers_keep_their_distance_and_groups_stay_together(groups_real: Any) -> None:
    group_of = {t: g for g, members in enumerate(groups_real.groups) for t in members}
    fps = groups_real.config.fps
    for (p, q), dists in _close_frames(groups_real.clean, 1.8).items():
        if p in group_of and group_of[p] == group_of.get(q):
            assert min(dists) > 0.25, (p, q)
            continue
        assert min(dists) >= 0.5, (p, q)
        assert len(dists) < 4.0 * fps, (p, q)


def test_walking_groups_walk_irregularly(groups_real: Any) -> None:
    r = groups_real
    walking = [p["actors"] for p in r.planted if p["kind"] == "walking_group"]
    sizes = {len(a) for a in walking}
    assert 2 in sizes and max(sizes) >= 3 and max(sizes) <= 4
    clean = r.clean.sort("frame")
    speeds = []
    for actors in walking:
        for tid in actors:
            g = clean.filter(pl.col("track_id") == tid)
            if g.height >= 10:
                v = np.linalg.norm(np.diff(g.select("x", "y").to_numpy(), axis=0), axis=1) * 2.5
                speeds.append(v)
    allv = np.concatenate(speeds)
    assert 0.3 < allv.min() and allv.max() < 2.1
    assert np.median([s.std() for s in speeds]) > 0.02  # speed varies along the way
    medians = [float(np.median(s)) for s in speeds]
    assert max(medians) - min(medians) > 0.4  # groups walk at 0.8-1.5 m/s


def test_groups_real_labels_every_group_pair_and_no_stranger(groups_real: Any) -> None:
    fps = groups_real.config.fps
    spans = {row["track_id"]: (row["f0"], row["f1"])
             for row in _ends(groups_real.clean).iter_rows(named=True)}
    want = set()
    for p in groups_real.planted:
        for i, a in enumerate(p["actors"]):
            for b in p["actors"][i + 1:]:
                lo, hi = max(spans[a][0], spans[b][0]), min(spans[a][1], spans[b][1])
                if (hi - lo) / fps >= 2.0:
                    want.add(frozenset((a, b)))
    assert _pairs(groups_real.clean_truth, "accompany") == want


def test_mingled_layout_holds_only_groups() -> None:
    with pytest.raises(SimulationConfigError, match="mingled"):
        preset_config("groups-real", scenarios={"follow": 2})


def test_preset_noise_overrides_are_merged_into_the_preset_noise() -> None:
    cfg = preset_config("meva-real", noise={"jitter": 0.0})
    assert cfg.noise.jitter == 0.0 and cfg.noise.scale == 0.75 and cfg.noise.jitter_hold


def test_meva_real_tracks_people_only_during_their_events_and_not_standing_cars() -> None:
    r = simulate(preset_config("meva-real", seed=4, duration=200,
                               noise={**QUIET, "scale": 1.0, "break_rate": 0.0,
                                      "untracked_stops_keep_id": False}))
    fps = r.config.fps
    assert r.stats["untracked_stops"] > 0 and r.stats["clipped_points"] > 0
    spans = {row["track_id"]: (row["f0"] / fps, row["f1"] / fps)
             for row in _ends(r.tracks).iter_rows(named=True)}
    cls = dict(r.tracks.group_by("track_id").agg(pl.col("class").first()).iter_rows())
    hull: dict[str, list[float]] = {}
    for e in r.truth["events"]:
        for tid in e["actors"].values():
            h = hull.setdefault(tid, [e["start"], e["end"]])
            h[0], h[1] = min(h[0], e["start"]), max(h[1], e["end"])
    people = [t for t in hull if cls[t] == "pedestrian"]
    assert people
    for tid in people:
        assert spans[tid][0] == pytest.approx(hull[tid][0], abs=1.01 / fps), tid
        assert spans[tid][1] == pytest.approx(hull[tid][1], abs=1.01 / fps), tid
    stops = [e for e in r.truth["events"] if e["type"] == "stop"
             and cls[e["actors"]["actor"]] == "vehicle"]
    assert stops
    for e in stops:  # no data while the car stands; the track goes on under a new id after
        tid = e["actors"]["actor"]
        assert spans[tid][1] < e["start"] + 1e-6, e
        resumed = [t for t, (s, _) in spans.items()
                   if cls[t] == "vehicle" and 0 < s - e["end"] <= 1.01 / fps]
        assert resumed, e


def test_meva_real_links_a_vehicles_tracks_across_its_untracked_stop() -> None:
    """As the clips' label import does: one id before and after, the standing time a gap."""
    r = simulate(preset_config("meva-real", seed=4, duration=200,
                               noise={**QUIET, "scale": 1.0, "break_rate": 0.0}))
    assert r.config.noise.untracked_stops_keep_id and r.stats["untracked_stops"] > 0
    fps = r.config.fps
    stops = [e for e in r.truth["events"] if e["type"] == "stop"]
    vehicles = set(r.tracks.filter(pl.col("class") == "vehicle")["track_id"].to_list())
    linked = 0
    for e in stops:
        tid = e["actors"]["actor"]
        if tid not in vehicles:
            continue
        t = r.tracks.filter(pl.col("track_id") == tid)["t"].to_numpy()
        inside = (t > e["start"] + 1.01 / fps) & (t < e["end"] - 1.01 / fps)
        assert not inside.any(), e  # nothing while it stands
        if (t < e["start"]).any() and (t > e["end"]).any():
            linked += 1  # seen before and after under the one id
    assert linked == r.stats["untracked_stops"] > 0


def test_breaks_fall_inside_events_and_truth_keeps_the_first_id() -> None:
    r = simulate(preset_config("meva-real", seed=4, duration=200,
                               noise={**QUIET, "break_rate": 1.0}))
    assert r.stats["breaks"] > 3
    fps = r.config.fps
    spans = {row["track_id"]: (row["f0"] / fps, row["f1"] / fps)
             for row in _ends(r.tracks).iter_rows(named=True)}
    inside = 0
    for e in r.truth["events"]:
        for tid in e["actors"].values():
            assert spans[tid][0] <= e["start"] + 1.01 / fps, (e, spans[tid])
            inside += spans[tid][1] < e["end"] - 0.5
    assert inside >= r.stats["breaks"]


def test_conversations_label_each_pair_over_their_common_time_in_it() -> None:
    r = simulate(preset_config("meva-real", seed=6, duration=300))
    talks = [p for p in r.planted if p["kind"] == "conversation"]
    assert any(len(p["actors"]) >= 3 for p in talks)
    meets = {frozenset(e["actors"].values()): e for e in r.clean_truth["events"]
             if e["type"] == "meet"}
    clean = r.clean
    for p in talks:
        for i, a in enumerate(p["actors"]):
            for b in p["actors"][i + 1:]:
                e = meets.get(frozenset((a, b)))
                if e is None:
                    continue  # together for less than 1 s
                for tid in (a, b):  # inside both tracks, which walk up before and away after
                    t = clean.filter(pl.col("track_id") == tid)["t"].to_numpy()
                    assert t.min() < e["start"] and e["end"] < t.max()


def test_correlated_jitter_has_its_spread_and_correlation_time() -> None:
    from workers.simulate.observe import correlated_noise

    rng = np.random.default_rng(0)
    n, fps, tau = 60_000, 30.0, 1.5
    track, frame = np.repeat([1, 2], n // 2), np.tile(np.arange(n // 2), 2)
    for hold in (False, True):
        e = correlated_noise(track, frame, 0.12, tau, hold, fps, rng)[: n // 2, 0]
        assert e.std() == pytest.approx(0.12, rel=0.15)
        lag = 30
        rho = np.corrcoef(e[:-lag], e[lag:])[0, 1]
        assert rho == pytest.approx(np.exp(-lag / fps / tau), abs=0.12)
        if hold:  # a box that sticks: most frames do not move at all
            assert np.mean(np.diff(e) == 0) == pytest.approx(np.exp(-1 / fps / tau), abs=0.01)
