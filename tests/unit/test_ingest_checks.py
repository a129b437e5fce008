"""The one table of ingest checks (workers/ingest/checks.py): the generated SQL is current,
both sides know every test, and numbers are written as Postgres writes them."""

from __future__ import annotations

import re

import pytest

from workers.ingest.checks import (
    BATCH_CHECKS,
    ROW_CHECKS,
    SQL_FILE,
    TESTS,
    number_text,
    render,
    speed_text,
    sql,
)
from workers.ingest.validate import row_hit
from workers.settings import SQL_DIR


def test_the_generated_sql_file_is_current() -> None:
    assert (SQL_DIR / SQL_FILE).read_text() == sql(), (
        f"sql/{SQL_FILE} is stale: run `make ingest-checks`")


def test_both_sides_evaluate_exactly_the_tests_of_the_table() -> None:
    stage = (SQL_DIR / "214_api_ingest_stage.sql").read_text()
    case = stage[stage.index("CASE c.test"):]
    in_sql = set(re.findall(r"WHEN '([a-z_]+)' THEN", case[:case.index("END;")]))
    assert in_sql == set(TESTS) - {"nul_byte"}  # the CLI's alone: jsonb holds no NUL
    for check in ROW_CHECKS:
        assert check.test in TESTS
        row_hit(check)  # raises KeyError for a test validate.py does not know


def test_codes_columns_and_placeholders() -> None:
    known = {"column", "value", "abs", "line", "no_fps", "track_id", "frame", "t", "t_ref",
             "speed", "unit", "limit"}
    for check in (*ROW_CHECKS, *BATCH_CHECKS):
        assert set(re.findall(r"\{([a-z_]+)\}", check.message)) <= known, check
    assert len({(c.code, c.column, c.test) for c in ROW_CHECKS}) == len(ROW_CHECKS)


@pytest.mark.parametrize(("value", "text"), [
    (-5.0, "-5"), (2.5, "2.5"), (2e6, "2000000"), (1e300, "1e+300"), (1e-5, "1e-05"),
    (0.0001, "0.0001"), (0.1, "0.1"), (1e15, "1e+15"), (123456789012345.0, "123456789012345"),
    (999999999999999.0, "999999999999999"), (float("inf"), "Infinity"),
    (float("-inf"), "-Infinity"), (float("nan"), "NaN"), (-0.0, "-0"), (7e9, "7000000000"),
    (1.5e-7, "1.5e-07"), (1234.5678e10, "12345678000000"), (5e-324, "5e-324")])
def test_numbers_are_written_as_postgres_writes_a_double(value: float, text: str) -> None:
    # The texts are SELECT v::float8::text of Postgres 15 (extra_float_digits 1).
    assert number_text(value) == text


def test_speeds_round_as_numeric_does() -> None:
    assert [speed_text(v) for v in (1000.0, 163.44, 12345.25, 0.05)] == [
        "1000.0", "163.4", "12345.3", "0.1"]


def test_render_is_one_pass() -> None:
    assert render("track {track_id} at {frame}", {"track_id": "{frame}", "frame": "3"}) == (
        "track {frame} at 3")
    assert render("{unknown} stays", {}) == "{unknown} stays"
