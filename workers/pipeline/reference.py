"""Kinematics computed in memory with Polars: the independent reference the database stage
is tested against, and the in-memory baseline of `secinf bench pipeline`.

Same definitions as sql/40_features_kinematics.sql: per track, a gap longer than `gap_s`
starts a new segment; positions are smoothed by a centred moving average over ±h frames
inside the segment; velocity, acceleration, jerk and turn rate are backward differences.
"""

from __future__ import annotations

import polars as pl

_TRACK = ["track_id", "segment"]


def lag(column: str) -> pl.Expr:
    """The previous row's value inside the same track segment."""
    return pl.col(column).shift(1).over(_TRACK)


def kinematics(points: pl.DataFrame, window: int = 3, gap_s: float = 1.0,
               min_speed: float = 1e-6) -> pl.DataFrame:
    """points: track_id, frame, t (seconds), x, y → one row per point with the kinematic
    columns of features.kinematics (t stands for ts)."""
    half = max(1, window) // 2
    pts = points.select("track_id", "frame", "t", "x", "y").sort("track_id", "frame")
    step = pl.col("t").diff().over("track_id")
    seg = pts.with_columns(
        (step > gap_s).fill_null(False).cast(pl.Int64).cum_sum().over("track_id").alias("segment"))
    if half > 0:
        shifted = [
            seg.select(*_TRACK, (pl.col("frame") - off).alias("frame"),
                       pl.col("x").alias("sx"), pl.col("y").alias("sy"))
            for off in range(-half, half + 1)
        ]
        sums = (pl.concat(shifted).group_by([*_TRACK, "frame"])
                .agg(pl.col("sx").mean(), pl.col("sy").mean()))
        seg = (seg.join(sums, on=[*_TRACK, "frame"], how="left")
               .drop("x", "y").rename({"sx": "x", "sy": "y"}).sort("track_id", "frame"))
    dt = pl.col("t") - lag("t")
    out = seg.with_columns(pl.when(dt != 0).then(dt).alias("dt"))
    out = out.with_columns(((pl.col("x") - lag("x")) / pl.col("dt")).alias("vx"),
                           ((pl.col("y") - lag("y")) / pl.col("dt")).alias("vy"))
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
