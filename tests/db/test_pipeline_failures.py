"""A failing source is isolated (issue 16): the scheduled tick records it, backs it off and
goes on with every other source; `pipeline status` shows it; a success clears it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import numpy as np
import polars as pl
import psycopg
import pytest
from typer.testing import CliRunner

from tests.support.scene_loader import load_tracks, project
from workers.cli.main import app
from workers.errors import UserError
from workers.pipeline import tick

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]


def _tracks(offset: float = 0.0) -> pl.DataFrame:
    """Two walkers 1 m apart, 5 s at 10 fps."""
    f = np.arange(50)
    return pl.concat([pl.DataFrame({"track_id": tid, "frame": f, "t": f / 10.0,
                                    "x": f * 0.1 + off + offset, "y": np.full(50, off)})
                      for tid, off in (("1", 0.0), ("2", 1.0))])


def _two_tenants(db: Conn) -> tuple[int, int]:
    """A healthy source in one project and, in another, one whose point got a coordinate
    no validation lets in (as if stored before it existed): its kinematics overflow."""
    good = load_tracks(db, project(db, "good"), _tracks(), 10.0, name="good-cam")
    bad = load_tracks(db, project(db, "bad"), _tracks(), 10.0, name="bad-cam")
    db.execute("UPDATE ingest.track_points SET x = 1e300 WHERE source_id = %s "
               "AND track_id = '1' AND frame = 20", (bad,))
    db.commit()
    return good, bad


@contextmanager
def _cron(dsn: str) -> Iterator[tuple[psycopg.Connection[Any], list[str]]]:
    """A session as pg_cron's job runs it (role pipeline, autocommit), with its notices."""
    notices: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.add_notice_handler(lambda d: notices.append(f"{d.severity}: {d.message_primary}"))
        conn.execute("SET ROLE pipeline")
        yield conn, notices


def _scheduled(dsn: str) -> list[str]:
    """One `CALL pipeline.run_scheduled()`; its notices."""
    with _cron(dsn) as (conn, notices):
        conn.execute("CALL pipeline.run_scheduled()")
    return notices


def _failure(db: Conn, source: int) -> dict[str, Any] | None:
    row = db.execute("SELECT stage, sqlstate, error, failures, first_failed_at, "
                     "last_failed_at, retry_at FROM pipeline.source_failures "
                     "WHERE source_id = %s", (source,)).fetchone()
    db.commit()
    return row


def _runs(db: Conn, source: int) -> list[str]:
    rows = db.execute("SELECT status FROM pipeline.runs WHERE source_id = %s ORDER BY run_id",
                      (source,)).fetchall()
    db.commit()
    return [r["status"] for r in rows]


