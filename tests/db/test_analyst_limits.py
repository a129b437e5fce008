"""Analyst limits that hold (sql/961_analyst_limits.sql): each hole tried as a real analyst
login (`secinf analysts add`, connected as psql would), asserting the exact refusal or that
the attempt had no effect. The watchdog is called directly, with caps of a second or two.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row

from tests.support.factories import analyst_session, make_project

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]
TERMINATED = "terminating connection due to administrator command"


@pytest.fixture
def admin(dsn: str) -> Iterator[Conn]:
    """An autocommit admin session: each pg_stat_activity read is a fresh look."""
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        yield conn


def set_cap(admin: Conn, key: str, value: float) -> None:
    admin.execute("UPDATE pipeline.settings SET value = to_jsonb(%s::float8)"
                  " WHERE project_id IS NULL AND key = %s", (value, key))


def wait_for(admin: Conn, pid: int, condition: str, timeout: float = 20) -> dict[str, Any]:
    """Poll the backend `pid` until `condition` (SQL over its pg_stat_activity row) holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = admin.execute(
            sql.SQL("SELECT state, wait_event,"
                    " extract(epoch FROM clock_timestamp() - query_start) AS running_s,"
                    " extract(epoch FROM clock_timestamp() - state_change) AS idle_s"
                    " FROM pg_stat_activity WHERE pid = %s AND ({})").format(sql.SQL(condition)),
            (pid,)).fetchone()
        if row:
            return row
        time.sleep(0.05)
    raise AssertionError(f"backend {pid} never reached {condition}")


