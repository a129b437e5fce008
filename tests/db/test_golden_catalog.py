"""Golden schema, privileges and frozen migrations (issue 21, item 2).

The expected catalog (tables, columns, constraints, indexes, row-level security and its
policies) and the role-object-privilege matrix of the product's schemas are checked in
as text under tests/golden/, and the sha256 of every applied migration in
tests/golden/migrations.sha256 (pgai's frozen.txt). A test compares each with the migrated
template database; a change shows up in review as a readable diff. After a deliberate
change, regenerate them:

    SECINF_UPDATE_GOLDEN=1 .venv/bin/pytest -q tests/db/test_golden_catalog.py   (make golden)

and commit the files with the change. An edit to a migration already in the list is
refused (write a new migration instead); a new migration is added to the list by the same
command."""

from __future__ import annotations

import difflib
import hashlib
import os
from pathlib import Path
from typing import Any

import psycopg
import pytest

from workers.db import migrate as m

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]
GOLDEN = Path(__file__).resolve().parents[1] / "golden"
FROZEN = GOLDEN / "migrations.sha256"
UPDATE = os.environ.get("SECINF_UPDATE_GOLDEN") == "1"
SCHEMAS = ["core", "auth", "audit", "api", "ingest", "features", "rules", "candidates",
           "review", "events", "jobs", "datasets", "billing", "scoring", "pipeline",
           "analytics", "files", "records", "monitoring"]
ROLES = ["anon", "authenticator", "customer", "reviewer", "analyst", "project_admin",
         "pipeline", "secinf_monitor", "ingest_loader"]

CATALOG = """
WITH rels AS (
  SELECT c.oid, n.nspname, c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = ANY (%(schemas)s) AND c.relkind IN ('r', 'p', 'v', 'm')
    AND NOT c.relispartition
)
SELECT line FROM (
  SELECT format('%%s %%s.%%s%%s', CASE r.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'matview'
                                 ELSE 'table' END, r.nspname, r.relname,
                CASE WHEN r.relkind IN ('r', 'p') THEN
                  format(' rls=%%s force=%%s', r.relrowsecurity, r.relforcerowsecurity)
                ELSE '' END) AS line
  FROM rels r
  UNION ALL
  SELECT format('column %%s.%%s.%%s %%s%%s%%s', r.nspname, r.relname, a.attname,
                format_type(a.atttypid, a.atttypmod),
                CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,
                coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), ''))
  FROM rels r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_attrdef d ON d.adrelid = r.oid AND d.adnum = a.attnum
  WHERE r.relkind IN ('r', 'p')
  UNION ALL
  SELECT format('constraint %%s.%%s %%s: %%s', r.nspname, r.relname, co.conname,
                pg_get_constraintdef(co.oid))
  FROM rels r JOIN pg_constraint co ON co.conrelid = r.oid
  UNION ALL
  SELECT format('index %%s', pg_get_indexdef(i.indexrelid))
  FROM rels r JOIN pg_index i ON i.indrelid = r.oid
  UNION ALL
  SELECT format('policy %%s.%%s "%%s" %%s to %%s using (%%s) check (%%s)', p.schemaname,
                p.tablename, p.policyname, p.cmd, array_to_string(p.roles, ','),
                coalesce(p.qual, ''), coalesce(p.with_check, ''))
  FROM pg_policies p WHERE p.schemaname = ANY (%(schemas)s)
) x
ORDER BY line
"""