def test_a_poisoned_source_is_isolated_backed_off_and_cleared_when_fixed(
        db: Conn, dsn: str, secinf_env: str) -> None:
    good, bad = _two_tenants(db)

    # The scheduled tick does not fail: the bad source is recorded, the good one processed.
    notices = _scheduled(dsn)
    assert _runs(db, good) == ["ok"] and _runs(db, bad) == ["error"]
    first = _failure(db, bad)
    assert first is not None
    assert {k: first[k] for k in ("stage", "sqlstate", "error", "failures")} == {
        "stage": "kinematics", "sqlstate": "22003", "error": "value out of range: overflow",
        "failures": 1}
    assert first["first_failed_at"] == first["last_failed_at"]
    assert first["retry_at"] - first["last_failed_at"] == timedelta(minutes=1)
    assert _failure(db, good) is None
    assert any(n.startswith("WARNING: pipeline: failing sources were backed off: "
                            f"source {bad} (kinematics, try 1 again at ") for n in notices), notices
    counts = db.execute("SELECT (SELECT count(*) FROM features.kinematics WHERE source_id = %s)"
                        " AS bad, (SELECT count(*) FROM features.kinematics WHERE source_id = %s)"
                        " AS good", (bad, good)).fetchone()
    db.commit()
    # the bad source's range was rolled back; the good one's is in (up to the settle margin)
    assert counts == {"bad": 0, "good": 60}

    # Until its retry time the bad source is left alone, while new data elsewhere goes on.
    late = load_tracks(db, project(db, "good2"), _tracks(), 10.0, name="late-cam")
    _scheduled(dsn)
    assert _runs(db, bad) == ["error"] and _failure(db, bad) == first
    assert _runs(db, late) == ["ok"]

    # Its retry time comes (the clock is moved by moving retry_at): tried, failed again,
    # backed off twice as long, the first failure kept.
    db.execute("UPDATE pipeline.source_failures SET retry_at = now() - interval '1 second' "
               "WHERE source_id = %s", (bad,))
    db.commit()
    _scheduled(dsn)
    second = _failure(db, bad)
    assert second is not None and second["failures"] == 2
    assert second["first_failed_at"] == first["first_failed_at"]
    assert second["retry_at"] - second["last_failed_at"] == timedelta(minutes=2)

    # Status (SQL and CLI) shows it.
    status = db.execute("SELECT failures, failed_stage, failed_sqlstate, retry_at, last_error,"
                        " last_status FROM pipeline.status WHERE source_id = %s",
                        (bad,)).fetchone()
    db.commit()
    assert status == {"failures": 2, "failed_stage": "kinematics", "failed_sqlstate": "22003",
                      "retry_at": second["retry_at"],
                      "last_error": "value out of range: overflow", "last_status": "error"}
    runner = CliRunner()
    out = runner.invoke(app, ["pipeline", "status", "--json"])
    assert out.exit_code == 0, out.output
    rows = {r["source_id"]: r for r in json.loads(out.stdout)}
    assert (rows[bad]["failures"], rows[bad]["failed_stage"], rows[bad]["last_error"]) == (
        2, "kinematics", "value out of range: overflow")
    assert rows[bad]["retry_at"] is not None
    assert (rows[good]["failures"], rows[good]["retry_at"]) == (0, None)
    table = runner.invoke(app, ["pipeline", "status"])
    assert table.exit_code == 0, table.output
    line = " ".join(table.stderr.split())
    assert line.startswith(f"failing: source {bad} (bad-cam) failed 2 time(s) in a row in "
                           "kinematics (22003): value out of range: overflow; the next tick "
                           "tries it from "), line
    assert line.endswith(f"(`secinf pipeline retry --source {bad}`: now)")

    # Fixed, then retried now (not at its retry time): processed, the record gone.
    db.execute("UPDATE ingest.track_points SET x = 2.0 WHERE source_id = %s "
               "AND track_id = '1' AND frame = 20", (bad,))
    db.commit()
    retried = runner.invoke(app, ["pipeline", "retry", "--source", str(bad), "--json"])
    assert retried.exit_code == 0, retried.output
    assert json.loads(retried.stdout) == {"retried": [bad]}
    _scheduled(dsn)
    assert _failure(db, bad) is None and _runs(db, bad)[-1] == "ok"
    healthy = db.execute("SELECT failures, retry_at, watermark IS NOT NULL AS ran "
                         "FROM pipeline.status WHERE source_id = %s", (bad,)).fetchone()
    db.commit()
    assert healthy == {"failures": 0, "retry_at": None, "ran": True}
    again = runner.invoke(app, ["pipeline", "retry", "--source", str(bad)])
    assert isinstance(again.exception, UserError)
    assert str(again.exception) == (f"source {bad} is not failing: nothing to retry "
                                    "(`secinf pipeline status` lists the failing ones)")


def test_the_backoff_doubles_from_a_minute_to_at_most_an_hour(db: Conn) -> None:
    rows = db.execute("SELECT n, extract(epoch FROM pipeline.retry_delay(n))::int AS s "
                      "FROM generate_series(1, 9) n ORDER BY n").fetchall()
    assert [r["s"] for r in rows] == [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]


