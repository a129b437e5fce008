"""Two-sided CUSUM change points per track and segment, on speed and heading.

Plain typed Python (numpy) so it is unit-tested outside Postgres; sql/41_features_plpython.sql
inlines it into `features.cusum(...)`, which is called once per stage range with whole arrays.

Per group (one track segment) and signal: the reference mean is the mean of the first
`warmup` valid samples; S+ and S- accumulate (x - mu - k) and (mu - x - k), floored at zero
(computed in closed form, Lindley: S_n = C_n - min(0, min_j<=n C_j)). An alarm is the first
sample where S+ or S- exceeds h; the change point is where that excursion began (the last
zero of the statistic), its magnitude is |mean(x[change..alarm]) - mu|. Scanning restarts at
the change point with a new reference mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class CusumParams:
    """Allowed drift k and alarm threshold h (signal units) and the warm-up length."""

    k: float
    h: float
    warmup: int


@dataclass(frozen=True)
class ChangePoint:
    """One detection: `index` into the input arrays (0-based)."""

    index: int
    direction: int
    magnitude: float
    score: float


def _statistic(z: FloatArray) -> FloatArray:
    """One-sided CUSUM of increments z: S_n = max(0, S_n-1 + z_n), S_-1 = 0."""
    c = np.cumsum(z)
    return c - np.minimum.accumulate(np.minimum(c, 0.0))


def _excursion_start(stat: FloatArray, alarm: int) -> int:
    """First index of the excursion that raised the alarm: just after its last zero."""
    zeros = np.flatnonzero(stat[: alarm + 1] == 0.0)
    return int(zeros[-1]) + 1 if zeros.size else 0


def cusum(x: FloatArray, params: CusumParams) -> list[ChangePoint]:
    """Change points of one series (no NaN inside), indices relative to x."""
    out: list[ChangePoint] = []
    n = len(x)
    start = 0
    while n - start > params.warmup:
        mu = float(np.mean(x[start : start + params.warmup]))
        seg = x[start:]
        up = _statistic(seg - mu - params.k)
        down = _statistic(mu - seg - params.k)
        hit_up = np.flatnonzero(up > params.h)
        hit_down = np.flatnonzero(down > params.h)
        first_up = int(hit_up[0]) if hit_up.size else len(seg)
        first_down = int(hit_down[0]) if hit_down.size else len(seg)
        alarm = min(first_up, first_down)
        if alarm >= len(seg):
            break
        stat = up if first_up <= first_down else down
        begin = _excursion_start(stat, alarm)
        shift = float(np.mean(seg[begin : alarm + 1])) - mu
        # An alarm whose excursion began at the restart itself re-estimates the level of the
        # change already reported there: keep one change point per sample.
        if not out or out[-1].index != start + begin:
            out.append(ChangePoint(index=start + begin, direction=1 if shift >= 0 else -1,
                                   magnitude=abs(shift), score=float(stat[alarm]) / params.h))
        start = start + max(begin, 1)
    return out


def unwrap_degrees(heading: FloatArray) -> FloatArray:
    """Continuous heading: the first value plus the cumulative wrapped differences."""
    if heading.size == 0:
        return heading
    d = np.diff(heading)
    d = d - 360.0 * np.floor((d + 180.0) / 360.0)
    return np.concatenate(([heading[0]], heading[0] + np.cumsum(d)))


def group_bounds(tracks: list[str], segments: list[int]) -> list[tuple[int, int]]:
    """[start, end) of each run of equal (track, segment) in input order (vectorised: the
    stage passes ~10^5 rows per call)."""
    n = len(tracks)
    if n == 0:
        return []
    names = np.asarray(tracks, dtype=object)
    segs = np.asarray(segments, dtype=np.int64)
    change = (names[1:] != names[:-1]) | (segs[1:] != segs[:-1])
    edges = np.concatenate(([0], np.flatnonzero(change) + 1, [n]))
    bounds = edges.tolist()
    return [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]


def detect(tracks: list[str], segments: list[int], speed: list[float | None],
           heading: list[float | None], speed_params: CusumParams, heading_params: CusumParams,
           min_speed: float) -> list[tuple[int, str, int, float, float]]:
    """All change points as (index 1-based, signal, direction, magnitude, score); the input is
    ordered by track, segment and frame."""
    # numpy turns None (SQL NULL) into NaN when the dtype is float.
    spd = np.array(speed, dtype=np.float64)
    hdg = np.array(heading, dtype=np.float64)
    rows: list[tuple[int, str, int, float, float]] = []
    moving = np.nan_to_num(spd) >= min_speed
    for lo, hi in group_bounds(tracks, segments):
        for signal, values, valid, params in (
            ("speed", spd[lo:hi], ~np.isnan(spd[lo:hi]), speed_params),
            ("heading", hdg[lo:hi], ~np.isnan(hdg[lo:hi]) & moving[lo:hi], heading_params),
        ):
            where = np.flatnonzero(valid)
            if where.size <= params.warmup:
                continue
            series = values[where]
            if signal == "heading":
                series = unwrap_degrees(series)
            for cp in cusum(series, params):
                rows.append((lo + int(where[cp.index]) + 1, signal, cp.direction, cp.magnitude,
                             cp.score))
    return rows
