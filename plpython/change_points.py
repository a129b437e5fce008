"""Two-sided CUSUM change points per track and segment, on speed and heading.

Plain typed Python (numpy) so it is unit-tested outside Postgres; sql/410_features_plpython.sql
inlines it into `features.cusum(...)`, which is called once per stage range with whole arrays.

Per group (one track segment) and signal: the reference mean is the mean of the first
`warmup` valid samples; S+ and S- accumulate (x - mu - k) and (mu - x - k), floored at zero
(computed in closed form, Lindley: S_n = C_n - min(0, min_j<=n C_j)). An alarm is the first
sample where S+ or S- exceeds h; the change point is where that excursion began (the last
zero of the statistic), its magnitude is |mean(x[change..alarm]) - mu|. Scanning restarts at
the change point with a new reference mean.

`detect_groups` (what the stage calls) scans all segments of a signal together
(`cusum_many`): each round takes the next window of every series still scanning as one row of
a matrix, so the numpy calls are per round, not per restart of every segment; row-wise sums,
cumulative sums and minima are the same operations in the same order as for one series, so
the results equal `cusum` exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

    FloatArray = npt.NDArray[np.float64]
    BoolArray = npt.NDArray[np.bool_]
else:
    # At run time (PL/Python executes this body on every call, with no postponed
    # annotations) plain ndarray: importing numpy.typing costs ~10 ms per backend.
    FloatArray = BoolArray = np.ndarray


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


def _first(mask: BoolArray) -> int:
    """Index of the first True in mask, len(mask) when there is none."""
    i = int(mask.argmax())
    return i if mask[i] else len(mask)


def _excursion_start(stat: FloatArray, alarm: int) -> int:
    """First index of the excursion that raised the alarm: just after its last zero."""
    zero = stat[alarm::-1] == 0.0
    i = int(zero.argmax())
    return alarm - i + 1 if zero[i] else 0


def _mean(x: FloatArray) -> float:
    """np.mean of a non-empty float64 array (the same sum and division, less overhead)."""
    return float(_add_reduce(x)) / len(x)


_add_reduce = np.add.reduce
# Samples the CUSUM scan looks at before doubling (alarms are usually a few dozen apart).
_WINDOW = 64


def cusum(x: FloatArray, params: CusumParams) -> list[ChangePoint]:
    """Change points of one series (no NaN inside), indices relative to x."""
    out: list[ChangePoint] = []
    n = len(x)
    k, h, warmup = params.k, params.h, params.warmup
    start = 0
    while n - start > warmup:
        mu = _mean(x[start : start + warmup])
        # The statistics over a prefix equal the prefix of the statistics (sequential sums):
        # look at a short window first and double it until an alarm or the end of the series.
        width = _WINDOW
        while True:
            seg = x[start : start + width]
            up = _statistic(seg - mu - k)
            down = _statistic(mu - seg - k)
            first_up = _first(up > h)
            first_down = _first(down > h)
            alarm = min(first_up, first_down)
            if alarm < len(seg) or start + width >= n:
                break
            width *= 2
        if alarm >= len(seg):
            break
        stat = up if first_up <= first_down else down
        begin = _excursion_start(stat, alarm)
        shift = _mean(seg[begin : alarm + 1]) - mu
        # An alarm whose excursion began at the restart itself re-estimates the level of the
        # change already reported there: keep one change point per sample.
        if not out or out[-1].index != start + begin:
            out.append(ChangePoint(index=start + begin, direction=1 if shift >= 0 else -1,
                                   magnitude=abs(shift), score=float(stat[alarm]) / h))
        start = start + max(begin, 1)
    return out


def cusum_many(series: list[FloatArray], params: CusumParams) -> list[list[ChangePoint]]:
    """cusum() of every series at once: each round scans the next window of all series that
    are still scanning as the rows of one matrix (row-wise sums, cumulative sums and minima
    are computed exactly as for one series, so the results are the same as cusum())."""
    k, h, warmup = params.k, params.h, params.warmup
    out: list[list[ChangePoint]] = [[] for _ in series]
    if not series:
        return out
    flat = np.concatenate(series)
    lens = np.array([len(x) for x in series], dtype=np.int64)
    offs = np.concatenate(([0], np.cumsum(lens)[:-1])).astype(np.int64)
    start = np.zeros(len(series), dtype=np.int64)
    window = max(_WINDOW, warmup)
    width = np.full(len(series), window, dtype=np.int64)
    active = lens > warmup
    last = len(flat) - 1
    while active.any():
        for w in np.unique(width[active]).tolist():
            rows = np.flatnonzero(active & (width == w))
            cols = np.arange(w, dtype=np.int64)
            pos = start[rows, None] + cols[None, :]
            valid = pos < lens[rows, None]
            mat = flat[np.minimum(offs[rows, None] + pos, last)]
            mu = _add_reduce(np.ascontiguousarray(mat[:, :warmup]), axis=1) / warmup
            up = _statistic_rows(mat - mu[:, None] - k)
            down = _statistic_rows(mu[:, None] - mat - k)
            hit_up = (up > h) & valid
            hit_down = (down > h) & valid
            any_up = hit_up.any(axis=1)
            any_down = hit_down.any(axis=1)
            first_up = np.where(any_up, hit_up.argmax(axis=1), w)
            first_down = np.where(any_down, hit_down.argmax(axis=1), w)
            alarm = np.minimum(first_up, first_down)
            found = alarm < w
            # No alarm in the window: finished at the end of the series, else look wider.
            ended = ~found & (start[rows] + w >= lens[rows])
            active[rows[ended]] = False
            wider = rows[~found & ~ended]
            width[wider] *= 2
            if not found.any():
                continue
            sel = np.flatnonzero(found)
            use_up = first_up[sel] <= first_down[sel]
            stat = np.where(use_up[:, None], up[sel], down[sel])
            al = alarm[sel]
            zero = (stat == 0.0) & (cols[None, :] <= al[:, None])
            rev = zero[:, ::-1]
            has_zero = rev.any(axis=1)
            begin = np.where(has_zero, w - rev.argmax(axis=1), 0)
            score = stat[np.arange(len(sel)), al] / h
            for r, b, a, m, sc in zip(rows[sel].tolist(), begin.tolist(), al.tolist(),
                                      mu[sel].tolist(), score.tolist(), strict=True):
                s0 = int(start[r])
                base = int(offs[r]) + s0
                shift = _mean(flat[base + b : base + a + 1]) - m
                found_r = out[r]
                if not found_r or found_r[-1].index != s0 + b:
                    found_r.append(ChangePoint(index=s0 + b, direction=1 if shift >= 0 else -1,
                                               magnitude=abs(shift), score=sc))
                s1 = s0 + max(b, 1)
                start[r] = s1
                width[r] = window
                if lens[r] - s1 <= warmup:
                    active[r] = False
    return out


def _statistic_rows(z: FloatArray) -> FloatArray:
    """_statistic() of every row of z."""
    c = np.cumsum(z, axis=1)
    return c - np.minimum.accumulate(np.minimum(c, 0.0), axis=1)


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
    starts = [lo for lo, _ in group_bounds(tracks, segments)]
    return detect_groups(starts, speed, heading, speed_params, heading_params, min_speed)


def detect_groups(starts: list[int], speed: list[float | None], heading: list[float | None],
                  speed_params: CusumParams, heading_params: CusumParams,
                  min_speed: float) -> list[tuple[int, str, int, float, float]]:
    """detect() with the groups given as their 0-based start indices (ascending, the first 0):
    the stage computes them in SQL, so no track names cross into Python."""
    # numpy turns None (SQL NULL) into NaN when the dtype is float.
    spd = np.array(speed, dtype=np.float64)
    hdg = np.array(heading, dtype=np.float64)
    rows: list[tuple[int, str, int, float, float]] = []
    spd_ok = ~np.isnan(spd)
    hdg_ok = ~np.isnan(hdg) & (np.nan_to_num(spd) >= min_speed)
    # Valid positions of each signal, split per group with one searchsorted (no mask per group).
    for signal, values, valid, params in (("speed", spd, spd_ok, speed_params),
                                          ("heading", hdg, hdg_ok, heading_params)):
        where = np.flatnonzero(valid)
        if where.size == 0:
            continue
        series_all = values[where]
        cuts = np.searchsorted(where, np.asarray([*starts, len(values)], dtype=np.int64))
        groups = [(a, b) for a, b in zip(cuts[:-1].tolist(), cuts[1:].tolist(), strict=True)
                  if b - a > params.warmup]
        chunks = [series_all[a:b] for a, b in groups]
        if signal == "heading":
            chunks = [unwrap_degrees(c) for c in chunks]
        for (a, _), found in zip(groups, cusum_many(chunks, params), strict=True):
            for cp in found:
                rows.append((int(where[a + cp.index]) + 1, signal, cp.direction, cp.magnitude,
                             cp.score))
    return rows