# ---------------------------------------------------------------- a stage that fails
FAILING_STAGE = """
CREATE FUNCTION features.test_failing_stage(p_source bigint, p_from timestamptz,
                                            p_to timestamptz) RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_code text := (SELECT s.attributes ->> 'raise' FROM ingest.sources s
                  WHERE s.source_id = p_source);
BEGIN
  IF v_code IS NOT NULL THEN
    RAISE EXCEPTION 'planted failure of source %', p_source USING ERRCODE = v_code;
  END IF;
  RETURN 0;
END $$;
SELECT pipeline.register_stage('planted',
         'features.test_failing_stage(bigint, timestamptz, timestamptz)', 45);
"""


def _planted(db: Conn, code: str) -> tuple[int, int]:
    """Two sources of two projects; a stage after the feature stages fails for the second
    with SQLSTATE `code`."""
    db.execute("SET ROLE secinf_owner")
    db.execute(FAILING_STAGE)
    db.execute("RESET ROLE")
    good = load_tracks(db, project(db, "good"), _tracks(), 10.0, name="good-cam")
    bad = load_tracks(db, project(db, "bad"), _tracks(), 10.0, name="bad-cam")
    db.execute("UPDATE ingest.sources SET attributes = jsonb_build_object('raise', %s::text) "
               "WHERE source_id = %s", (code, bad))
    db.commit()
    return good, bad


def test_lanes_record_the_failing_stage_and_skip_the_source_until_retried(db: Conn) -> None:
    good, bad = _planted(db, "P0001")
    report = tick(db, until_idle=True, parallel=2)
    assert [(e.source_id, e.stage, e.failures) for e in report.errors] == [(bad, "planted", 1)]
    assert report.errors[0].error == f"planted failure of source {bad}"
    failure = _failure(db, bad)
    assert failure is not None and (failure["stage"], failure["sqlstate"]) == ("planted", "P0001")
    # a lane leaves the source alone until its retry time, unless told to retry it now
    assert not tick(db, until_idle=True, parallel=2).errors
    assert _runs(db, bad) == ["error"]
    again = tick(db, until_idle=True, parallel=2, retry_failing=True)
    assert [(e.source_id, e.failures) for e in again.errors] == [(bad, 2)]
    assert _runs(db, good) == ["ok"]


def test_an_error_of_the_whole_run_still_raises(db: Conn, dsn: str) -> None:
    # Out of memory is not the source's doing: the job fails and nothing is recorded.
    good, bad = _planted(db, "53200")
    with pytest.raises(psycopg.errors.OutOfMemory, match=f"planted failure of source {bad}"):
        _scheduled(dsn)
    assert _failure(db, bad) is None and _runs(db, good) == []
    codes = db.execute("SELECT c, pipeline.is_source_error(c) AS mine FROM unnest(ARRAY["
                       "'22003', 'P0001', 'XX000', '40P01', '57P01', '57014', '53100', "
                       "'58030']) c").fetchall()
    assert {r["c"]: r["mine"] for r in codes} == {
        "22003": True, "P0001": True, "XX000": True, "40P01": True, "57P01": False,
        "57014": False, "53100": False, "58030": False}


def test_a_coordinate_beyond_the_grid_pairs_with_nothing_instead_of_raising(
        db: Conn) -> None:
    # Defence in depth: a track at 1e20 m (finite speeds, but 1e19 cells of 9 m) used to
    # overflow the relations grid key (bigint out of range) in the candidates stage.
    pid = project(db)
    far = _tracks(1e20).filter(pl.col("track_id") == "1").with_columns(
        pl.lit("far").alias("track_id"))
    source = load_tracks(db, pid, pl.concat([_tracks(), far]), 10.0)
    report = tick(db, until_idle=True)
    assert not report.errors, report.errors
    rows = db.execute("SELECT track_id, other_id, count(*) AS n FROM features.pair_rows(%s, "
                      "'-infinity', 'infinity') GROUP BY 1, 2 ORDER BY 1, 2",
                      (source,)).fetchall()
    db.commit()
    assert rows == [{"track_id": "1", "other_id": "2", "n": 50},
                    {"track_id": "2", "other_id": "1", "n": 50}]

