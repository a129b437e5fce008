"""The delivery half of `secinf demo` on a real (short) scene: review settings, auto-accept,
analytics refresh, a dataset published once per change, and the API query as a customer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from tests.support.tenant_data import populate_pipeline
from workers import tenancy
from workers.appdb.session import AppDB
from workers.cli import demo_delivery as delivery
from workers.cli.main import app
from workers.errors import UserError
from workers.review import settings as review_settings

pytestmark = [pytest.mark.db, pytest.mark.slow]
Conn = psycopg.Connection[dict[str, Any]]


@pytest.fixture
def scene(db: Conn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    monkeypatch.setenv("SECINF_DATASETS_DIR", str(tmp_path / "datasets"))
    project = tenancy.create_project(db, "deliv", "plaza")
    pid = str(project["project_id"])
    populate_pipeline(db, pid, "deliv", tmp_path)
    # What the worker would write: a model score per candidate (rule_score stands in).
    db.execute("UPDATE candidates.candidates SET model_score = rule_score,"
               " model_version = 'test', status = 'scored' WHERE project_id = %s", (pid,))
    db.commit()
    return "deliv/plaza", pid


def test_settings_validate_and_change_only_what_is_given(db: Conn, scene: tuple[str, str]
                                                         ) -> None:
    ref, _ = scene
    row = review_settings.update(db, ref, auto_accept_model="0.7")
    assert (row["auto_accept_model"], row["second_opinion_share"]) == (0.7, 0.2)
    row = review_settings.update(db, ref, second_opinion_share=0.5, auto_accept_rule="off")
    assert (row["auto_accept_model"], row["second_opinion_share"],
            row["auto_accept_rule"]) == (0.7, 0.5, None)
    for bad in ("1.5", "high"):
        with pytest.raises(UserError, match="--auto-accept-model"):
            review_settings.update(db, ref, auto_accept_model=bad)
    with pytest.raises(UserError, match="--second-opinion-share"):
        review_settings.update(db, ref, second_opinion_share=-0.1)


def test_settings_cli_rejects_bad_threshold(secinf_env: str, scene: tuple[str, str]) -> None:
    result = CliRunner().invoke(app, ["review", "settings", "-p", scene[0],
                                      "--auto-accept-rule", "nope"])
    assert isinstance(result.exception, UserError) and result.exception.exit_code == 2
    assert "--auto-accept-rule 'nope'" in str(result.exception)
    result = CliRunner().invoke(app, ["review", "settings", "-p", scene[0], "--json",
                                      "--auto-accept-rule", "0.9"])
    assert result.exit_code == 0 and '"auto_accept_rule": 0.9' in result.output


def test_demo_delivery_end_to_end(db: Conn, dsn: str, secinf_env: str,
                                  scene: tuple[str, str]) -> None:
    ref, pid = scene
    events = delivery.verify_events(db, ref, pid)
    total = sum(r["events"] for r in events)
    expected = db.execute("SELECT count(*) AS n FROM candidates.candidates WHERE project_id = %s"
                          " AND model_score >= 0.8", (pid,)).fetchone()
    assert expected is not None and total == expected["n"] > 0
    assert all(r["model"] == r["events"] for r in events)
    assert delivery.verify_events(db, ref, pid) == events        # promote is idempotent
    assert delivery.refresh_analytics(db) >= 0

    first = delivery.publish_dataset(db, ref, pid)
    assert (first["status"], first["unchanged"], first["events"]) == ("published", False, total)
    again = delivery.publish_dataset(db, ref, pid)
    assert (again["version"], again["unchanged"]) == (first["version"], True)
    # One more verified event → the next run publishes a new version.
    db.execute("UPDATE review.settings SET auto_accept_model = 0.5 WHERE project_id = %s", (pid,))
    db.execute("SELECT events.promote(%s)", (pid,))
    db.commit()
    after = delivery.publish_dataset(db, ref, pid)
    assert not after["unchanged"] and after["version"] != first["version"]

    key = tenancy.create_key(db, ref, "customer", "1d", "deliv")
    app_db = AppDB.from_settings()
    try:
        rows = delivery.api_sample(app_db, key["api_key"])
    finally:
        app_db.close()
    assert 0 < len(rows) <= 5
    assert {r["verification"] for r in rows} == {"model"}
