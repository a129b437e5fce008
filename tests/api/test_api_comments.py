"""Every object in the api schema has a COMMENT: PostgREST turns them into its OpenAPI
document, so an uncommented view or function is an undocumented endpoint."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]

UNCOMMENTED = """
SELECT 'relation ' || c.oid::regclass::text AS object
FROM pg_class c
WHERE c.relnamespace = 'api'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
  AND obj_description(c.oid, 'pg_class') IS NULL
UNION ALL
SELECT 'function ' || p.oid::regprocedure::text
FROM pg_proc p
WHERE p.pronamespace = 'api'::regnamespace
  AND obj_description(p.oid, 'pg_proc') IS NULL
UNION ALL
SELECT 'type ' || t.oid::regtype::text
FROM pg_type t
WHERE t.typnamespace = 'api'::regnamespace AND t.typtype IN ('c', 'd', 'e', 'r', 'm')
  AND (t.typrelid = 0 OR (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c')
  AND obj_description(t.oid, 'pg_type') IS NULL
ORDER BY 1
"""


def test_every_api_object_is_commented(db: Conn) -> None:
    missing = [r["object"] for r in db.execute(UNCOMMENTED).fetchall()]
    assert missing == [], f"add a COMMENT ON … for: {missing}"


def test_the_check_sees_an_uncommented_object(db: Conn) -> None:
    db.execute("SET ROLE secinf_owner")
    db.execute("CREATE FUNCTION api.tmp_probe() RETURNS int LANGUAGE sql AS 'SELECT 1'")
    db.execute("CREATE VIEW api.tmp_view WITH (security_invoker = true) AS SELECT 1 AS one")
    db.execute("CREATE TYPE api.tmp_kind AS ENUM ('a')")
    found = [r["object"] for r in db.execute(UNCOMMENTED).fetchall()]
    assert {"function api.tmp_probe()", "relation api.tmp_view", "type api.tmp_kind"} <= set(found)
    db.execute("COMMENT ON FUNCTION api.tmp_probe() IS 'probe'")
    assert "function api.tmp_probe()" not in [r["object"] for r in db.execute(UNCOMMENTED)]
    db.rollback()
