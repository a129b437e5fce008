"""Tenant isolation matrix: every role, every relation it can reach, both access paths.

Two projects get rows in every tenant table. Then, for each RLS-bound role acting for
project A — through the PostgREST request model (claims) and, for analysts, through a
direct SQL login (membership) — every readable relation shows no row of project B, and
every write aimed at project B fails or touches nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from tests.support.factories import analyst_session, make_project
from tests.support.postgrest import Api, ApiError
from tests.support.tenant_data import SCHEMAS, populate, populate_pipeline, tenant_tables

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]
API_ROLES = ["customer", "reviewer", "analyst", "project_admin"]
# Relations without project_id that are global by design (no tenant data).
GLOBAL = {"core.plans", "pipeline.stages", "pipeline.settings_defaults"}
RLS_REFUSAL = "new row violates row-level security policy"


@pytest.fixture(scope="module")
def populated(module_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """Two projects with rows in every tenant table, built once for the module (the write
    test asserts it changes nothing)."""
    tmp = tmp_path_factory.mktemp("isolation")
    with psycopg.connect(module_dsn, row_factory=dict_row) as db:
        a = make_project(db, "acme", "north")
        b = make_project(db, "globex", "south")
        for pid, tag in ((a, "a"), (b, "b")):
            populate_pipeline(db, pid, tag, tmp)
        for pid, tag in ((a, "a"), (b, "b")):
            populate(db, pid, tag)  # after every tick (a tick serves all projects)
    return a, b


@pytest.fixture
def dsn(module_dsn: str, populated: tuple[str, str]) -> str:
    return module_dsn


@pytest.fixture
def db(dsn: str) -> Iterator[Conn]:
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        yield conn


@pytest.fixture
def two_projects(populated: tuple[str, str]) -> tuple[str, str]:
    return populated


def readable(db: Conn, role: str) -> list[tuple[str, bool]]:
    """(relation, has project_id) for every table/view the role may SELECT from."""
    rows = db.execute(
        """SELECT format('%%I.%%I', n.nspname, c.relname) AS rel,
                  EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid
                          AND a.attname = 'project_id' AND NOT a.attisdropped) AS scoped
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname = ANY(%s)
             AND has_schema_privilege(%s, n.oid, 'USAGE')
             AND (has_table_privilege(%s, c.oid, 'SELECT')
                  OR has_any_column_privilege(%s, c.oid, 'SELECT'))
           ORDER BY 1""", (SCHEMAS, role, role, role)).fetchall()
    return [(r["rel"], r["scoped"]) for r in rows]


def writable(db: Conn, role: str) -> list[tuple[str, str]]:
    rows = db.execute(
        """SELECT format('%%I.%%I', n.nspname, c.relname) AS rel, p.priv
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           CROSS JOIN unnest(ARRAY['INSERT', 'UPDATE', 'DELETE']) p(priv)
           WHERE c.relkind IN ('r', 'p', 'v') AND n.nspname = ANY(%s)
             AND has_schema_privilege(%s, n.oid, 'USAGE')
             AND (has_table_privilege(%s, c.oid, p.priv)
                  OR (p.priv <> 'DELETE' AND has_any_column_privilege(%s, c.oid, p.priv)))
             AND EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid
                         AND a.attname = 'project_id' AND NOT a.attisdropped)
           ORDER BY 1, 2""", (SCHEMAS, role, role, role)).fetchall()
    return [(r["rel"], r["priv"]) for r in rows]


def test_every_table_with_a_project_is_under_forced_rls(db: Conn) -> None:
    """In every schema of the product, not only the listed ones: a tenant table in a new
    schema that sql/900_policies.sql does not know fails here."""
    rows = db.execute(
        r"""SELECT format('%%I.%%I', n.nspname, c.relname) AS rel,
                  c.relrowsecurity AND c.relforcerowsecurity AS forced,
                  n.nspname = ANY(%s) AS listed
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relkind IN ('r', 'p')
             AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'public', 'cron')
             AND n.nspname NOT LIKE '\_timescaledb%%' AND n.nspname NOT LIKE 'timescaledb%%'
             AND n.nspname NOT LIKE 'pg\_%%'
             AND EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid
                         AND a.attname = 'project_id' AND NOT a.attisdropped)
           ORDER BY 1""", (SCHEMAS,)).fetchall()
    assert rows
    bad = [r["rel"] for r in rows if not (r["forced"] and r["listed"])]
    assert bad == [], f"tenant tables outside forced RLS or the matrix's SCHEMAS: {bad}"


def test_fixture_covers_every_tenant_table(db: Conn, two_projects: tuple[str, str]) -> None:
    a, b = two_projects
    missing = []
    for rel in tenant_tables(db):
        row = db.execute(sql.SQL(
            "SELECT count(DISTINCT project_id) FILTER (WHERE project_id IN (%s, %s)) AS n FROM {}"
        ).format(sql.SQL(rel)), (a, b)).fetchone()
        if not row or row["n"] < 2:
            missing.append(rel)
    assert missing == [], f"add rows for these tables to tests/support/tenant_data.py: {missing}"


@pytest.mark.parametrize("role", API_ROLES)
def test_api_role_sees_no_other_project_anywhere(
    db: Conn, dsn: str, two_projects: tuple[str, str], role: str
) -> None:
    a, b = two_projects
    api = Api(dsn).as_(role, project_id=a)
    rels = readable(db, role)
    assert rels, f"{role} can read nothing"
    seen_own = 0
    for rel, scoped in rels:
        if not scoped:
            if rel in GLOBAL:
                continue
            rows = api.request("GET", rel, sql.SQL("SELECT * FROM {}").format(sql.SQL(rel)))
            text = str(rows)
            assert b not in text, f"{role} sees project B through {rel}"
            continue
        rows = api.request("GET", rel, sql.SQL(
            "SELECT project_id::text AS p, count(*) AS n FROM {} GROUP BY 1").format(sql.SQL(rel)))
        projects = {r["p"] for r in rows}
        assert projects <= {a}, f"{role} sees {projects - {a}} through {rel}"
        seen_own += a in projects
    assert seen_own > 0, f"{role} sees none of its own rows: the matrix would prove nothing"


@pytest.mark.parametrize("role", API_ROLES)
def test_api_role_cannot_write_into_other_projects(
    db: Conn, dsn: str, two_projects: tuple[str, str], role: str
) -> None:
    a, b = two_projects
    api = Api(dsn).as_(role, project_id=a)

    def counts_of_b() -> dict[str, int]:
        return {rel: db.execute(sql.SQL("SELECT count(*) AS n FROM {} WHERE project_id = %s")
                                .format(sql.SQL(rel)), (b,)).fetchone()["n"]  # type: ignore[index]
                for rel in tenant_tables(db)}

    before = counts_of_b()
    db.commit()
    for rel, priv in writable(db, role):
        ident = sql.SQL(rel)
        if priv == "INSERT":
            sample = db.execute(sql.SQL(
                "SELECT to_jsonb(t) AS j FROM {} t WHERE project_id = %s LIMIT 1").format(ident),
                (b,)).fetchone()
            assert sample, f"no row of B in {rel}"
            cols = [r["attname"] for r in db.execute(
                """SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0
                   AND NOT attisdropped AND attidentity = '' AND attgenerated = ''""",
                (rel,)).fetchall()]
            insert = sql.SQL("INSERT INTO {} ({}) SELECT {} FROM jsonb_populate_record("
                             "NULL::{}, %(row)s)").format(
                ident, sql.SQL(", ").join(map(sql.Identifier, cols)),
                sql.SQL(", ").join(map(sql.Identifier, cols)), ident)
            with pytest.raises(ApiError) as err:
                api.write("POST", rel, insert, {"row": psycopg.types.json.Jsonb(sample["j"])})
            assert RLS_REFUSAL in err.value.message or "permission denied" in err.value.message, (
                rel, err.value.message)
        else:
            verb = (sql.SQL("UPDATE {} SET project_id = project_id WHERE project_id = %(b)s")
                    if priv == "UPDATE" else sql.SQL("DELETE FROM {} WHERE project_id = %(b)s"))
            try:
                api.write(priv, rel, sql.SQL("WITH w AS ({} RETURNING 1) SELECT count(*) AS n "
                                             "FROM w").format(verb.format(ident)), {"b": b})
            except ApiError as exc:  # column privileges may refuse outright: also fine
                assert "permission denied" in exc.message, (rel, exc.message)
    # Nothing of B changed.
    assert counts_of_b() == before


def org_scoped(db: Conn, role: str) -> list[str]:
    """Every table/view with an org_id (and no project_id) the role may SELECT from."""
    rows = db.execute(
        """SELECT format('%%I.%%I', n.nspname, c.relname) AS rel
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname = ANY(%s)
             AND has_schema_privilege(%s, n.oid, 'USAGE')
             AND has_table_privilege(%s, c.oid, 'SELECT')
             AND EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid
                         AND a.attname = 'org_id' AND NOT a.attisdropped)
             AND NOT EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid
                             AND a.attname = 'project_id' AND NOT a.attisdropped)
           ORDER BY 1""", (SCHEMAS, role, role)).fetchall()
    return [r["rel"] for r in rows]


@pytest.fixture(scope="module")
def two_orgs(module_dsn: str, populated: tuple[str, str]) -> tuple[str, str]:
    """The orgs of A and B, each with a Stripe customer, subscription and invoice (as the
    webhook mirrors them)."""
    orgs = []
    with psycopg.connect(module_dsn, row_factory=dict_row) as db:
        for tag, project in zip(("a", "b"), populated, strict=True):
            row = db.execute("SELECT org_id::text AS o FROM core.projects WHERE project_id = %s",
                             (project,)).fetchone()
            assert row is not None
            org = row["o"]
            orgs.append(org)
            db.execute("INSERT INTO billing.customers (org_id, stripe_customer_id)"
                       " VALUES (%s, %s) ON CONFLICT DO NOTHING", (org, f"cus_{tag}iso"))
            db.execute("INSERT INTO billing.subscriptions (stripe_subscription_id, org_id,"
                       " stripe_customer_id, status, plan_id, stripe_updated)"
                       " VALUES (%s, %s, %s, 'active', 'team', now()) ON CONFLICT DO NOTHING",
                       (f"sub_{tag}iso", org, f"cus_{tag}iso"))
            db.execute("INSERT INTO billing.invoices (stripe_invoice_id, org_id, number, status,"
                       " currency, amount_due, amount_paid, stripe_updated)"
                       " VALUES (%s, %s, %s, 'paid', 'eur', 4900, 4900, now())"
                       " ON CONFLICT DO NOTHING", (f"in_{tag}iso", org, f"{tag.upper()}-0001"))
        db.commit()
    return orgs[0], orgs[1]


@pytest.mark.parametrize("role", API_ROLES)
def test_api_role_sees_no_other_organization(dsn: str, db: Conn, two_projects: tuple[str, str],
                                             two_orgs: tuple[str, str], role: str) -> None:
    """Billing's organization tables and the api views over them show only the caller's
    organization; customers and project admins see their own invoice and subscription."""
    a, _ = two_projects
    org_a, _ = two_orgs
    api = Api(dsn).as_(role, project_id=a)
    seen = set()
    for rel in org_scoped(db, role):
        rows = api.request("GET", rel, sql.SQL(
            "SELECT org_id::text AS o, count(*) AS n FROM {} GROUP BY 1").format(sql.SQL(rel)))
        orgs = {r["o"] for r in rows}
        assert orgs <= {org_a}, f"{role} sees organizations {orgs - {org_a}} through {rel}"
        if orgs:
            seen.add(rel)
    if role in ("customer", "project_admin"):
        assert {"api.invoices", "api.subscription", "billing.invoices"} <= seen, seen
    else:
        assert not {"api.invoices", "api.subscription"} & set(org_scoped(db, role))


@pytest.fixture
def analyst_login(db: Conn, dsn: str, two_projects: tuple[str, str]) -> Iterator[Conn]:
    """A real analyst login of project A, connected directly (as psql would)."""
    a, _ = two_projects
    with analyst_session(db, dsn, a, prefix="t") as conn:
        yield conn


def test_analyst_sql_login_reads_only_its_projects_by_any_path(
    db: Conn, analyst_login: Conn, two_projects: tuple[str, str]
) -> None:
    a, b = two_projects
    conn = analyst_login
    rels = [rel for rel, scoped in readable(db, "analyst") if scoped]
    assert "ingest.track_points" in rels
    for rel in rels:
        rows = conn.execute(sql.SQL("SELECT DISTINCT project_id::text AS p FROM {}").format(
            sql.SQL(rel))).fetchall()
        assert {r["p"] for r in rows} <= {a}, rel
    # Forged claims change nothing on a direct session.
    conn.execute("SELECT set_config('request.jwt.claims', %s, false)",
                 (f'{{"role": "analyst", "project_id": "{b}"}}',))
    rows = conn.execute("SELECT DISTINCT project_id::text AS p FROM ingest.track_points").fetchall()
    assert {r["p"] for r in rows} == {a}
    # Chunks are not a side door.
    chunk = db.execute("SELECT format('%I.%I', chunk_schema, chunk_name) AS c "
                       "FROM timescaledb_information.chunks "
                       "WHERE hypertable_name = 'track_points' LIMIT 1").fetchone()
    assert chunk is not None
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for table"):
        conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.SQL(chunk["c"])))
    conn.rollback()
    # Secrets and other tenants' tenancy rows are out of reach.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT key_hash FROM core.api_keys")
    conn.rollback()
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT secret FROM auth.signing_keys")
    conn.rollback()
    # Read-only: no writes anywhere.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("DELETE FROM ingest.track_points")
