"""The ingest checks, once: the table both validators are driven by.

`secinf ingest` validates with Polars (workers/ingest/validate.py) and POST
/rpc/ingest_batch in PL/pgSQL (sql/214_api_ingest_stage.sql). Both read ROW_CHECKS and
BATCH_CHECKS below: the code and column of each problem, its message template, and for a
row check the test that finds it and the bound it holds a value to. Each side implements
every test once (validate.row_hit, the CASE over `test` in ingest.api_stage_points), so a
check added, reordered, re-worded or re-bounded here changes both. The database reads the
table from ingest.api_checks(), which `make ingest-checks` (write_sql) writes to
sql/213_api_ingest_checks.sql (tests/unit/test_ingest_checks.py fails while it is stale).

Templates name their values in braces: {column}; {value} and {abs} (the checked value and
its magnitude); {line} and {no_fps} (words of the path: a file's line or a batch's item,
and how to give t a frame rate, empty when the source has one); and the batch checks'
values ({track_id}, {frame}, {t}, {t_ref}, {speed}, {unit}, {limit}). Numbers are written
as Postgres writes a double (number_text), so that both paths print them alike.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal, get_args

import polars as pl

from workers.ingest.schema import MAX_ABS_COORD, MAX_SPEED

Path = Literal["cli", "api"]
Test = Literal[
    "not_object",           # the line (item) is not a JSON object
    "blank",                # text absent, empty or only white space
    "nul_byte",             # text holding a NUL byte (the CLI's; jsonb cannot hold one)
    "not_number",           # given, but not a number
    "absent",               # not given (nor derived: t from frame / fps)
    "not_finite",           # NaN or ±Infinity
    "not_integer",          # finite, with a fraction
    "below",                # value < bound (-Infinity too)
    "at_least",             # value ≥ bound (+Infinity too)
    "abs_at_least",         # |value| ≥ bound (±Infinity too)
    "finite_abs_at_least",  # finite and |value| ≥ bound
    "outside_unit",         # outside [0, 1] (±Infinity too)
]
TESTS: tuple[Test, ...] = get_args(Test)
MAX_FRAME = 2.0**53
"""Frames are integers a double holds exactly."""
MAX_ABS_T = 1e9
"""Seconds from the source's time origin (about 32 years)."""
TIME_TOLERANCE = 1e-6
"""Seconds: two t values of one frame closer than this are the same time."""

PATH_WORDS: dict[Path, dict[str, str]] = {
    "cli": {"line": "line", "no_fps": " (or pass --fps to derive t from frame)"},
    "api": {"line": "item", "no_fps": " (or give the source an fps to derive t from frame)"},
}


@dataclass(frozen=True)
class Check:
    """One problem a point can have."""

    code: str
    column: str | None
    test: str
    """A Test for row checks; for batch checks, the name of the step that finds it."""
    message: str
    bound: float | None = None
    paths: tuple[Path, ...] = ("cli", "api")


def _row_checks() -> tuple[Check, ...]:
    out = [Check("unparseable", None, "not_object", "the {line} is not a JSON object"),
           Check("missing", "track_id", "blank", "{column} is missing")]
    # Postgres text cannot hold a NUL byte: the field is this row's error, not the file's
    # (COPY would fail the whole batch with no row number). A JSON body cannot carry one
    # into jsonb at all, so the API never meets it.
    out += [Check("nul_byte", c, "nul_byte", "{column} contains a NUL byte (\\x00); remove it",
                  paths=("cli",))
            for c in ("track_id", "frame", "t", "x", "y", "confidence", "class")]
    for c in ("frame", "t", "x", "y", "confidence"):
        out.append(Check("type", c, "not_number", "{column} is not a number"))
        if c != "confidence":
            note = "{no_fps}" if c == "t" else ""
            out.append(Check("missing", c, "absent", "{column} is missing" + note))
        out.append(Check("not_finite", c, "not_finite",
                         "{column} is {value}; only finite numbers are accepted"))
    out += [
        Check("type", "frame", "not_integer", "frame {value} is not an integer"),
        Check("negative_frame", "frame", "below", "frame {value} is negative; frames count from 0",
              0.0),
        Check("out_of_bounds", "frame", "at_least", "frame {value} is implausibly large",
              MAX_FRAME),
        Check("out_of_bounds", "x", "finite_abs_at_least", "|x| = {abs} is implausible (≥ 1e6)",
              MAX_ABS_COORD),
        Check("out_of_bounds", "y", "finite_abs_at_least", "|y| = {abs} is implausible (≥ 1e6)",
              MAX_ABS_COORD),
        Check("out_of_bounds", "t", "abs_at_least", "t = {value} s is implausible", MAX_ABS_T),
        Check("out_of_range", "confidence", "outside_unit",
              "confidence {value} is outside [0, 1]"),
    ]
    return tuple(out)