def gone(admin: Conn, pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
            return True
        time.sleep(0.05)
    return False


def in_thread(conn: psycopg.Connection[Any], query: str) -> Future[Any]:
    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(lambda: conn.execute(query).fetchall())
    pool.shutdown(wait=False)
    return future


def audit_of(admin: Conn, role: str) -> list[tuple[str, str]]:
    return [(r["action"], r["reason"]) for r in admin.execute(
        "SELECT action, details ->> 'reason' AS reason FROM audit.log"
        " WHERE target = %s AND action LIKE 'analyst_limit.%%' ORDER BY audit_id",
        (role,)).fetchall()]


def refusal(conn: psycopg.Connection[Any], statement: str) -> str:
    """The first line of the error `statement` raises (the transaction is rolled back)."""
    with pytest.raises(psycopg.Error) as err:
        conn.execute(statement)
    conn.rollback()
    return str(err.value).splitlines()[0]


# ---------------------------------------------------------------- caps the watchdog holds
def test_a_statement_past_the_cap_is_cancelled_whatever_the_session_set(
        db: Conn, dsn: str, admin: Conn) -> None:
    project = make_project(db, "lim", "stmt")
    with analyst_session(db, dsn, project) as an:
        an.execute("SET statement_timeout = 0")  # the session default no longer stops it
        pid, role = an.info.backend_pid, an.info.user
        set_cap(admin, "analyst_statement_max_s", 2)
        running = in_thread(an, "SELECT pg_sleep(30)")
        wait_for(admin, pid, "state = 'active' AND clock_timestamp() - query_start > '2.05 s'")
        done = admin.execute("SELECT auth.analyst_watchdog() AS d").fetchone()["d"]
        assert [(d["pid"], d["reason"], d["action"]) for d in done] == [
            (pid, "statement", "cancel")]
        with pytest.raises(psycopg.errors.QueryCanceled) as err:
            running.result(timeout=10)
        assert str(err.value).startswith("canceling statement due to user request")
        an.rollback()
        # Cancelled, not ended: the session goes on.
        assert an.execute("SELECT 1 AS one").fetchone() == {"one": 1}
        assert audit_of(admin, role) == [("analyst_limit.cancel", "statement")]


def test_a_transaction_left_idle_past_the_cap_is_terminated(
        db: Conn, dsn: str, admin: Conn) -> None:
    project = make_project(db, "lim", "idle")
    with analyst_session(db, dsn, project) as an:
        an.execute("SET idle_in_transaction_session_timeout = 0")
        an.execute("SELECT 1")  # the transaction stays open, idle
        pid, role = an.info.backend_pid, an.info.user
        set_cap(admin, "analyst_idle_in_transaction_max_s", 1)
        wait_for(admin, pid, "state = 'idle in transaction'"
                             " AND clock_timestamp() - state_change > '1.05 s'")
        done = admin.execute("SELECT auth.analyst_watchdog() AS d").fetchone()["d"]
        assert [(d["pid"], d["reason"], d["action"]) for d in done] == [
            (pid, "idle_in_transaction", "terminate")]
        assert gone(admin, pid)
        with pytest.raises(psycopg.OperationalError) as err:
            an.execute("SELECT 1")
        assert TERMINATED in str(err.value)
        assert audit_of(admin, role) == [("analyst_limit.terminate", "idle_in_transaction")]


def test_a_session_past_the_memory_cap_is_terminated_whatever_work_mem_says(
        db: Conn, dsn: str, admin: Conn) -> None:
    report = admin.execute("SELECT auth.analyst_limits_report() AS r").fetchone()["r"]
    if not report["memory_readable"]:
        pytest.skip("this server cannot read its backends' /proc/<pid>/status: the watchdog "
                    "cannot cap memory here (`secinf db status` says so)")
    project = make_project(db, "lim", "mem")
    with analyst_session(db, dsn, project) as an:
        an.execute("SET work_mem = '4GB'")
        pid, role = an.info.backend_pid, an.info.user
        # generate_series is materialized in memory (work_mem 4GB) before its first row,
        # whose pg_sleep then holds that memory: about 150 MB of tuplestore.
        running = in_thread(an, "SELECT pg_sleep(30) FROM generate_series(1, 3000000) g"
                                " WHERE g = 1")
        wait_for(admin, pid, "wait_event = 'PgSleep'")
        set_cap(admin, "analyst_memory_max_mb", 64)
        done = admin.execute("SELECT auth.analyst_watchdog() AS d").fetchone()["d"]
        assert [(d["pid"], d["reason"], d["action"]) for d in done] == [
            (pid, "memory", "terminate")]
        assert done[0]["observed_kb"] > done[0]["cap_kb"] == 64 * 1024
        with pytest.raises(psycopg.OperationalError) as err:
            running.result(timeout=10)
        assert TERMINATED in str(err.value)
        assert gone(admin, pid)
        assert audit_of(admin, role) == [("analyst_limit.terminate", "memory")]


def test_the_watchdog_leaves_sessions_within_the_caps_and_other_roles_alone(
        db: Conn, dsn: str, admin: Conn) -> None:
    project = make_project(db, "lim", "calm")
    set_cap(admin, "analyst_statement_max_s", 1)
    params = conninfo_to_dict(dsn)
    params["user"] = "pipeline"
    with analyst_session(db, dsn, project) as an, \
            psycopg.connect(make_conninfo(**params)) as worker:  # type: ignore[arg-type]
        an.execute("SELECT 1")
        an.rollback()
        slow = in_thread(worker, "SELECT pg_sleep(2.5)")
        wait_for(admin, worker.info.backend_pid,
                 "state = 'active' AND clock_timestamp() - query_start > '1.5 s'")
        assert admin.execute("SELECT auth.analyst_watchdog() AS d").fetchone()["d"] == []
        slow.result(timeout=10)  # ran to its end


# ---------------------------------------------------------------- spills to disk
def test_spills_stop_at_temp_file_limit_which_the_analyst_cannot_lift(
        db: Conn, dsn: str) -> None:
    project = make_project(db, "lim", "spill")
    with analyst_session(db, dsn, project) as an:
        assert an.execute("SHOW temp_file_limit").fetchone() == {"temp_file_limit": "2GB"}
        for statement in ("SET temp_file_limit = -1", "RESET temp_file_limit",
                          "SELECT set_config('temp_file_limit', '-1', false)"):
            assert refusal(an, statement) == \
                'permission denied to set parameter "temp_file_limit"'
        # A small limit on this login, a fresh session: a sort past it stops there.
        role = an.info.user
        db.execute(sql.SQL("ALTER ROLE {} SET temp_file_limit = '1MB'").format(
            sql.Identifier(role)))
        db.commit()
        params = conninfo_to_dict(dsn)
        params["user"] = role
        with psycopg.connect(make_conninfo(**params)) as second:  # type: ignore[arg-type]
            second.execute("SET work_mem = '64kB'")
            assert refusal(second, "SELECT count(*) FROM (SELECT g FROM generate_series(1, "
                                   "300000) g ORDER BY md5(g::text)) s") == \
                "temporary file size exceeds temp_file_limit (1024kB)"


# ---------------------------------------------------------------- read-only that holds
def test_an_analyst_creates_no_large_object(db: Conn, dsn: str) -> None:
    project = make_project(db, "lim", "lo")
    with analyst_session(db, dsn, project) as an:
        for call, name in (("lo_from_bytea(0, '\\x00')", "lo_from_bytea"),
                           ("lo_creat(-1)", "lo_creat"), ("lo_create(0)", "lo_create"),
                           ("lo_import('/etc/hostname')", "lo_import"),
                           ("lo_put(1, 0, '\\x00')", "lo_put"), ("lo_unlink(1)", "lo_unlink")):
            assert refusal(an, f"SELECT {call}") == f"permission denied for function {name}"
    assert db.execute("SELECT count(*) AS n FROM pg_largeobject_metadata").fetchone() == {"n": 0}


def test_an_analyst_creates_no_temporary_table_but_the_pipeline_does(
        db: Conn, dsn: str) -> None:
    project = make_project(db, "lim", "temp")
    dbname = conninfo_to_dict(dsn)["dbname"]
    denied = f'permission denied to create temporary tables in database "{dbname}"'
    with analyst_session(db, dsn, project) as an:
        for statement in ("CREATE TEMP TABLE t (x int)",
                          "CREATE TEMP TABLE t AS SELECT 1 AS x",
                          "SELECT 1 AS x INTO TEMP t",
                          "CREATE FUNCTION pg_temp.f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
                          "CREATE TEMP VIEW v AS SELECT 1 AS x"):
            assert refusal(an, statement) == denied
    params = conninfo_to_dict(dsn)
    params["user"] = "pipeline"
    with psycopg.connect(make_conninfo(**params)) as worker:  # type: ignore[arg-type]
        worker.execute("CREATE TEMP TABLE stage (x int) ON COMMIT DROP")
        assert worker.execute("SELECT count(*) FROM stage").fetchone() == (0,)


def test_an_analyst_writes_nothing_anywhere(db: Conn, dsn: str) -> None:
    project = make_project(db, "lim", "ro")
    dbname = conninfo_to_dict(dsn)["dbname"]
    seq = db.execute("SELECT pg_get_serial_sequence('ingest.sources', 'source_id') AS s"
                     ).fetchone()["s"]
    with analyst_session(db, dsn, project) as an:
        tries = {
            f"INSERT INTO ingest.sources (project_id, name, fps) VALUES ('{project}', 'x', 10)":
                "permission denied for table sources",
            "UPDATE core.projects SET name = name": "permission denied for table projects",
            "DELETE FROM ingest.track_points": "permission denied for table track_points",
            "TRUNCATE ingest.zones": "permission denied for table zones",
            "COPY ingest.sources (name) FROM STDIN": "permission denied for table sources",
            "SELECT * FROM ingest.sources FOR UPDATE": "permission denied for table sources",
            "CREATE TABLE public.x (a int)": "permission denied for schema public",
            "CREATE TABLE ingest.x (a int)": "permission denied for schema ingest",
            "CREATE SCHEMA x": f"permission denied for database {dbname}",
            "ALTER TABLE ingest.sources ADD COLUMN z int": "must be owner of table sources",
            "COMMENT ON TABLE ingest.sources IS 'x'": "must be owner of table sources",
            f"SELECT nextval('{seq}')":
                f"permission denied for sequence {seq.split('.')[-1]}",
            # An idle session holding pipeline.tick's lock would stall every tenant.
            "SELECT pg_advisory_lock(388127, 1)": "permission denied for function "
                                                   "pg_advisory_lock",
            "SELECT pg_try_advisory_lock(1)": "permission denied for function "
                                              "pg_try_advisory_lock",
            "SELECT txid_current()": "permission denied for function txid_current",
            "SELECT pg_current_xact_id()": "permission denied for function pg_current_xact_id",
            "SELECT pg_logical_emit_message(false, 'x', 'y')":
                "permission denied for function pg_logical_emit_message",
        }
        for statement, expected in tries.items():
            assert refusal(an, statement) == expected, statement
        # The volatile functions of the project an analyst may call are the API's sign-in,
        # key exchange and dataset download (it audits and signs a URL), and the request
        # path's rate limits (tokens in shared memory, no table: on a direct session
        # admit_request reads no claims and does nothing), nothing else.
        rows = an.execute(
            """SELECT p.oid::regprocedure::text AS fn FROM pg_proc p
               JOIN pg_namespace n ON n.oid = p.pronamespace
               WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
                 AND n.nspname NOT LIKE 'pg\\_%%' AND n.nspname NOT LIKE '\\_timescaledb%%'
                 AND p.provolatile = 'v' AND has_function_privilege(p.oid, 'EXECUTE')
                 AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                                 AND d.objid = p.oid AND d.deptype = 'e')
               ORDER BY 1""").fetchall()
        assert [r["fn"] for r in rows] == [
            "api.dataset_download(text,text)", "api.exchange_key(text)",
            "api.login(text,text,text)", "api.pre_request()",
            "billing.admit_key_exchange(text)", "billing.admit_request()",
            "core.exchange_api_key(text)", "core.login_account(text,text,text)"]


def test_an_analyst_reaches_no_database_but_secinf_ones(db: Conn, dsn: str, admin: Conn
                                                        ) -> None:
    project = make_project(db, "lim", "conn")
    with analyst_session(db, dsn, project) as an:
        role = an.info.user
        report = admin.execute("SELECT auth.analyst_limits_report() AS r").fetchone()["r"]
        assert (report["public_connect"], report["public_temp"]) == (False, False)
        closed = admin.execute(
            "SELECT 1 FROM pg_hba_file_rules WHERE auth_method = 'reject'"
            " AND 'postgres' = ANY (database) AND '+analyst' = ANY (user_name)").fetchone()
        params = conninfo_to_dict(dsn)
        params["user"], params["dbname"] = role, "postgres"
        if closed:  # the project's own cluster (workers/db/cluster.py writes pg_hba.conf)
            with pytest.raises(psycopg.OperationalError) as err:
                psycopg.connect(make_conninfo(**params)).close()  # type: ignore[arg-type]
            assert "pg_hba.conf rejects connection for host" in str(err.value)
            assert f'user "{role}", database "postgres"' in str(err.value)
            assert "postgres" not in report["open_databases"]
        else:  # a server of the user's (SECINF_DSN): not closed, but reported
            assert "postgres" in report["open_databases"]
    # A login of no project role does not get into this database at all.
    outsider = f"outsider_{uuid.uuid4().hex[:8]}"
    admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(outsider)))
    try:
        params = conninfo_to_dict(dsn)
        params["user"] = outsider
        with pytest.raises(psycopg.OperationalError) as err:
            psycopg.connect(make_conninfo(**params)).close()  # type: ignore[arg-type]
        assert f'permission denied for database "{params["dbname"]}"' in str(err.value)
    finally:
        admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(outsider)))