PRIVILEGES = """
WITH roles AS (SELECT rolname FROM pg_roles WHERE rolname = ANY (%(roles)s)),
objs AS (
  SELECT n.nspname || '.' || c.relname AS name, c.oid, c.relkind
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = ANY (%(schemas)s) AND c.relkind IN ('r', 'p', 'v', 'm')
    AND NOT c.relispartition
)
SELECT line FROM (
  SELECT format('schema %%s %%s: %%s', n.nspname, r.rolname,
                concat_ws(',', CASE WHEN has_schema_privilege(r.rolname, n.oid, 'USAGE')
                                    THEN 'USAGE' END,
                               CASE WHEN has_schema_privilege(r.rolname, n.oid, 'CREATE')
                                    THEN 'CREATE' END)) AS line
  FROM pg_namespace n CROSS JOIN roles r WHERE n.nspname = ANY (%(schemas)s)
  UNION ALL
  SELECT format('relation %%s %%s: %%s', o.name, r.rolname, p.privs)
  FROM objs o CROSS JOIN roles r
  CROSS JOIN LATERAL (SELECT concat_ws(',',
      CASE WHEN has_table_privilege(r.rolname, o.oid, 'SELECT') THEN 'SELECT' END,
      CASE WHEN has_table_privilege(r.rolname, o.oid, 'INSERT') THEN 'INSERT' END,
      CASE WHEN has_table_privilege(r.rolname, o.oid, 'UPDATE') THEN 'UPDATE' END,
      CASE WHEN has_table_privilege(r.rolname, o.oid, 'DELETE') THEN 'DELETE' END,
      CASE WHEN has_table_privilege(r.rolname, o.oid, 'TRUNCATE') THEN 'TRUNCATE' END,
      CASE WHEN has_any_column_privilege(r.rolname, o.oid, 'SELECT')
                AND NOT has_table_privilege(r.rolname, o.oid, 'SELECT')
           THEN 'SELECT(columns)' END,
      CASE WHEN has_any_column_privilege(r.rolname, o.oid, 'UPDATE')
                AND NOT has_table_privilege(r.rolname, o.oid, 'UPDATE')
           THEN 'UPDATE(columns)' END) AS privs) p
  WHERE p.privs <> ''
  UNION ALL
  SELECT format('function %%s %%s: EXECUTE', f.oid::regprocedure, r.rolname)
  FROM pg_proc f JOIN pg_namespace n ON n.oid = f.pronamespace CROSS JOIN roles r
  WHERE n.nspname = ANY (%(schemas)s) AND has_function_privilege(r.rolname, f.oid, 'EXECUTE')
) x
ORDER BY line
"""


def _lines(db: Conn, query: str) -> list[str]:
    """The query's lines, each on one line (expressions the server prints over several
    lines collapse to single spaces), sorted."""
    rows = db.execute(query, {"schemas": SCHEMAS, "roles": ROLES}).fetchall()
    db.rollback()
    return sorted(" ".join(str(r["line"]).split()) for r in rows)


def _compare(name: str, actual: list[str]) -> None:
    path = GOLDEN / name
    text = "\n".join(actual) + "\n"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), (f"{path} is missing: run `make golden` (SECINF_UPDATE_GOLDEN=1) "
                           "and commit it")
    expected = path.read_text(encoding="utf-8").splitlines()
    diff = list(difflib.unified_diff(expected, actual, f"{name} (checked in)",
                                     f"{name} (this database)", lineterm="", n=0))
    assert not diff, ("the database differs from tests/golden/" + name + "; if the change is "
                      "meant, run `make golden` and commit the file:\n" + "\n".join(diff[:200]))


def test_the_catalog_is_the_golden_one(db: Conn) -> None:
    _compare("catalog.expected", _lines(db, CATALOG))


def test_the_privileges_are_the_golden_ones(db: Conn) -> None:
    _compare("privileges.expected", _lines(db, PRIVILEGES))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_applied_migrations_are_frozen() -> None:
    files = sorted(p for p in m.MIGRATIONS_DIR.glob("*.sql"))
    actual = [f"{_sha256(p)}  {p.name}" for p in files]
    if UPDATE:
        frozen = ({line.split("  ", 1)[1]: line for line in FROZEN.read_text().splitlines()}
                  if FROZEN.exists() else {})
        edited = [name for name, line in frozen.items()
                  if (m.MIGRATIONS_DIR / name).exists()
                  and line != f"{_sha256(m.MIGRATIONS_DIR / name)}  {name}"]
        assert not edited, f"frozen migrations were edited: {edited}; revert them"
        FROZEN.write_text("\n".join(actual) + "\n", encoding="utf-8")
        return
    assert FROZEN.exists(), "tests/golden/migrations.sha256 is missing: run `make golden`"
    frozen = dict(line.split("  ", 1)[::-1] for line in FROZEN.read_text().splitlines())
    edited = [p.name for p in files if p.name in frozen and frozen[p.name] != _sha256(p)]
    assert not edited, (f"migrations already applied somewhere were edited: {edited}. Revert "
                        "the edit and write a new migration instead (docs/operations.md, "
                        "'Migrations').")
    new = [p.name for p in files if p.name not in frozen]
    assert not new, f"new migrations not yet frozen: {new}; run `make golden` and commit"
    gone = sorted(set(frozen) - {p.name for p in files})
    assert not gone, f"frozen migrations were deleted: {gone}"
