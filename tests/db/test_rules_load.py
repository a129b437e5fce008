"""Loading ontologies: versions, compiled SQL, settings, refusals, grants and RLS."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
import yaml

from tests.support.factories import make_project
from workers import tenancy
from workers.errors import NotFound, UserError
from workers.rules import store
from workers.rules.ontology import DEFAULT_PATH, load_ontology, parse_ontology
from workers.simulate import EVENT_TYPES

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]


def _next_version(text: str) -> str:
    """The next version of the ontology `text`, with two values changed."""
    data = yaml.safe_load(text)
    data["version"] += 1
    data["types"]["stop"]["min_duration_s"] = 2.5
    data["features"]["smoothing_s"] = 0.7
    return yaml.safe_dump(data, sort_keys=False)


def test_load_versions_compile_and_settings(db: Conn) -> None:
    pid = make_project(db, "acme", "rules")
    onto = load_ontology(DEFAULT_PATH)
    first = store.load(db, pid, onto)
    assert first.created and first.rules == len(EVENT_TYPES)
    again = store.load(db, pid, onto)
    assert (again.ontology_id, again.created) == (first.ontology_id, False)
    types = [r["type"] for r in db.execute(
        "SELECT type FROM rules.compiled WHERE ontology_id = %s ORDER BY position",
        (first.ontology_id,)).fetchall()]
    assert types == list(EVENT_TYPES)
    setting = db.execute("SELECT value FROM pipeline.settings WHERE project_id = %s AND "
                         "key = 'smoothing_s'", (pid,)).fetchone()
    assert setting == {"value": 1.0}

    second = store.load(db, pid, parse_ontology(_next_version(onto.text), "next.yaml"))
    assert second.version == onto.version + 1 and second.ontology_id != first.ontology_id
    rows = store.list_ontologies(db, pid)
    assert [(r["version"], r["active"]) for r in rows] == [(onto.version, False),
                                                            (onto.version + 1, True)]
    sql = {r["type"]: r["sql"] for r in store.compiled_sql(db, pid)}
    assert "2.5::float8" in sql["stop"]
    assert db.execute("SELECT value FROM pipeline.settings WHERE project_id = %s AND "
                      "key = 'smoothing_s'", (pid,)).fetchone() == {"value": 0.7}

    changed = onto.text.replace("min_duration_s: 8.0", "min_duration_s: 9.0")
    with pytest.raises(UserError, match="already loaded with different content"):
        store.load(db, pid, parse_ontology(changed, "v1b.yaml"))
    with pytest.raises(NotFound, match="unknown project"):
        tenancy.resolve_project(db, "nobody/nothing")


def test_rule_sql_runs_on_empty_source_and_backfill_needs_ontology(db: Conn) -> None:
    pid = make_project(db, "acme", "empty")
    with pytest.raises(NotFound, match="no ontology loaded"):
        store.backfill(db, pid)
    store.load(db, pid, load_ontology(DEFAULT_PATH))
    db.execute("INSERT INTO ingest.sources (project_id, name, fps) VALUES (%s, 'cam', 10)",
               (pid,))
    db.commit()
    assert store.backfill(db, pid) == {"cam": 0}
    src = db.execute("SELECT source_id FROM ingest.sources WHERE name = 'cam'").fetchone()
    assert src is not None
    n = db.execute("SELECT candidates.run_rules(%s, '-infinity', 'infinity') AS n",
                   (src["source_id"],)).fetchone()
    assert n == {"n": 0}


def test_grants_and_rls(db: Conn) -> None:
    mine = make_project(db, "acme", "mine")
    other = make_project(db, "acme", "other")
    for pid in (mine, other):
        store.load(db, pid, load_ontology(DEFAULT_PATH))
    claims = json.dumps({"role": "analyst", "project_id": mine})
    db.execute("SET ROLE analyst")
    db.execute("SELECT set_config('request.jwt.claims', %s, false)", (claims,))
    seen = {str(r["project_id"]) for r in
            db.execute("SELECT project_id FROM rules.ontologies").fetchall()}
    assert seen == {mine}
    with pytest.raises(psycopg.errors.InsufficientPrivilege,
                       match="permission denied for table compiled"):
        db.execute("SELECT sql FROM rules.compiled")
    db.rollback()
    db.execute("SET ROLE pipeline")
    with pytest.raises(psycopg.errors.InsufficientPrivilege,
                       match="permission denied for table compiled"):
        db.execute("INSERT INTO rules.compiled (ontology_id, project_id, type, kind, position,"
                   " lookback_s, sql, sha256) SELECT ontology_id, project_id, 'x', 'x', 99, 0,"
                   " 'SELECT 1', repeat('0', 64) FROM rules.ontologies LIMIT 1")
    db.rollback()
    db.execute("SET ROLE project_admin")
    with pytest.raises(psycopg.errors.InsufficientPrivilege,
                       match="permission denied for table candidates"):
        db.execute("INSERT INTO candidates.candidates (project_id) VALUES (%s)", (mine,))
    db.rollback()