# ---------------------------------------------------------------- no cross-tenant metadata
def test_an_analyst_reads_no_volume_or_time_range_of_any_tenant(db: Conn, dsn: str) -> None:
    project = make_project(db, "lim", "meta")
    other = make_project(db, "lim", "other")
    src = db.execute("INSERT INTO ingest.sources (project_id, name, fps) VALUES (%s, 'cam', 10)"
                     " RETURNING source_id", (other,)).fetchone()["source_id"]
    batch = db.execute(
        "INSERT INTO ingest.batches (project_id, source_id, idempotency_key, format, status,"
        " rows_total, rows_inserted) VALUES (%s, %s, 'b', 'canonical-csv', 'applied', 500, 500)"
        " RETURNING batch_id", (other, src)).fetchone()["batch_id"]
    db.execute("INSERT INTO ingest.track_points (project_id, source_id, track_id, frame, ts, x,"
               " y, batch_id) SELECT %s, %s, '1', f, '2026-01-01'::timestamptz"
               " + f * interval '1 hour', 0, 0, %s FROM generate_series(0, 499) f",
               (other, src, batch))
    db.commit()
    db.execute("ANALYZE ingest.track_points")
    db.commit()
    assert db.execute("SELECT count(*) AS n FROM pg_stats WHERE schemaname = 'ingest'"
                      " AND tablename = 'track_points'").fetchone()["n"] > 0
    with analyst_session(db, dsn, project) as an:
        tries = {
            "SELECT approximate_row_count('ingest.track_points')":
                "permission denied for function approximate_row_count",
            "SELECT * FROM timescaledb_information.chunks": "permission denied for view chunks",
            "SELECT * FROM timescaledb_information.dimensions":
                "permission denied for view dimensions",
            "SELECT range_start, range_end FROM _timescaledb_catalog.dimension_slice":
                "permission denied for table dimension_slice",
            "SELECT * FROM _timescaledb_catalog.chunk": "permission denied for table chunk",
            "SELECT reltuples FROM pg_class WHERE oid = 'ingest.track_points'::regclass":
                "permission denied for table pg_class",
            "SELECT relpages FROM pg_class": "permission denied for table pg_class",
            "SELECT * FROM pg_class": "permission denied for table pg_class",
            "SELECT n_live_tup FROM pg_stat_user_tables":
                "permission denied for view pg_stat_user_tables",
            "SELECT * FROM pg_stat_all_tables": "permission denied for view pg_stat_all_tables",
            "SELECT * FROM pg_statio_user_tables":
                "permission denied for view pg_statio_user_tables",
            "SELECT tup_inserted FROM pg_stat_database":
                "permission denied for view pg_stat_database",
            "SELECT pg_stat_get_live_tuples('ingest.track_points'::regclass)":
                "permission denied for function pg_stat_get_live_tuples",
            "SELECT pg_stat_get_tuples_inserted('ingest.track_points'::regclass)":
                "permission denied for function pg_stat_get_tuples_inserted",
            "SELECT pg_total_relation_size('ingest.track_points')":
                "permission denied for function pg_total_relation_size",
            "SELECT pg_relation_size('ingest.track_points')":
                "permission denied for function pg_relation_size",
            "SELECT pg_database_size(current_database())":
                "permission denied for function pg_database_size",
            "SELECT hypertable_size('ingest.track_points')":
                "permission denied for function hypertable_size",
            "SELECT * FROM chunks_detailed_size('ingest.track_points')":
                "permission denied for function chunks_detailed_size",
            "SELECT show_chunks('ingest.track_points')":
                "permission denied for function show_chunks",
        }
        for statement, expected in tries.items():
            assert refusal(an, statement) == expected, statement
        # Statistics of RLS tables stay hidden; pg_class minus the statistics still answers.
        assert an.execute("SELECT count(*) AS n FROM pg_stats WHERE schemaname = 'ingest'"
                          ).fetchone() == {"n": 0}
        assert an.execute("SELECT count(*) AS n FROM pg_stats_ext").fetchone() == {"n": 0}
        assert an.execute("SELECT relname FROM pg_class WHERE oid = 'ingest.track_points'"
                          "::regclass").fetchone() == {"relname": "track_points"}
        assert an.execute("SELECT count(*) AS n FROM ingest.track_points").fetchone() == {"n": 0}


# ---------------------------------------------------------------- reporting
def test_db_status_reports_what_does_not_hold(dsn: str, admin: Conn) -> None:
    """`secinf db status` on a SECINF_DSN server: a fresh copy of the template leaves
    CONNECT and TEMP to PUBLIC (database privileges are not copied) until it is locked down
    again; no pg_cron here, so the watchdog's schedule is not this database's to report."""
    def status() -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-m", "workers.cli.main", "db", "status", "--json"],
            capture_output=True, text=True, timeout=120,
            env={"SECINF_DSN": dsn, "PATH": "/usr/bin:/bin", "HOME": "/tmp"})
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout))

    before = status()
    assert before["analyst_limits"]["public_connect"] is True
    assert before["analyst_limits"]["watchdog_scheduled"] is None
    assert before["analyst_limit_problems"][0].startswith(
        "PUBLIC may CONNECT to or create TEMP tables in this database")
    admin.execute("SELECT auth.lock_down_database()")
    after = status()
    assert (after["analyst_limits"]["public_connect"],
            after["analyst_limits"]["public_temp"]) == (False, False)
    assert not any(p.startswith("PUBLIC") for p in after["analyst_limit_problems"])
