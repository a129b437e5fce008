"""The ingest_loader role (migration 0025): a worker's file ingest (role pipeline) COPYs
appended points straight into the hypertable as ingest_loader, which bypasses row-level
security and may do nothing but INSERT into ingest.track_points. These tests hold it to that:
its catalogue of privileges, who may become it, and that the worker's ingest appends, lands
the same rows as the staged path and ends on its own role."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row

from tests.support.factories import make_project
from workers.ingest import IngestRequest, ingest
from workers.ingest import load as load_module
from workers.ingest.stream import StreamResult

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]
OUR_SCHEMAS = ("core", "auth", "audit", "api", "ingest", "features", "rules", "candidates",
               "review", "events", "jobs", "datasets", "billing", "scoring", "pipeline",
               "analytics", "files")


def test_the_role_cannot_log_in_bypasses_rls_and_has_one_member(db: Conn) -> None:
    role = db.execute("SELECT rolcanlogin, rolbypassrls, rolsuper, rolinherit FROM pg_roles "
                      "WHERE rolname = 'ingest_loader'").fetchone()
    assert role == {"rolcanlogin": False, "rolbypassrls": True, "rolsuper": False,
                    "rolinherit": False}
    members = db.execute("SELECT m.rolname FROM pg_auth_members a "
                         "JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member "
                         "WHERE r.rolname = 'ingest_loader'").fetchall()
    assert [m["rolname"] for m in members] == ["pipeline"]


def test_its_only_privilege_is_insert_on_track_points(db: Conn) -> None:
    tables = db.execute(
        "SELECT format('%%I.%%I', n.nspname, c.relname) AS rel, p.priv,"
        "       has_table_privilege('ingest_loader', c.oid, p.priv) AS has"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) p(priv)"
        " WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')"
        "   AND (n.nspname = ANY (%s) OR n.nspname LIKE '_timescaledb%%')"
        # beyond what every role holds (TimescaleDB's catalogues readable by PUBLIC)
        "   AND NOT EXISTS (SELECT FROM aclexplode(coalesce(c.relacl,"
        "                   acldefault('r', c.relowner))) a"
        "                   WHERE a.grantee = 0 AND a.privilege_type = p.priv)",
        (list(OUR_SCHEMAS),)).fetchall()
    held = sorted((t["rel"], t["priv"]) for t in tables if t["has"])
    chunks = [h for h in held if h[0].startswith("_timescaledb_internal.")]
    # The hypertable's chunks carry the hypertable's grant (TimescaleDB copies it): INSERT.
    assert {p for _, p in chunks} <= {"INSERT"}
    assert [h for h in held if h not in chunks] == [("ingest.track_points", "INSERT")]
    functions = db.execute(
        "SELECT p.oid::regprocedure::text AS fn FROM pg_proc p"
        " JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE n.nspname = ANY (%s) AND has_function_privilege('ingest_loader', p.oid, 'EXECUTE')",
        (list(OUR_SCHEMAS),)).fetchall()
    assert functions == []


@pytest.mark.parametrize("role", ["customer", "reviewer", "analyst", "project_admin", "anon",
                                  None])
def test_no_api_session_may_become_it(dsn: str, role: str | None) -> None:
    """PostgREST's login (authenticator) and every role it switches to are refused."""
    params = conninfo_to_dict(dsn)
    params["user"] = "authenticator"
    with psycopg.connect(make_conninfo(**params)) as conn:  # type: ignore[arg-type]
        if role is not None:
            conn.execute(f"SET ROLE {role}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SET ROLE ingest_loader")


def test_a_workers_ingest_appends_as_the_loader_and_ends_on_its_own_role(
        db: Conn, dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(db, "loader-org", "loader")
    db.commit()
    path = tmp_path / "t.csv"
    path.write_text("track_id,frame,t,x,y\n" + "".join(
        f"{t},{f},{f / 10},{1 + f / 10},{t}\n" for t in (1, 2, 3) for f in range(200)))
    streamed: list[StreamResult] = []
    real = load_module.stream_rows

    def spy(*args: Any, **kwargs: Any) -> StreamResult:
        result = real(*args, **kwargs)
        streamed.append(result)
        return result

    monkeypatch.setattr(load_module, "stream_rows", spy)
    with psycopg.connect(dsn, row_factory=dict_row) as worker:
        worker.execute("SET ROLE pipeline")
        worker.commit()
        first = ingest(worker, IngestRequest(project=project, source="cam", path=path))
        role = worker.execute("SELECT current_user AS u").fetchone()
        assert role is not None and role["u"] == "pipeline"
        # Late rows (below the high-water mark) still take the staged path, as pipeline.
        late = tmp_path / "late.csv"
        late.write_text("track_id,frame,t,x,y\n4,5,0.5,1,4\n1,5,0.5,9,9\n")
        second = ingest(worker, IngestRequest(project=project, source="cam", path=late))
    assert (first.inserted, first.duplicate) == (600, 0)
    assert (streamed[0].direct_rows, streamed[0].staged_rows) == (600, 0)
    assert (second.inserted, second.duplicate) == (1, 1)
    assert (streamed[1].direct_rows, streamed[1].staged_rows) == (0, 2)
    rows = db.execute("SELECT count(*) AS n, count(DISTINCT batch_id) AS b, min(project_id::text)"
                      " AS p FROM ingest.track_points WHERE project_id = %s",
                      (project,)).fetchone()
    assert rows == {"n": 601, "b": 2, "p": project}
