"""Per-source coordinates: unit conversion, scale or homography to a metric ground plane.

Raw coordinates (as received) are kept in raw_x/raw_y; x/y become metres when the source
has a transform or metric input units, and stay pixels (units 'px') otherwise.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from workers.errors import UserError
from workers.ingest.schema import (
    MAX_ABS_COORD,
    ROW,
    UNIT_TO_METRES,
    ResolvedSource,
    SourceSpec,
    Transform,
    check_homography,
)


def load_homography(value: str) -> Transform:
    """`--homography FILE|JSON`: a 3x3 image→ground matrix (JSON list, or whitespace text
    such as the H.txt files that come with recorded datasets)."""
    text = value
    where = "--homography"
    if not value.lstrip().startswith("["):
        path = Path(value)
        try:
            text = path.read_text()
        except OSError as exc:
            raise UserError(f"--homography {value}: cannot read it ({exc.strerror}); give a "
                            "file or a JSON matrix such as [[1,0,0],[0,1,0],[0,0,1]]") from exc
        where = f"--homography {path}"
    matrix: Any
    try:
        matrix = json.loads(text)
        if isinstance(matrix, dict):
            matrix = matrix.get("homography")
    except ValueError:
        try:
            matrix = [[float(v) for v in line.split()] for line in text.splitlines()
                      if line.strip()]
        except ValueError:
            matrix = None
    return Transform(homography=check_homography(matrix, where))


def build_transform(units: str | None, scale: float | None,
                    homography: str | None) -> Transform | None:
    """The transform the command line asks for (None: none asked)."""
    if scale is not None and homography is not None:
        raise UserError("give --scale or --homography, not both")
    if scale is not None:
        if not (scale > 0 and scale < 1e6):
            raise UserError(f"--scale {scale}: metres per pixel must be a positive number")
        if units not in (None, "px"):
            raise UserError(f"--scale converts pixels; drop it or use --units px "
                            f"(got --units {units})")
        return Transform(scale=scale)
    if homography is not None:
        if units not in (None, "px"):
            raise UserError(f"--homography maps image pixels; use --units px (got --units "
                            f"{units})")
        return load_homography(homography)
    if units in UNIT_TO_METRES and units != "m":
        return Transform(scale=UNIT_TO_METRES[units], input_units=units)
    return None


def resolve_source(spec: SourceSpec, stored: dict[str, Any] | None, fmt_units: str,
                   fps_hint: float | None, default_origin: datetime) -> ResolvedSource:
    """Combine the batch's settings with the stored source; disagreement is a UserError."""
    fps = spec.fps
    transform = spec.transform
    origin = spec.time_origin
    if stored is not None:
        name = spec.name
        if fps is not None and stored["fps"] is not None and abs(stored["fps"] - fps) > 1e-9:
            raise UserError(f"source {name!r} has fps {stored['fps']:g}; this batch says "
                            f"{fps:g}. Use the source's fps or a new --source")
        if (transform is not None
                and Transform.from_json(stored["transform"]) != transform):
            raise UserError(f"source {name!r} has transform {json.dumps(stored['transform'])};"
                            " this batch asks for another. Use the same --scale/--homography "
                            "or a new --source")
        if origin is not None and stored["time_origin"] != origin:
            raise UserError(f"source {name!r} has time origin {stored['time_origin']}; this "
                            f"batch says {origin.isoformat()}. Use a new --source")
        fps = fps if fps is not None else stored["fps"]
        if transform is None:
            transform = Transform.from_json(stored["transform"])
        origin = stored["time_origin"]
        in_units = (spec.units or (transform.input_units if transform and transform.input_units
                                   else ("px" if stored["units"] == "px" or transform
                                         else fmt_units)))
        units = "m" if (transform is not None or in_units in UNIT_TO_METRES) else "px"
        if units != stored["units"]:
            raise UserError(f"source {name!r} stores {stored['units']}; this batch would be "
                            f"{units}. Give the same --units/--scale/--homography as before")
    else:
        in_units = spec.units or (transform.input_units if transform and transform.input_units
                                  else ("px" if transform is not None else fmt_units))
        units = "m" if (transform is not None or in_units in UNIT_TO_METRES) else "px"
    return ResolvedSource(name=spec.name, fps=fps if fps is not None else fps_hint,
                          units="m" if units == "m" else "px", input_units=in_units,
                          transform=transform, time_origin=origin or default_origin)


def _denominator(h: tuple[tuple[float, float, float], ...]) -> pl.Expr:
    """The third homogeneous coordinate of a homography at (raw_x, raw_y): 0 on the
    image's horizon line, of one sign on each side of it (the ground is on one side)."""
    return h[2][0] * pl.col("raw_x") + h[2][1] * pl.col("raw_y") + h[2][2]


def apply_transform(frame: pl.DataFrame, transform: Transform | None) -> pl.DataFrame:
    """raw_x/raw_y ← x/y as received; x/y ← transformed (metres)."""
    frame = frame.with_columns(pl.col("x").alias("raw_x"), pl.col("y").alias("raw_y"))
    if transform is None:
        return frame
    if transform.homography is not None:
        h = transform.homography
        w = _denominator(h)
        return frame.with_columns(
            ((h[0][0] * pl.col("raw_x") + h[0][1] * pl.col("raw_y") + h[0][2]) / w).alias("x"),
            ((h[1][0] * pl.col("raw_x") + h[1][1] * pl.col("raw_y") + h[1][2]) / w).alias("y"))
    scale = float(transform.scale or 1.0)
    return frame.with_columns((pl.col("raw_x") * scale).alias("x"),
                              (pl.col("raw_y") * scale).alias("y"))


