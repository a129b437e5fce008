"""Migrations build the schema from nothing, re-applying is a no-op, rollbacks work."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from workers.db import migrate as m

pytestmark = pytest.mark.db

CATALOG_SNAPSHOT = """
SELECT 'rel' AS kind, n.nspname || '.' || c.relname || ':' || c.relkind::text AS name,
       coalesce((SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                                   || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,
                                   ', ' ORDER BY a.attnum)
                 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
                   AND NOT a.attisdropped), '') AS detail
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND n.nspname NOT LIKE '\\_timescaledb%%' AND n.nspname NOT LIKE 'pg_temp%%'
  AND n.nspname NOT LIKE 'pg_toast_temp%%' AND n.nspname <> 'timescaledb_information'
  AND n.nspname <> 'timescaledb_experimental'
UNION ALL
SELECT 'fn',
       n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       md5(p.prosrc) || coalesce(array_to_string(p.proconfig, ','), '') || p.prosecdef::text
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname IN ('core', 'auth', 'audit', 'api', 'ingest', 'features', 'rules', 'candidates',
                    'review', 'events', 'jobs', 'datasets', 'billing', 'scoring', 'pipeline')
UNION ALL
SELECT 'policy', schemaname || '.' || tablename || ':' || policyname,
       coalesce(qual, '') || coalesce(with_check, '') || array_to_string(roles, ',')
FROM pg_policies
UNION ALL
SELECT 'acl', n.nspname || '.' || c.relname, coalesce(c.relacl::text, '')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname IN ('core', 'auth', 'audit', 'api', 'ingest', 'features', 'rules', 'candidates',
                    'review', 'events', 'jobs', 'datasets', 'billing', 'scoring', 'pipeline')
ORDER BY 1, 2
"""


def snapshot(conn: psycopg.Connection[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(r["kind"], r["name"], r["detail"]) for r in conn.execute(CATALOG_SNAPSHOT)]


def test_migrations_build_from_empty_and_reapply_is_a_no_op(
    dsn: str, db: psycopg.Connection[dict[str, Any]]
) -> None:
    before = snapshot(db)
    db.rollback()
    assert any(name.startswith("core.api_keys") for _, name, _ in before)
    assert m.pending(dsn) == []
    report = m.migrate(dsn)
    assert report.applied == []
    db.rollback()
    assert snapshot(db) == before


def test_every_migration_is_recorded_and_has_a_rollback() -> None:
    ids = [p.stem for p in m.MIGRATIONS_DIR.glob("*.sql") if not p.stem.endswith(".rollback")]
    assert ids, "no migrations found"
    for mid in ids:
        assert (m.MIGRATIONS_DIR / f"{mid}.rollback.sql").exists(), f"{mid} has no rollback"


def test_rollback_then_reapply_reproduces_the_schema(
    dsn: str, db: psycopg.Connection[dict[str, Any]]
) -> None:
    before = snapshot(db)
    db.rollback()
    applied = [p.stem for p in sorted(m.MIGRATIONS_DIR.glob("*.sql"))
               if not p.stem.endswith(".rollback")]
    # Undo everything but the extensions (0001), then build again.
    undone = m.rollback_migrations(dsn, count=len(applied) - 1)
    assert len(undone) == len(applied) - 1
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        assert conn.execute("SELECT to_regclass('core.projects') AS r").fetchone()["r"] is None  # type: ignore[index]
    m.migrate(dsn)
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        after = snapshot(conn)
    assert after == before


def test_render_sql_inlines_plpython_without_future_imports() -> None:
    text = m.render_sql("AS $$\n{{plpython:jwt_tokens}}\nreturn sign(a, b)\n$$")
    assert "def sign(" in text
    assert "from __future__" not in text
