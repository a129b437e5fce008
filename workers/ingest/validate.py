"""Validation with Polars, chunk by chunk, before any row reaches the database.

Each problem becomes a structured error (row, column, code, message). Row checks (types,
finite numbers, bounds) need only the chunk; the batch-wide checks keep small state across
chunks: one t per frame and t increasing with frame (a frame → t map, one entry per
frame) and speeds (the last point of each track). Duplicate (track_id, frame) keys are
caught within a chunk here; across chunks the merge's unique key drops them (counted as
duplicates), so a point is never stored twice. After the source's transform, its ground
coordinates are held to the same world bounds as metric input (transform.GroundCheck): a
transform that maps a point off the ground refuses the whole batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import polars as pl

from workers.errors import UserError
from workers.ingest.checks import (
    BATCH,
    PATH_WORDS,
    ROW_CHECKS,
    TIME_TOLERANCE,
    Check,
    number_text,
    render_expr,
    speed_text,
)
from workers.ingest.schema import (
    BAD,
    MAX_SPEED,
    ROW,
    ErrorLog,
    ResolvedSource,
    ts_from_seconds,
)
from workers.ingest.transform import GroundCheck, apply_transform

_NUMERIC = ("frame", "t", "x", "y", "confidence")
_FIELDS = ("track_id", *_NUMERIC, "class")
_ERR_SCHEMA = pl.Schema({ROW: pl.Int64(), "column": pl.String(), "code": pl.String(),
                         "message": pl.String()})


def _as_float(frame: pl.DataFrame, name: str) -> pl.Expr:
    dtype = frame.schema[name]
    if dtype == pl.String:
        return pl.col(name).str.strip_chars().cast(pl.Float64, strict=False)
    if dtype.is_numeric() or dtype == pl.Boolean or dtype == pl.Null:
        if dtype == pl.Boolean:
            return pl.lit(None, dtype=pl.Float64)
        return pl.col(name).cast(pl.Float64)
    raise UserError(f"column {name!r} has type {dtype}; expected a number "
                    "(schema mismatch: check the file or --map)")


def _as_text(frame: pl.DataFrame, name: str) -> pl.Expr:
    dtype = frame.schema[name]
    if dtype == pl.String or dtype == pl.Null:
        return pl.col(name).cast(pl.String)
    if dtype.is_integer():
        return pl.col(name).cast(pl.String)
    if dtype.is_float():
        v = pl.col(name)
        return pl.when(v == v.floor()).then(v.cast(pl.Int64, strict=False).cast(pl.String)) \
            .otherwise(v.cast(pl.String))
    raise UserError(f"column {name!r} has type {dtype}; expected text "
                    "(schema mismatch: check the file or --map)")


def _errors(frame: pl.DataFrame, mask: str, column: str | None, code: str,
            message: pl.Expr) -> pl.DataFrame:
    return frame.filter(pl.col(mask)).select(
        pl.col(ROW), pl.lit(column, dtype=pl.String).alias("column"),
        pl.lit(code).alias("code"), message.alias("message"))


def _num(name: str, text: Callable[[float], str] = number_text) -> pl.Expr:
    """A float column as the messages write it (as Postgres writes a double)."""
    return pl.col(name).map_elements(text, return_dtype=pl.String, skip_nulls=True)


def _int(name: str) -> pl.Expr:
    return pl.col(name).cast(pl.Int64).cast(pl.String)


def row_hit(check: Check) -> pl.Expr:
    """Where a row fails a row check: each Test of checks.py, once (the SQL twin is the
    CASE over `test` in ingest.api_stage_points). Null counts as no hit; NaN is only
    not_finite (Polars, like Postgres, orders NaN above every number)."""
    c = check.column or ""
    v = pl.col(c) if check.column else pl.lit(None, dtype=pl.Float64)
    bound = check.bound if check.bound is not None else math.nan
    given = pl.col(f"_has_{c}") if check.column in _NUMERIC else pl.lit(False)
    tests: dict[str, Callable[[], pl.Expr]] = {
        "not_object": lambda: pl.col(BAD),
        "blank": lambda: ~pl.col(BAD) & (v.is_null() | (v.str.strip_chars() == "")),
        "nul_byte": lambda: pl.col(f"_nul_{c}"),
        "not_number": lambda: ~pl.col(BAD) & v.is_null() & given & ~pl.col(f"_nul_{c}"),
        "absent": lambda: ~pl.col(BAD) & v.is_null() & ~given,
        "not_finite": lambda: v.is_not_null() & ~v.is_finite(),
        "not_integer": lambda: v.is_finite() & (v != v.floor()),
        "below": lambda: v < bound,
        "at_least": lambda: (v >= bound) & ~v.is_nan(),
        "abs_at_least": lambda: (v.abs() >= bound) & ~v.is_nan(),
        "finite_abs_at_least": lambda: v.abs().is_finite() & (v.abs() >= bound),
        "outside_unit": lambda: ((v < 0) | (v > 1)) & ~v.is_nan(),
    }
    return tests[check.test]()


def _row_message(check: Check, words: dict[str, str]) -> pl.Expr:
    values: dict[str, pl.Expr] = {k: pl.lit(w) for k, w in words.items()}
    if check.column:
        values["column"] = pl.lit(check.column)
        if check.column in _NUMERIC:
            values["value"] = _num(check.column)
            values["abs"] = pl.col(check.column).abs().map_elements(
                number_text, return_dtype=pl.String, skip_nulls=True)
    return render_expr(check.message, values)


def _batch_errors(data: pl.DataFrame, mask: str, code: str, /, **values: pl.Expr
                  ) -> pl.DataFrame:
    check = BATCH[code]
    return _errors(data, mask, check.column, code, render_expr(check.message, values))


@dataclass
class Validator:
    """Validates the chunks of one batch; `errors` collects every problem."""

    source: ResolvedSource
    errors: ErrorLog = field(default_factory=ErrorLog)
    frames_seen: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(
        schema={"frame": pl.Int64, "t_ref": pl.Float64}))
    last_points: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(
        schema={"track_id": pl.String, "frame": pl.Int64, "t": pl.Float64, "x": pl.Float64,
                "y": pl.Float64}))
    valid_rows: int = 0
    min_ts: float | None = None
    max_ts: float | None = None
    repeats: int = 0
    """Rows dropped by `drop_repeats` (a key of an earlier chunk; counted as duplicates)."""
    _keys: list[tuple[int, int, pl.DataFrame]] = field(default_factory=list)
    _ground: GroundCheck = field(init=False)

    def __post_init__(self) -> None:
        self._ground = GroundCheck(self.source.name, self.source.transform)

    # ------------------------------------------------------------------ row checks
    def _typed(self, raw: pl.DataFrame) -> pl.DataFrame:
        fps = self.source.fps
        exprs = [pl.col(ROW), _as_text(raw, "track_id").alias("track_id"),
                 _as_text(raw, "class").alias("class")]
        exprs += [_as_float(raw, c).alias(c) for c in _NUMERIC]
        exprs += [pl.col(c).is_not_null().alias(f"_has_{c}") for c in (*_NUMERIC, "track_id")]
        exprs += [(pl.col(c).str.contains("\x00", literal=True).fill_null(False)
                   if raw.schema[c] == pl.String else pl.lit(False)).alias(f"_nul_{c}")
                  for c in _FIELDS]
        exprs.append(pl.col(BAD) if BAD in raw.columns else pl.lit(False).alias(BAD))
        typed = raw.select(exprs)
        frame_f = pl.col("frame")
        t = pl.col("t")
        if fps is not None:  # t not given: frame / fps (a t that is no number stays a type error)
            t = pl.when(t.is_null() & ~pl.col("_has_t")).then(frame_f / fps).otherwise(t)
        return typed.with_columns(t.alias("t"))

    def _row_masks(self, typed: pl.DataFrame) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
        """The table's row checks (checks.ROW_CHECKS), in its order."""
        words = dict(PATH_WORDS["cli"])
        if self.source.fps:
            words["no_fps"] = ""
        checks = [(f"m_{n}", c) for n, c in enumerate(ROW_CHECKS) if "cli" in c.paths]
        masked = typed.with_columns([row_hit(c).fill_null(False).alias(n) for n, c in checks])
        errs = [_errors(masked, n, c.column, c.code, _row_message(c, words)) for n, c in checks]
        any_bad = pl.any_horizontal([pl.col(n) for n, _ in checks])
        return masked.with_columns(any_bad.alias("_invalid")), errs

    # ------------------------------------------------------------------ batch checks
    def _frame_times(self, good: pl.DataFrame) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
        """One t per frame, t increasing with frame (against all earlier chunks too)."""
        errs: list[pl.DataFrame] = []
        first = good.sort(ROW).group_by("frame", maintain_order=True).agg(
            pl.col("t").first().alias("t_new"))
        ref = first.join(self.frames_seen, on="frame", how="left").select(
            "frame", pl.coalesce("t_ref", "t_new").alias("t_ref"),
            pl.col("t_ref").is_null().alias("is_new"))
        good = good.join(ref, on="frame", how="left")
        bad = (pl.col("t") - pl.col("t_ref")).abs() > TIME_TOLERANCE
        good = good.with_columns(bad.alias("m_ft"))
        errs.append(_batch_errors(good, "m_ft", "frame_time_mismatch", frame=_int("frame"),
                                  t=_num("t"), t_ref=_num("t_ref")))
        good = good.filter(~pl.col("m_ft"))
        # Monotonic: a new frame must be later than every earlier frame and earlier than
        # every later frame already accepted (of two new frames in conflict, the later
        # frame is the one flagged).
        new = ref.filter("is_new").select("frame", "t_ref", pl.lit(True).alias("is_new"))
        merged = pl.concat([self.frames_seen.with_columns(pl.lit(False).alias("is_new")), new]
                           ).sort("frame")
        merged = merged.with_columns(
            (pl.col("t_ref") <= pl.col("t_ref").cum_max().shift(1)).fill_null(False)
            .alias("_back"),
            (pl.col("t_ref") >= pl.when(pl.col("is_new")).then(float("inf"))
             .otherwise(pl.col("t_ref")).reverse().cum_min().reverse().shift(-1))
            .fill_null(False).alias("_ahead"))
        violating = merged.filter(pl.col("is_new") & (pl.col("_back") | pl.col("_ahead")))
        good = good.with_columns(pl.col("frame").is_in(violating["frame"].implode())
                                 .alias("m_mono"))
        errs.append(_batch_errors(good, "m_mono", "time_not_increasing", frame=_int("frame"),
                                  t=_num("t")))
        good = good.filter(~pl.col("m_mono"))
        accepted = merged.filter(~(pl.col("is_new") & (pl.col("_back") | pl.col("_ahead"))))
        self.frames_seen = accepted.select("frame", "t_ref")
        return good.drop("t_ref", "is_new"), errs

    def _speeds(self, good: pl.DataFrame) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
        limit = MAX_SPEED[self.source.units]
        cur = good.select("track_id", "frame", "t", "x", "y", pl.col(ROW))
        prev = self.last_points.with_columns(pl.lit(None, dtype=pl.Int64).alias(ROW))
        both = pl.concat([prev, cur]).sort("track_id", "frame")
        dt = pl.col("t") - pl.col("t").shift(1).over("track_id")
        dist = ((pl.col("x") - pl.col("x").shift(1).over("track_id")) ** 2
                + (pl.col("y") - pl.col("y").shift(1).over("track_id")) ** 2).sqrt()
        both = both.with_columns((dist / dt).alias("_speed"))
        fast = both.filter(pl.col(ROW).is_not_null() & (pl.col("_speed") > limit))
        unit = "m/s" if self.source.units == "m" else "px/s"
        good = good.with_columns(pl.col(ROW).is_in(fast[ROW].implode()).alias("m_speed"))
        errs = [_batch_errors(fast.with_columns(pl.lit(True).alias("m_speed")), "m_speed",
                              "implausible_speed", track_id=pl.col("track_id"),
                              speed=_num("_speed", speed_text), unit=pl.lit(unit),
                              limit=pl.lit(number_text(limit)))]
        ok = both.filter(pl.col(ROW).is_null() | ~pl.col(ROW).is_in(fast[ROW].implode()))
        self.last_points = ok.sort("frame").group_by("track_id").agg(
            pl.all().exclude(ROW, "_speed").last())
        return good.filter(~pl.col("m_speed")), errs

    # ------------------------------------------------------------------ one chunk
    def check(self, raw: pl.DataFrame) -> pl.DataFrame:
        """Valid rows of a chunk, transformed: _row, track_id, frame, t, ts_offset (s),
        x, y, raw_x, raw_y, class, confidence. Errors go to self.errors."""
        typed = self._typed(raw)
        masked, errs = self._row_masks(typed)
        good = masked.filter(~pl.col("_invalid")).with_columns(
            pl.col("frame").cast(pl.Int64))
        # A hash of the (track_id, frame) pairs in file order: every repeat after the first.
        dup = ~pl.struct("track_id", "frame").is_first_distinct()
        good = good.sort(ROW).with_columns(dup.alias("m_dup"))
        errs.append(_batch_errors(good, "m_dup", "duplicate_key", track_id=pl.col("track_id"),
                                  frame=_int("frame")))
        good = good.filter(~pl.col("m_dup"))
        good = good.select(ROW, "track_id", "frame", "t", "x", "y", "class", "confidence")
        good, more = self._frame_times(good)
        errs += more
        good = apply_transform(good, self.source.transform)
        self._ground.check(good)   # a transform off the ground refuses the batch
        good, more = self._speeds(good)
        errs += more
        all_errs = pl.concat([e.cast(_ERR_SCHEMA) for e in errs]) if errs else pl.DataFrame(
            schema=_ERR_SCHEMA)
        self.errors.add_frame(all_errs)
        self.errors.invalid_rows += raw.height - good.height
        self.valid_rows += good.height
        if good.height:
            lo, hi = good["t"].min(), good["t"].max()
            assert isinstance(lo, float) and isinstance(hi, float)
            self.min_ts = lo if self.min_ts is None else min(self.min_ts, lo)
            self.max_ts = hi if self.max_ts is None else max(self.max_ts, hi)
        return good

    def drop_repeats(self, good: pl.DataFrame) -> pl.DataFrame:
        """Drop rows whose (track_id, frame) an earlier chunk of this batch already had
        (the first one wins), so no two rows of a batch share a key. Only earlier chunks
        whose frame range meets this chunk's are joined: cheap for time-ordered files."""
        if not good.height:
            return good
        lo, hi = good["frame"].min(), good["frame"].max()
        assert isinstance(lo, int) and isinstance(hi, int)
        near = [keys.filter(pl.col("frame").is_between(lo, hi))
                for k_lo, k_hi, keys in self._keys if k_lo <= hi and k_hi >= lo]
        near = [k for k in near if k.height]
        if near:
            before = good.height
            good = good.join(pl.concat(near), on=["track_id", "frame"], how="anti",
                             maintain_order="left")
            self.repeats += before - good.height
        self._keys.append((lo, hi, good.select("track_id", "frame")))
        return good

    def stage_frame(self, good: pl.DataFrame) -> pl.DataFrame:
        """Columns in staging-table order, ts as an absolute timestamp."""
        origin = self.source.time_origin
        return good.select(
            pl.col(ROW).alias("row_no"), "track_id", "frame",
            ts_from_seconds(origin).alias("ts"),
            "x", "y", "raw_x", "raw_y", "class",
            pl.col("confidence").cast(pl.Float32))


def ts_of(source: ResolvedSource, seconds: float) -> object:
    return source.time_origin + timedelta(seconds=seconds)
