"""Per-source coordinates: unit conversion, scale or homography to a metric ground plane.

Raw coordinates (as received) are kept in raw_x/raw_y; x/y become metres when the source
has a transform or metric input units, and stay pixels (units 'px') otherwise.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from workers.errors import UserError
from workers.ingest.schema import (
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


def apply_transform(frame: pl.DataFrame, transform: Transform | None) -> pl.DataFrame:
    """raw_x/raw_y ← x/y as received; x/y ← transformed (metres)."""
    frame = frame.with_columns(pl.col("x").alias("raw_x"), pl.col("y").alias("raw_y"))
    if transform is None:
        return frame
    if transform.homography is not None:
        h = transform.homography
        w = h[2][0] * pl.col("raw_x") + h[2][1] * pl.col("raw_y") + h[2][2]
        return frame.with_columns(
            ((h[0][0] * pl.col("raw_x") + h[0][1] * pl.col("raw_y") + h[0][2]) / w).alias("x"),
            ((h[1][0] * pl.col("raw_x") + h[1][1] * pl.col("raw_y") + h[1][2]) / w).alias("y"))
    scale = float(transform.scale or 1.0)
    return frame.with_columns((pl.col("raw_x") * scale).alias("x"),
                              (pl.col("raw_y") * scale).alias("y"))


def transform_point(x: float, y: float, transform: Transform | None) -> tuple[float, float]:
    """One point (scene geometry) through the same transform."""
    if transform is None:
        return x, y
    if transform.homography is not None:
        h = transform.homography
        w = h[2][0] * x + h[2][1] * y + h[2][2]
        return ((h[0][0] * x + h[0][1] * y + h[0][2]) / w,
                (h[1][0] * x + h[1][1] * y + h[1][2]) / w)
    s = float(transform.scale or 1.0)
    return x * s, y * s
