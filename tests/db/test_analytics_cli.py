"""`secinf analytics refresh|export` on known events (tests/db/analytics_data.py)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from tests.db.analytics_data import build
from workers.cli.analytics_cmd import app
from workers.errors import UserError

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]


def test_refresh_then_export_a_projects_metrics(db: Conn, secinf_env: str,
                                                tmp_path: Path) -> None:
    data = build(db)
    runner = CliRunner()
    done = runner.invoke(app, ["refresh", "--json"])
    assert done.exit_code == 0, done.output
    assert [v["concurrent"] for v in json.loads(done.output)] == [False] * 7

    out = runner.invoke(app, ["export", "-p", "acme/analytics-a", "--out", str(tmp_path),
                              "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["source_ids"] == [data.sources["a1"], data.sources["a2"]]
    assert sum(r["events"] for r in doc["class_balance"]) == 26  # none of project B's
    with (tmp_path / "route_shares.csv").open() as f:
        assert list(csv.reader(f)) == ([["zone", "route", "choices", "share"],
                                       ["fork", "north", "3", "0.6"],
                                       ["fork", "south", "2", "0.4"],
                                       ["plaza", "east", "2", "1"]])  # jsonb: 1.0 is 1
    follow = (tmp_path / "follow_rate.csv").read_text().splitlines()
    assert follow[0] == "source_id,source_name,day,follows,actors,rate"
    assert follow[-1] == f"{data.sources['a2']},a2,2026-03-05,1,0,"  # no actors: no rate
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["events_over_time.csv", "dwell_histogram.csv", "follow_rate.csv", "route_shares.csv",
         "reaction_latency.csv", "class_balance.csv"])

    a2 = json.loads(runner.invoke(app, ["export", "-p", "acme/analytics-a", "-s", "a2",
                                        "--from", "2026-03-02", "--to", "2026-03-03",
                                        "--json"]).output)
    assert a2["bucket"] == "hour" and a2["source_ids"] == [data.sources["a2"]]
    assert sum(r["events"] for r in a2["class_balance"]) == 4

    table = runner.invoke(app, ["export", "-p", "acme/analytics-a"])
    assert table.exit_code == 0 and "class_balance" in table.output


@pytest.mark.parametrize(("args", "message"), [
    (["-s", "b1"], "no source b1 in this project"),
    (["--from", "2026-03-03", "--to", "2026-03-02"], "is not before --to"),
    (["--from", "yesterday"], "--from 'yesterday' is not an ISO 8601 time"),
    (["-p", "acme/nothing"], 'unknown project "acme/nothing"'),
])
def test_export_refuses_bad_input_with_a_message(db: Conn, secinf_env: str, args: list[str],
                                                 message: str) -> None:
    build(db)
    result = CliRunner().invoke(app, ["export", "-p", "acme/analytics-a", *args])
    assert isinstance(result.exception, UserError)
    assert message in str(result.exception)
