"""The Records page: retention per category, what retention runs deleted, legal holds and
erasures; first as pure shaping of rows, then as the people who use it (AppTest), with the
records written through the records functions as an operator."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from applib import records_view as rv

from tests.app.conftest import app_test
from tests.support.factories import make_key
from workers.appdb import AppDB, Identity
from workers.records import erasure, holds, retention

Conn = psycopg.Connection[dict[str, Any]]
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def test_rows_in_words_and_the_runs_chart() -> None:
    assert [rv.kept_text({"forever": f, "keep": k}) for f, k in
            ((True, None), (False, "30 days"), (False, "2 years"))] == [
        "forever", "30 days", "2 years"]
    frame = rv.retention_frame([{"category": "events", "keep": "1 year", "forever": False,
                                 "source": "plan", "set_by": None, "reason": None,
                                 "description": "events.events"}])
    assert list(frame.columns) == rv.RETENTION_COLUMNS
    assert frame.to_dict("records")[0]["from"] == "the plan"
    run = {"run_id": 3, "started_at": T0, "status": "ok", "category": "track_points",
           "relation": "ingest.track_points", "method": "delete", "cutoff": T0, "rows": 12,
           "seconds": 0.123}
    assert rv.runs_frame([run]).to_dict("records")[0]["rows"] == 12
    spec = rv.runs_chart([run, {**run, "category": "events", "rows": 3}]).to_dict()
    assert spec["mark"]["type"] == "bar" and spec["encoding"]["y"]["aggregate"] == "sum"
    hold = {"hold_id": 1, "source": "cam-1", "from_ts": T0, "to_ts": None, "reason": "case",
            "set_by": "op", "set_at": T0, "active": True, "lifted_by": None, "lifted_at": None,
            "lift_reason": None}
    assert rv.scope_text(hold) == "source cam-1, 2026-11-01 00:00 to …"
    assert rv.scope_text({**hold, "source": None, "from_ts": None}) == "the whole project"
    assert rv.active_holds_text([hold]).startswith("1 legal hold active")  # type: ignore[union-attr]
    assert rv.active_holds_text([{**hold, "active": False}]) is None


def _who(app_db: AppDB, db: Conn, project: str, role: str) -> Identity:
    return app_db.sign_in_key(str(make_key(db, project, role)["api_key"]))


def _records(db: Conn, project: str) -> None:
    """A retention setting, a lifted and an active hold, an erasure, a retention run."""
    retention.set_retention(db, project, "events", "2 years", "contract 7")
    old = holds.set_hold(db, project, "case 1")
    holds.lift_hold(db, project, old["hold_id"], "case 1 closed")
    row = db.execute("SELECT s.name, p.track_id FROM ingest.track_points p JOIN ingest.sources s"
                     " USING (source_id) WHERE p.project_id = %s ORDER BY p.ts LIMIT 1",
                     (project,)).fetchone()
    assert row is not None
    db.rollback()
    stone = erasure.request(db, project, "DSR-1", source=row["name"], track=row["track_id"])
    erasure.run(db, int(stone["tombstone_id"]))
    holds.set_hold(db, project, "case 2", source=row["name"],
                   from_ts=datetime(1990, 1, 1, tzinfo=UTC), to_ts=datetime(1991, 1, 1, tzinfo=UTC))
    retention.run(db, at=datetime.now(UTC) + timedelta(days=800))


@pytest.mark.db
def test_a_project_admin_sees_retention_runs_holds_and_erasures(
        app_db: AppDB, db: Conn, project: str, other_project: str) -> None:
    _records(db, project)
    at = app_test("pages/9_Records.py", _who(app_db, db, project, "project_admin")).run()
    assert not at.exception and not at.error
    assert at.title[0].value == "Records"
    kept = {r["category"]: r for r in at.dataframe[0].value.to_dict("records")}
    assert kept["events"]["kept"] == "2 years" and kept["events"]["from"] == "the project's own"
    assert kept["track_points"]["kept"] == "30 days"
    [warning] = [w.value for w in at.warning]
    assert warning.startswith("1 legal hold active")
    hold_rows = at.dataframe[1].value.to_dict("records")
    assert [h["reason"] for h in hold_rows] == ["case 2", "case 1"]
    assert hold_rows[1]["state"].startswith("lifted ") and "case 1 closed" in hold_rows[1]["state"]
    runs = at.dataframe[2].value
    assert runs["rows"].sum() > 0 and set(runs["how"]) <= {"delete", "drop_chunks", "held",
                                                           "expire"}
    charts = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    assert charts and charts[0]["mark"]["type"] == "bar"
    [stone] = at.dataframe[3].value.to_dict("records")
    assert stone["status"] == "done" and stone["rows deleted"] > 0 and stone["reason"] == "DSR-1"
    # Another project's admin sees none of it.
    other = app_test("pages/9_Records.py", _who(app_db, db, other_project, "project_admin")).run()
    assert not other.exception and not other.error
    assert rv.NO_HOLDS in [i.value for i in other.info]
    assert rv.NO_TOMBSTONES in [i.value for i in other.info]


@pytest.mark.db
def test_roles_see_what_their_grants_allow(app_db: AppDB, db: Conn, project: str) -> None:
    customer = app_test("pages/9_Records.py", _who(app_db, db, project, "customer")).run()
    assert not customer.exception and not customer.error
    assert len(customer.dataframe) == 1 and rv.ADMIN_ONLY in [c.value for c in customer.caption]
    reviewer = app_test("pages/9_Records.py", _who(app_db, db, project, "reviewer")).run()
    assert not reviewer.exception and not reviewer.error
    assert [i.value for i in reviewer.info] == [rv.not_for_role("reviewer")]
    assert not reviewer.dataframe
