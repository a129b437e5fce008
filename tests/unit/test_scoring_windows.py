"""Window builder: shapes, resampling, presence, zone flags and normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from workers.scoring.windows import (
    FEATURE_NAMES,
    N_FEATURES,
    ActorSeries,
    CandidateInput,
    NormStats,
    PairSeries,
    build_window,
    build_windows,
    type_index,
    window_span,
)

COL = {n: i for i, n in enumerate(FEATURE_NAMES)}


def _actor(t0: float, t1: float, vx: float = 1.0, y: float = 0.0, fps: float = 10.0,
           zones: tuple[tuple[str, float, float], ...] = ()) -> ActorSeries:
    t = np.arange(t0, t1 + 1e-9, 1 / fps)
    return ActorSeries(t=t, x=vx * t, y=np.full(t.size, y), speed=np.full(t.size, abs(vx)),
                       accel=np.zeros(t.size), turn_rate=np.zeros(t.size),
                       heading=np.zeros(t.size), zones=zones)


def _pair(t0: float, t1: float, distance: float) -> PairSeries:
    t = np.arange(t0, t1 + 1e-9, 0.1)
    z = np.zeros(t.size)
    return PairSeries(t=t, distance=np.full(t.size, distance), approach_speed=z,
                      rel_speed=z, heading_diff=z, lon_offset=np.full(t.size, distance),
                      lat_offset=z)


def test_window_shape_span_and_flags() -> None:
    cand = CandidateInput(1, "follow", 10.0, 20.0, 0.7,
                          [_actor(0, 30), _actor(0, 30, y=2.0)], _pair(0, 30, 2.0))
    w = build_window(cand, steps=32)
    assert w.shape == (32, N_FEATURES)
    lo, hi = window_span(10.0, 20.0)
    assert (lo, hi) == (5.5, 24.5)
    t = np.linspace(lo, hi, 32)
    np.testing.assert_array_equal(w[:, COL["in_span"]], ((t >= 10) & (t <= 20)).astype(float))
    assert np.all(w[:, COL["a0_present"]] == 1) and np.all(w[:, COL["pair_present"]] == 1)
    np.testing.assert_allclose(w[:, COL["a0_speed"]], 1.0)
    np.testing.assert_allclose(w[:, COL["distance"]], 2.0)
    # Positions are in actor 0's frame at the span start: along = t - 10, across = 0 / 2.
    np.testing.assert_allclose(w[:, COL["a0_along"]], t - 10.0, atol=1e-9)
    np.testing.assert_allclose(w[:, COL["a1_across"]], 2.0, atol=1e-9)
    np.testing.assert_allclose(w[:, COL["rule_score"]], 0.7)


def test_missing_actor_and_gaps_are_nan_with_presence_zero() -> None:
    cand = CandidateInput(2, "stop", 10.0, 12.0, 0.5, [_actor(10.5, 30)])
    w = build_window(cand, steps=16)
    t = np.linspace(*window_span(10.0, 12.0), 16)
    absent = t < 10.5 - 0.6
    assert np.all(w[absent, COL["a0_present"]] == 0)
    assert np.all(np.isnan(w[absent, COL["a0_speed"]]))
    assert np.all(w[~absent, COL["a0_present"]] == 1)
    assert np.all(w[:, COL["a1_present"]] == 0) and np.all(np.isnan(w[:, COL["a1_speed"]]))
    assert np.all(w[:, COL["pair_present"]] == 0)


def test_zone_flag_only_for_the_candidates_zone() -> None:
    zones = (("gate", 11.0, 13.0), ("kiosk", 0.0, 100.0))
    cand = CandidateInput(3, "enter", 11.0, 13.0, 0.9, [_actor(0, 30, zones=zones)],
                          zone="gate")
    w = build_window(cand, steps=64)
    t = np.linspace(*window_span(11.0, 13.0), 64)
    np.testing.assert_array_equal(w[:, COL["a0_in_zone"]], ((t >= 11) & (t <= 13)).astype(float))


def test_trigger_flag_marks_the_trigger_time() -> None:
    cand = CandidateInput(4, "startle", 10.0, 11.0, 0.5, [_actor(0, 30)], trigger_t=9.5)
    w = build_window(cand, steps=64)
    t = np.linspace(*window_span(10.0, 11.0), 64)
    np.testing.assert_array_equal(w[:, COL["trigger"]], (np.abs(t - 9.5) <= 0.5).astype(float))


def test_normalisation_fits_present_values_and_zeroes_missing() -> None:
    cands = [CandidateInput(i, "follow", 10.0, 20.0, 0.1 * i,
                            [_actor(0, 30, vx=1.0 + i), _actor(15, 30)], None)
             for i in range(5)]
    raw = build_windows(cands, steps=32)
    assert raw.shape == (5, 32, N_FEATURES)
    norm = NormStats.fit(raw)
    speed = raw[:, :, COL["a0_speed"]]
    assert norm.mean[COL["a0_speed"]] == pytest.approx(float(np.nanmean(speed)))
    assert norm.std[COL["a0_speed"]] == pytest.approx(float(np.nanstd(speed)))
    assert norm.mean[COL["a0_present"]] == 0.0 and norm.std[COL["a0_present"]] == 1.0
    out = norm.apply(raw)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_allclose(out[:, :, COL["a0_speed"]].mean(), 0.0, atol=1e-5)
    missing = np.isnan(raw[:, :, COL["a1_speed"]])
    assert missing.any() and np.all(out[:, :, COL["a1_speed"]][missing] == 0.0)
    assert NormStats.from_json(norm.to_json()) == norm


def test_normalisation_refuses_other_features() -> None:
    norm = NormStats((0.0,) * N_FEATURES, (1.0,) * N_FEATURES, ("x",) * N_FEATURES)
    with pytest.raises(ValueError, match="fitted on other features"):
        norm.apply(np.zeros((1, 4, N_FEATURES)))
    with pytest.raises(ValueError, match="shape"):
        NormStats.fit(np.zeros((4, N_FEATURES)))


def test_type_index_maps_unknown_types_last() -> None:
    assert type_index("enter") == 0
    assert type_index("startle") == 10
    assert type_index("juggle") == 11
