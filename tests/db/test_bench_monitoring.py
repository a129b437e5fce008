"""`secinf bench monitoring` on tiny data: every query of the exporter's queries file timed
as secinf_monitor on the current database. Milliseconds are printed, never asserted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from tests.support.factories import make_project
from workers.bench.monitoring_bench import QUERIES_FILE, bench_monitoring, load_queries
from workers.cli.main import app
from workers.errors import UserError
from workers.queue import client

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]


def test_bench_monitoring_times_every_exporter_query(db: Conn, dsn: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    project = make_project(db, "acme", "plaza")
    db.execute("INSERT INTO ingest.sources (project_id, name, fps) VALUES (%s, 'cam', 10)",
               (project,))
    client.enqueue(db, project, "noop")
    db.commit()
    result = bench_monitoring(repeat=2, conninfo=dsn)
    names = [q["name"] for q in result["queries"]]
    assert names == list(load_queries(QUERIES_FILE))
    rows = {q["name"]: q["rows"] for q in result["queries"]}
    assert rows["secinf_pipeline"] == 1 and rows["secinf_queue"] == 1
    for q in result["queries"]:
        assert 0 < q["median_ms"] <= q["max_ms"] and q["execution_ms"] >= 0
        assert q["within_target"] == (q["max_ms"] < 50)
    printed = capsys.readouterr().out
    assert "target < 50 ms" in printed and "secinf_queue" in printed


def test_the_cli_prints_json_and_names_a_bad_queries_file(secinf_env: str,
                                                          tmp_path: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(app, ["bench", "monitoring", "--repeat", "1", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["target_ms"] == 50.0
    missing = tmp_path / "nope.yaml"
    done = runner.invoke(app, ["bench", "monitoring", "--queries", str(missing)])
    assert isinstance(done.exception, UserError)  # the console script prints it, exit 2
    assert str(done.exception).startswith(
        f"cannot read the exporter's queries file {missing}: No such file or directory")
    broken = tmp_path / "broken.yaml"
    broken.write_text("secinf_x:\n  query: SELECT * FROM monitoring.no_such_view\n"
                      "  metrics: []\n")
    done = runner.invoke(app, ["bench", "monitoring", "--queries", str(broken)])
    assert isinstance(done.exception, UserError)
    assert str(done.exception).startswith(
        "exporter query secinf_x failed as secinf_monitor: relation "
        '"monitoring.no_such_view" does not exist')