ROW_CHECKS = _row_checks()
"""In the order a row's errors are listed; a row failing any is invalid."""
BATCH_CHECKS = (
    Check("duplicate_key", "frame", "duplicate_key",
          "track {track_id} has frame {frame} twice in this batch"),
    Check("frame_time_mismatch", "t", "frame_times",
          "frame {frame} has t = {t} here but t = {t_ref} elsewhere; one t per frame"),
    Check("time_not_increasing", "t", "frame_times",
          "frame {frame} at t = {t} breaks the order of frames: t must increase with frame"),
    Check("implausible_speed", "x", "speeds",
          "track {track_id} moves at {speed} {unit} (limit {limit})"),
)
"""On the rows that passed every row check, in this order; a row fails at most one."""
BATCH = {c.code: c for c in BATCH_CHECKS}
PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def number_text(value: float) -> str:
    """A double as Postgres writes it (float8out): the shortest digits that read back the
    same, positional from 1e-4 up to 1e15, else d.ddde±XX; NaN, Infinity, -Infinity."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    sign, digits, exp = Decimal(repr(value)).as_tuple()
    assert isinstance(exp, int)
    ds = "".join(map(str, digits)).rstrip("0") or "0"
    exp += len(digits) - len(ds)
    minus = "-" if sign else ""
    if ds == "0":
        return minus + "0"
    e10 = len(ds) - 1 + exp
    if e10 < -4 or e10 >= 15:
        mantissa = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        return f"{minus}{mantissa}e{'+' if e10 >= 0 else '-'}{abs(e10):02d}"
    return minus + format(Decimal((0, tuple(map(int, ds)), exp)), "f")


def render(template: str, values: dict[str, str]) -> str:
    """A template with its placeholders filled (one pass; an unknown one is left as is)."""
    return PLACEHOLDER.sub(lambda m: values.get(m[1], m[0]), template)


def speed_text(value: float) -> str:
    """A speed as the API writes it: round(speed::numeric, 1), where a double becomes a
    numeric of 15 significant digits and halves round away from zero."""
    return str(Decimal(f"{value:.15g}").quantize(Decimal("0.1"), ROUND_HALF_UP))


def render_expr(template: str, values: dict[str, pl.Expr]) -> pl.Expr:
    """render() for a Polars frame: each placeholder a String expression (the CLI's)."""
    parts: list[pl.Expr] = []
    pos = 0
    for m in PLACEHOLDER.finditer(template):
        parts.append(pl.lit(template[pos:m.start()]))
        parts.append(values.get(m[1], pl.lit(m[0])))
        pos = m.end()
    parts.append(pl.lit(template[pos:]))
    return pl.concat_str(parts)


# ---------------------------------------------------------------------- the SQL side
def _literal(value: str | None) -> str:
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


def _float(value: float | None) -> str:
    return "NULL" if value is None else f"{number_text(value)}::float8"


def sql() -> str:
    """sql/213_api_ingest_checks.sql: the checks the API runs, as ingest.api_checks()."""
    rows = [(c, "row") for c in ROW_CHECKS if "api" in c.paths]
    rows += [(c, "batch") for c in BATCH_CHECKS if "api" in c.paths]
    values = ",\n".join(
        f"    ({seq}, {_literal(kind)}, {_literal(c.code)}, {_literal(c.column)}, "
        f"{_literal(c.test)}, {_float(c.bound)},\n     {_literal(c.message)})"
        for seq, (c, kind) in enumerate(rows, start=1))
    words = _literal(json.dumps({**PATH_WORDS["api"], "max_speed_m": MAX_SPEED["m"],
                                 "max_speed_px": MAX_SPEED["px"], "time_tolerance": TIME_TOLERANCE},
                                ensure_ascii=False, indent=2))
    return f"""-- GENERATED from workers/ingest/checks.py (`make ingest-checks`), the one table of
-- ingest checks (the CLI's Polars validation reads it there). Do not edit: change the
-- table and regenerate.

-- The checks of a batch's points, in the order a point's errors are listed (seq): kind
-- 'row' (each point alone: `test` names the condition, ingest.api_stage_points evaluates
-- it against `bound`) or 'batch' (the batch steps that find them); the message template's
-- {{placeholders}} are filled by ingest.api_message.
CREATE OR REPLACE FUNCTION ingest.api_checks()
RETURNS TABLE (seq integer, kind text, code text, col text, test text,
               bound double precision, message text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  VALUES
{values}
$$;

-- The API's words for the path placeholders of the templates ({{line}}, {{no_fps}}), the
-- speed limits (units per second: metric and pixel sources) and the tolerance of one t per
-- frame (seconds).
CREATE OR REPLACE FUNCTION ingest.api_check_words() RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT {words}::jsonb
$$;
"""


SQL_FILE = "213_api_ingest_checks.sql"


def write_sql() -> None:
    """Regenerate sql/213_api_ingest_checks.sql."""
    from workers.settings import SQL_DIR

    (SQL_DIR / SQL_FILE).write_text(sql())
