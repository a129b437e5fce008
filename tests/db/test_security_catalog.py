"""Catalog invariants of the security model, checked on the fully migrated schema."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

pytestmark = pytest.mark.db

OUR_SCHEMAS = ("core", "auth", "audit", "api", "ingest", "features", "rules", "candidates",
               "review", "events", "jobs", "datasets", "billing", "scoring", "pipeline",
               "analytics", "monitoring")
RLS_BOUND = ("anon", "customer", "reviewer", "analyst", "project_admin")
APP_ROLES = ("authenticator", *RLS_BOUND, "pipeline")

Conn = psycopg.Connection[dict[str, Any]]


def test_every_api_view_is_security_invoker(db: Conn) -> None:
    rows = db.execute(
        """SELECT c.relname, c.reloptions FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'api' AND c.relkind IN ('v', 'm')"""
    ).fetchall()
    assert rows, "api has no views"
    offenders = [r["relname"] for r in rows
                 if "security_invoker=true" not in (r["reloptions"] or [])]
    assert offenders == [], f"api views without security_invoker=true: {offenders}"


def test_every_tenant_table_has_rls_enabled_and_forced(db: Conn) -> None:
    rows = db.execute(
        """SELECT n.nspname || '.' || c.relname AS rel, c.relrowsecurity, c.relforcerowsecurity
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%s)
             AND EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid
                         AND a.attname = 'project_id' AND NOT a.attisdropped)""",
        (list(OUR_SCHEMAS),),
    ).fetchall()
    assert len(rows) >= 10
    bad = [r["rel"] for r in rows if not (r["relrowsecurity"] and r["relforcerowsecurity"])]
    assert bad == [], f"tenant tables without forced RLS: {bad}"


def test_no_application_role_owns_anything(db: Conn) -> None:
    rows = db.execute(
        """SELECT n.nspname || '.' || c.relname AS rel, pg_get_userbyid(c.relowner) AS owner
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'p', 'v', 'm', 'S')""",
        (list(OUR_SCHEMAS),),
    ).fetchall()
    owners = {r["owner"] for r in rows}
    assert owners == {"secinf_owner"}, {r["rel"]: r["owner"] for r in rows
                                        if r["owner"] != "secinf_owner"}
    funcs = db.execute(
        """SELECT p.oid::regprocedure::text AS fn, pg_get_userbyid(p.proowner) AS owner
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = ANY(%s)""", (list(OUR_SCHEMAS),)).fetchall()
    assert not [f for f in funcs if f["owner"] in APP_ROLES]


def test_no_function_is_executable_by_public(db: Conn) -> None:
    rows = db.execute(
        """SELECT p.oid::regprocedure::text AS fn
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = ANY(%s)
             AND has_function_privilege('public', p.oid, 'EXECUTE')""",
        (list(OUR_SCHEMAS),),
    ).fetchall()
    # has_function_privilege('public', …) is true only through a grant to PUBLIC.
    assert [r["fn"] for r in rows] == []


def test_default_privileges_revoke_execute_from_public(db: Conn) -> None:
    row = db.execute(
        """SELECT defaclacl::text AS acl FROM pg_default_acl
           WHERE defaclrole = 'secinf_owner'::regrole AND defaclobjtype = 'f'
             AND defaclnamespace = 0"""
    ).fetchone()
    assert row is not None
    # The ACL lists only the owner: no '=X/' entry (an empty grantee means PUBLIC).
    assert row["acl"] == "{secinf_owner=X/secinf_owner}"
    db.execute("SET ROLE secinf_owner")
    db.execute("CREATE FUNCTION core.tmp_probe() RETURNS int LANGUAGE sql AS 'SELECT 1'")
    assert not db.execute(
        "SELECT has_function_privilege('public', 'core.tmp_probe()', 'EXECUTE') AS x"
    ).fetchone()["x"]  # type: ignore[index]


def test_security_definer_functions_pin_search_path(db: Conn) -> None:
    rows = db.execute(
        """SELECT p.oid::regprocedure::text AS fn, p.proconfig
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = ANY(%s) AND p.prosecdef""", (list(OUR_SCHEMAS),)).fetchall()
    assert rows
    bad = [r["fn"] for r in rows
           if not any(c.startswith("search_path=") for c in (r["proconfig"] or []))]
    assert bad == []


def test_rls_bound_roles_hold_no_table_privilege_on_hypertables_or_chunks(db: Conn) -> None:
    # Chunks have no RLS: any privilege there would be a side door (020_hypertable_access.sql).
    db.execute("SELECT auth.lock_down_chunks()")
    rows = db.execute(
        """SELECT c.oid::regclass::text AS rel, r.rolname, 'table' AS level
           FROM pg_class c CROSS JOIN pg_roles r
           WHERE r.rolname = ANY(%(roles)s)
             AND (c.oid IN (SELECT format('%%I.%%I', hypertable_schema, hypertable_name)::regclass
                            FROM timescaledb_information.hypertables)
                  OR c.oid IN (SELECT format('%%I.%%I', chunk_schema, chunk_name)::regclass
                               FROM timescaledb_information.chunks))
             AND has_table_privilege(r.rolname, c.oid, 'SELECT, INSERT, UPDATE, DELETE')
           UNION ALL
           SELECT c.oid::regclass::text, r.rolname, 'column'
           FROM pg_class c CROSS JOIN pg_roles r
           WHERE r.rolname = ANY(%(roles)s)
             AND c.oid IN (SELECT format('%%I.%%I', chunk_schema, chunk_name)::regclass
                           FROM timescaledb_information.chunks)
             AND has_any_column_privilege(r.rolname, c.oid, 'SELECT, INSERT, UPDATE')""",
        {"roles": list(RLS_BOUND)},
    ).fetchall()
    assert rows == []


def test_audit_log_is_append_only(db: Conn) -> None:
    db.execute("SELECT audit.record(NULL, 'test.action', 'x', '{}')")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        db.execute("UPDATE audit.log SET action = 'changed'")
    db.rollback()
    db.execute("SELECT audit.record(NULL, 'test.action', 'x', '{}')")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        db.execute("DELETE FROM audit.log")


def test_every_view_anywhere_is_security_invoker(db: Conn) -> None:
    # A definer-rights view in any of our schemas would bypass RLS for whoever reads it.
    rows = db.execute(
        """SELECT n.nspname || '.' || c.relname AS rel, c.reloptions FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = ANY(%s) AND c.relkind = 'v'""", (list(OUR_SCHEMAS),)).fetchall()
    bad = [r["rel"] for r in rows if "security_invoker=true" not in (r["reloptions"] or [])]
    assert bad == []


def test_no_rls_bound_role_reads_a_materialized_view(db: Conn) -> None:
    # Materialized views cannot carry RLS: only security_invoker views over them may be exposed.
    rows = db.execute(
        """SELECT n.nspname || '.' || c.relname AS rel, r.rolname FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace CROSS JOIN pg_roles r
           WHERE c.relkind = 'm' AND r.rolname = ANY(%s)
             AND has_table_privilege(r.rolname, c.oid, 'SELECT')""",
        (list(RLS_BOUND),)).fetchall()
    assert rows == []


def test_a_table_level_grant_on_a_hypertable_is_turned_into_column_grants(db: Conn) -> None:
    db.execute("GRANT SELECT ON ingest.track_points TO reviewer")
    db.execute("INSERT INTO ingest.track_points (project_id, source_id, track_id, frame, ts, x, y,"
               " batch_id) VALUES (gen_random_uuid(), 1, 't', 0, '2030-01-01', 0, 0, 0)")
    db.execute("SELECT auth.lock_down_chunks()")
    row = db.execute(
        """SELECT has_table_privilege('reviewer', 'ingest.track_points', 'SELECT') AS tbl,
                  has_column_privilege('reviewer', 'ingest.track_points', 'x', 'SELECT') AS col,
                  bool_or(has_any_column_privilege('reviewer',
                          format('%I.%I', chunk_schema, chunk_name)::regclass, 'SELECT')) AS chunk
           FROM timescaledb_information.chunks WHERE hypertable_name = 'track_points'"""
    ).fetchone()
    assert row is not None
    # has_table_privilege is true through column grants only if every column is granted —
    # what matters is that the ACL holds no table-level entry and no chunk is readable.
    acl = db.execute("SELECT relacl::text AS a FROM pg_class "
                     "WHERE oid = 'ingest.track_points'::regclass").fetchone()
    assert acl is not None and "reviewer=" not in acl["a"]
    assert row["col"] is True and row["chunk"] is False
