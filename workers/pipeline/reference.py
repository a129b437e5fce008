"""Kinematics computed in memory with Polars and NumPy: the independent reference the
database stage is tested against, and the in-memory baseline of `secinf bench pipeline`.

Same definitions as sql/401_features_kinematics.sql: per track, a gap longer than `gap_s`
starts a new segment; inside the segment, the least-squares line through the raw points with
|t - t_row| <= smoothing_s / 2 gives the smoothed position (its value at the row) and the
velocity (its slope); a window holding only the row itself falls back to the backward
difference of positions; acceleration, jerk and turn rate are backward differences.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from numpy.typing import NDArray

_TRACK = ["track_id", "segment"]
F64 = NDArray[np.float64]


def lag(column: str) -> pl.Expr:
    """The previous row's value inside the same track segment."""
    return pl.col(column).shift(1).over(_TRACK)


def line_fit(group: NDArray[np.int64], t: F64, x: F64, y: F64,
             half_s: float) -> tuple[F64, F64, F64, F64]:
    """Fitted x, y and slopes vx, vy (NaN where the window holds one point) per row.

    Rows are sorted by (group, t). Sums run over neighbours relative to the row itself
    (d = value - the row's value), so no large prefix sums cancel."""
    n_rows = len(t)
    t_us = np.round(t * 1e6).astype(np.int64)
    key = group * (int(t_us.max() - t_us.min()) + 2 * int(half_s * 1e6) + 10) + t_us
    h_us = round(half_s * 1e6)
    lo = np.searchsorted(key, key - h_us, "left")
    hi = np.searchsorted(key, key + h_us, "right")
    reach = int(max((np.arange(n_rows) - lo).max(initial=0), (hi - 1 - np.arange(n_rows)).max(
        initial=0)))
    idx = np.arange(n_rows)
    cnt = np.zeros(n_rows)
    se, sx, sy, see, sex, sey = (np.zeros(n_rows) for _ in range(6))
    for k in range(-reach, reach + 1):
        j = idx + k
        ok = (j >= lo) & (j < hi)
        jj = np.where(ok, j, idx)
        de = np.where(ok, t[jj] - t, 0.0)
        dx = np.where(ok, x[jj] - x, 0.0)
        dy = np.where(ok, y[jj] - y, 0.0)
        cnt += ok
        se += de
        sx += dx
        sy += dy
        see += de * de
        sex += de * dx
        sey += de * dy
    var = see - se * se / cnt
    with np.errstate(divide="ignore", invalid="ignore"):
        bx = np.where((cnt > 1) & (var > 0), (sex - se * sx / cnt) / var, np.nan)
        by = np.where((cnt > 1) & (var > 0), (sey - se * sy / cnt) / var, np.nan)
    mean_e = se / cnt
    fx = x + sx / cnt + np.nan_to_num(bx) * (0.0 - mean_e)
    fy = y + sy / cnt + np.nan_to_num(by) * (0.0 - mean_e)
    return fx, fy, bx, by


def kinematics(points: pl.DataFrame, smoothing_s: float = 1.0, gap_s: float = 1.0,
               min_speed: float = 1e-6) -> pl.DataFrame:
    """points: track_id, frame, t (seconds), x, y → one row per point with the kinematic
    columns of features.kinematics (t stands for ts)."""
    pts = points.select("track_id", "frame", "t", "x", "y").sort("track_id", "frame")
    step = pl.col("t").diff().over("track_id")
    seg = pts.with_columns(
        (step > gap_s).fill_null(False).cast(pl.Int64).cum_sum().over("track_id").alias("segment"))
    seg = seg.with_columns(pl.struct(_TRACK).rank("dense").cast(pl.Int64).alias("_g"))
    seg = seg.sort("_g", "t")
    fx, fy, bx, by = line_fit(seg["_g"].to_numpy(), seg["t"].to_numpy().astype(float),
                              seg["x"].to_numpy().astype(float),
                              seg["y"].to_numpy().astype(float), max(0.0, smoothing_s) / 2)
    seg = (seg.with_columns(pl.Series("x", fx), pl.Series("y", fy),
                            pl.Series("bx", bx).fill_nan(None), pl.Series("by", by).fill_nan(None))
           .drop("_g").sort("track_id", "frame"))
    dt = pl.col("t") - lag("t")
    out = seg.with_columns(pl.when(dt != 0).then(dt).alias("dt"))
    out = out.with_columns(
        pl.coalesce(pl.col("bx"), (pl.col("x") - lag("x")) / pl.col("dt")).alias("vx"),
        pl.coalesce(pl.col("by"), (pl.col("y") - lag("y")) / pl.col("dt")).alias("vy"))
    out = out.with_columns((pl.col("vx") ** 2 + pl.col("vy") ** 2).sqrt().alias("speed"))
    heading = pl.arctan2(pl.col("vy"), pl.col("vx")).degrees()
    out = out.with_columns(
        pl.when(pl.col("speed") > min_speed)
        .then(pl.when(heading == -180.0).then(180.0).otherwise(heading)).alias("heading"))
    dh = pl.col("heading") - lag("heading")
    out = out.with_columns(
        ((pl.col("speed") - lag("speed")) / pl.col("dt")).alias("accel"),
        ((dh - 360.0 * ((dh + 180.0) / 360.0).floor()) / pl.col("dt")).alias("turn_rate"))
    out = out.with_columns(((pl.col("accel") - lag("accel")) / pl.col("dt")).alias("jerk"))
    out = out.with_columns(
        pl.when(pl.col("speed") > min_speed)
        .then(pl.col("turn_rate").radians() / pl.col("speed")).alias("curvature"))
    return out.select("track_id", "frame", "t", "segment", "dt", "x", "y", "vx", "vy", "speed",
                      "accel", "jerk", "heading", "turn_rate", "curvature")
