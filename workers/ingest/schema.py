"""The canonical columnar schema, structured validation errors and ingest options."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import polars as pl

from workers.errors import UserError

# Columns every reader produces, in this order, before validation (raw as received).
CANONICAL: dict[str, pl.DataType] = {
    "track_id": pl.String(),
    "frame": pl.Int64(),
    "t": pl.Float64(),
    "x": pl.Float64(),
    "y": pl.Float64(),
    "class": pl.String(),
    "confidence": pl.Float64(),
}
REQUIRED = ("track_id", "frame", "x", "y")
OPTIONAL = ("t", "class", "confidence")
ROW = "_row"
"""1-based data row (or line) number in the input file, carried through validation."""
BAD = "_bad"
"""Optional reader column: True where a line could not be parsed at all (JSONL)."""

# Columns of the staging table, in COPY order (see workers/queries/ingest.sql).
STAGE_COLUMNS = ("row_no", "track_id", "frame", "ts", "x", "y", "raw_x", "raw_y", "class",
                 "confidence")

FORMATS = ("canonical-csv", "canonical-parquet", "jsonl", "mot", "eth", "kpf")
Units = Literal["px", "m", "cm", "mm"]
UNIT_TO_METRES = {"m": 1.0, "cm": 0.01, "mm": 0.001}
DEFAULT_TIME_ORIGIN = datetime(2026, 1, 1, tzinfo=UTC)
MAX_ERRORS_KEPT = 100
"""Structured errors kept per batch (all are counted)."""

# Plausibility bounds.
MAX_ABS_COORD = 1e6
MAX_SPEED = {"m": 100.0, "px": 20_000.0}
"""Metres per second (360 km/h) for metric sources; pixels per second for pixel sources."""


@dataclass(frozen=True)
class RowError:
    """One problem in one row: what `--json` prints and ingest.batches.errors stores."""

    row: int | None
    column: str | None
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "code": self.code,
                "message": self.message}


@dataclass
class ErrorLog:
    """All errors counted, the first MAX_ERRORS_KEPT kept in full (bounded memory)."""

    kept: list[RowError] = field(default_factory=list)
    by_code: dict[str, int] = field(default_factory=dict)
    invalid_rows: int = 0

    def add(self, error: RowError) -> None:
        self.by_code[error.code] = self.by_code.get(error.code, 0) + 1
        if len(self.kept) < MAX_ERRORS_KEPT:
            self.kept.append(error)

    def add_frame(self, errors: pl.DataFrame) -> None:
        """Add a frame of (_row, column, code, message) rows."""
        if errors.is_empty():
            return
        counts = errors.group_by("code").len()
        for code, n in counts.iter_rows():
            self.by_code[code] = self.by_code.get(code, 0) + int(n)
        room = MAX_ERRORS_KEPT - len(self.kept)
        if room > 0:
            for r in errors.sort(ROW, maintain_order=True).head(room).iter_rows(named=True):
                self.kept.append(RowError(r[ROW], r["column"], r["code"], r["message"]))

    @property
    def total(self) -> int:
        return sum(self.by_code.values())

    def as_list(self) -> list[dict[str, Any]]:
        return [e.as_dict() for e in self.kept]


@dataclass(frozen=True)
class Transform:
    """Image → metric ground plane: a scale (metres per unit) or a 3x3 homography."""

    scale: float | None = None
    homography: tuple[tuple[float, float, float], ...] | None = None
    input_units: str | None = None

    def as_json(self) -> dict[str, Any] | None:
        if self.homography is not None:
            return {"homography": [list(r) for r in self.homography]}
        if self.scale is not None:
            out: dict[str, Any] = {"scale": self.scale}
            if self.input_units and self.input_units != "px":
                out["input_units"] = self.input_units
            return out
        return None

    @staticmethod
    def from_json(data: dict[str, Any] | None) -> Transform | None:
        if not data:
            return None
        if "homography" in data:
            return Transform(homography=check_homography(data["homography"],
                                                         "stored transform"))
        return Transform(scale=float(data["scale"]), input_units=data.get("input_units"))


def check_homography(matrix: Any, where: str) -> tuple[tuple[float, float, float], ...]:
    """A finite, invertible 3x3 matrix or a UserError naming `where`."""
    ok = (isinstance(matrix, list) and len(matrix) == 3
          and all(isinstance(r, list) and len(r) == 3 for r in matrix))
    if ok:
        try:
            rows = tuple((float(r[0]), float(r[1]), float(r[2])) for r in matrix)
        except (TypeError, ValueError):
            ok = False
        else:
            ok = all(math.isfinite(v) for r in rows for v in r)
    if not ok:
        raise UserError(f"{where}: a homography is a 3x3 list of finite numbers, "
                        "e.g. [[1,0,0],[0,1,0],[0,0,1]]")
    import numpy as np

    if abs(float(np.linalg.det(np.array(rows)))) < 1e-12:
        raise UserError(f"{where}: the homography is singular (determinant 0); "
                        "check the calibration")
    return rows


@dataclass(frozen=True)
class SourceSpec:
    """What a batch says about its source; None means 'as stored / format default'."""

    name: str
    fps: float | None = None
    units: str | None = None
    transform: Transform | None = None
    time_origin: datetime | None = None


@dataclass(frozen=True)
class ResolvedSource:
    """The settings a batch is ingested with (stored on the source's first batch)."""

    name: str
    fps: float | None
    units: Literal["m", "px"]
    input_units: str
    transform: Transform | None
    time_origin: datetime


def ts_from_seconds(origin: datetime, seconds: str = "t") -> pl.Expr:
    """The absolute timestamp of a column of seconds since `origin`, rounded to the
    microsecond (what ingest stores; Postgres timestamps have microsecond resolution)."""
    micros = (pl.col(seconds) * 1e6).round(0).cast(pl.Int64)
    return pl.lit(origin) + pl.duration(microseconds=micros)


def parse_iso_time(value: str, flag: str = "--time-origin") -> datetime:
    """An ISO timestamp (a trailing Z allowed) as an aware datetime; naive means UTC."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise UserError(f"{flag} {value!r}: use an ISO timestamp such as "
                        "2026-01-01T00:00:00Z") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
