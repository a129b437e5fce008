"""`secinf rules load|show|backfill` and `secinf evaluate` through their typer functions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
import typer
from typer.testing import CliRunner

from tests.support.factories import make_project
from workers.cli.rules_cmd import app as rules_app
from workers.cli.rules_cmd import evaluate_command
from workers.errors import UserError
from workers.rules.ontology import DEFAULT_PATH, OntologyError

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]

cli = typer.Typer()
cli.add_typer(rules_app, name="rules")
cli.command("evaluate")(evaluate_command)


def test_load_show_backfill_evaluate(db: Conn, secinf_env: str, tmp_path: Path) -> None:
    make_project(db, "acme", "cli")
    runner = CliRunner()
    out = runner.invoke(cli, ["rules", "load", str(DEFAULT_PATH), "--project", "acme/cli",
                              "--json"])
    assert out.exit_code == 0, out.output
    loaded = json.loads(out.stdout)
    assert loaded["version"] == 4 and loaded["rules"] == 11 and loaded["created"]

    out = runner.invoke(cli, ["rules", "show", "--project", "acme/cli", "--json", "--sql"])
    shown = json.loads(out.stdout)
    assert [o["version"] for o in shown["ontologies"]] == [4]
    assert {c["type"] for c in shown["compiled"]} >= {"stop", "startle"}

    db.execute("INSERT INTO ingest.sources (project_id, name, fps) "
               "SELECT project_id, 'cam-1', 10 FROM core.projects WHERE slug = 'cli'")
    db.commit()
    out = runner.invoke(cli, ["rules", "backfill", "--project", "acme/cli", "--json"])
    assert json.loads(out.stdout) == {"sources": {"cam-1": 0}, "inserted": 0}

    truth = tmp_path / "truth.json"
    truth.write_text(json.dumps({"events": [
        {"type": "stop", "actors": {"actor": "1"}, "start": 1.0, "end": 4.0}]}))
    out = runner.invoke(cli, ["evaluate", "--truth", str(truth), "--source", "cam-1",
                              "--project", "acme/cli", "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    assert report["per_type"]["stop"] == {"tp": 0, "fp": 0, "fn": 1, "precision": 1.0,
                                          "recall": 0.0, "f1": 0.0}


def test_user_errors(db: Conn, secinf_env: str, tmp_path: Path) -> None:
    make_project(db, "acme", "bad")
    bad = tmp_path / "bad.yaml"
    bad.write_text(DEFAULT_PATH.read_text().replace("speed < 0.2", "speed < version()"))
    out = CliRunner().invoke(cli, ["rules", "load", str(bad), "--project", "acme/bad"])
    assert isinstance(out.exception, OntologyError)
    assert "bad.yaml:" in str(out.exception) and "types.stop.condition" in str(out.exception)
    out = CliRunner().invoke(cli, ["evaluate", "--truth", str(tmp_path / "none.json"),
                                   "--source", "x"])
    assert isinstance(out.exception, UserError) and "cannot read truth" in str(out.exception)