def number(value: float) -> str:
    """A float as Postgres prints a double (10, 0.5, 1e+300), so that both ingest paths
    word their errors alike."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


_BOUND = f"{MAX_ABS_COORD:.0e}".replace("e+0", "e")
"""MAX_ABS_COORD as the messages write it (1e6)."""


def _describe(transform: Transform) -> tuple[str, str]:
    """The transform as an error names it, and the hint that goes with it."""
    if transform.homography is not None:
        return "homography", ("check the source's homography: it maps image pixels to "
                              "metres on the ground")
    what = (f"units {transform.input_units}" if transform.input_units
            else f"scale {number(transform.scale or 1.0)}")
    return what, "check the source's scale: metres per pixel"


class GroundCheck:
    """The batch-wide check of a transform's ground coordinates, chunk by chunk (the SQL
    twin is ingest.api_check_ground in sql/211_api_ingest_ground.sql): the first row (in file order)
    that lies on the horizon line of a homography, on the other side of it from the
    batch's first row (behind the camera), or that maps to no finite point within the world
    bounds (|x|, |y| < MAX_ABS_COORD metres, as the row checks hold metric points to),
    refuses the whole batch with a UserError: the transform is at fault, not the point.
    """

    def __init__(self, source: str, transform: Transform | None) -> None:
        self.source = source
        self.transform = transform
        self.first: tuple[int, float] | None = None
        """(row, denominator) of the batch's first checked row."""

    def check(self, frame: pl.DataFrame) -> None:
        """`frame` as apply_transform returns it (ROW, raw_x, raw_y, x, y)."""
        t = self.transform
        if t is None or not frame.height:
            return
        h = t.homography
        w = _denominator(h) if h is not None else pl.lit(1.0)
        rows = frame.select(ROW, "raw_x", "raw_y", "x", "y", w.alias("_w")).sort(ROW)
        if self.first is None:
            self.first = (int(rows[ROW][0]), float(rows["_w"][0]))
        ref_row, ref_w = self.first
        ref_sign = (ref_w > 0) - (ref_w < 0)
        sign = pl.when(pl.col("_w") > 0).then(1).when(pl.col("_w") < 0).then(-1).otherwise(0)
        bad = rows.filter((pl.col("_w") == 0) | pl.col("_w").is_nan() | (sign != ref_sign)
                          | ~(pl.col("x").abs() < MAX_ABS_COORD)
                          | ~(pl.col("y").abs() < MAX_ABS_COORD)).head(1)
        if not bad.height:
            return
        row, raw_x, raw_y, x, y, w_bad = bad.row(0)
        what, hint = _describe(t)
        name = f'source "{self.source}"'
        if w_bad == 0 or w_bad != w_bad:
            raise UserError(
                f"{name}: row {row} (x = {number(raw_x)}, y = {number(raw_y)}) lies on the "
                "horizon of the source's homography (h20·x + h21·y + h22 = 0): it maps to no "
                f"ground point; nothing was stored. {hint.capitalize()}, or leave out points "
                "on or above the horizon")
        if (w_bad > 0) != (ref_w > 0):
            raise UserError(
                f"{name}: rows {ref_row} and {row} lie on opposite sides of the horizon of "
                f"the source's homography (h20·x + h21·y + h22 = {number(ref_w)} and "
                f"{number(w_bad)}): one of them maps behind the camera; nothing was stored. "
                f"{hint.capitalize()}, or leave out points above the horizon")
        raise UserError(
            f"{name}: row {row} (x = {number(raw_x)}, y = {number(raw_y)}) maps to "
            f"x = {number(x)}, y = {number(y)} under the source's {what}, outside the world "
            f"bounds (|x| and |y| below {_BOUND} m); nothing was stored. "
            f"{hint.capitalize()}")


def ground_point(x: float, y: float, transform: Transform | None, where: str) -> list[float]:
    """One point of scene geometry through the source's transform, refused (UserError
    naming `where`) unless it lands on a finite ground point within the world bounds."""
    gx, gy = transform_point(x, y, transform)
    if not (abs(gx) < MAX_ABS_COORD and abs(gy) < MAX_ABS_COORD):
        under = f" under the source's {_describe(transform)[0]}" if transform else ""
        raise UserError(f"{where}: point ({number(x)}, {number(y)}) maps to "
                        f"({number(gx)}, {number(gy)}){under}, outside the world bounds "
                        f"(|x| and |y| below {_BOUND} m); check the scene's units "
                        "and the source's transform")
    return [gx, gy]


def transform_point(x: float, y: float, transform: Transform | None) -> tuple[float, float]:
    """One point (scene geometry) through the same transform."""
    if transform is None:
        return x, y
    if transform.homography is not None:
        h = transform.homography
        w = h[2][0] * x + h[2][1] * y + h[2][2]
        if w == 0:  # on the horizon line: no ground point
            return math.nan, math.nan
        return ((h[0][0] * x + h[0][1] * y + h[0][2]) / w,
                (h[1][0] * x + h[1][1] * y + h[1][2]) / w)
    s = float(transform.scale or 1.0)
    return x * s, y * s
