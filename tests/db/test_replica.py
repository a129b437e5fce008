"""`secinf db replica up|status|down` on a real streaming replica of a private throwaway
primary (never the shared cluster): data written on the primary appears there; an analyst
login on the replica sees only its project and no chunk; a write on a read connection is
refused naming the primary; lag is reported from both sides; the review app reads through
the replica and decides through the primary; `down` removes the replica and its slot."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row
from typer.testing import CliRunner, Result

from tests.support.factories import make_person_key, make_project
from tests.support.replica import NEEDS_LOCAL_REPLICA
from tests.support.replica import caught_up as replica_caught_up
from tests.support.tenant_data import populate
from tests.support.throwaway_cluster import ThrowawayCluster, throwaway_cluster
from workers.appdb import AppDB
from workers.appdb import api as app_api
from workers.cli.analytics_cmd import app as analytics_app
from workers.cli.db_cmd import app as db_app
from workers.cli.tenancy_cmd import analysts_app
from workers.db import replica as rp
from workers.db.cluster import LocalCluster
from workers.db.connect import connect_read
from workers.errors import DatabaseUnavailable, ReadOnlyConnection, UserError
from workers.review.synthetic import add_candidates, make_scene
from workers.settings import load_settings

Conn = psycopg.Connection[dict[str, Any]]

pytestmark = [pytest.mark.db, pytest.mark.slow, *NEEDS_LOCAL_REPLICA]


@dataclass
class Pair:
    primary: ThrowawayCluster
    env: dict[str, str]
    read_dsn: str
    project_a: str
    project_b: str


def secinf_db(env: dict[str, str], *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(db_app, list(args), env=env)
    assert result.exit_code == code, (
        f"secinf db {' '.join(args)} exited {result.exit_code}: {result.exception}\n"
        f"{result.stdout}")
    return result


def caught_up(pair: Pair, timeout: float = 20.0) -> rp.ReplicaStatus:
    """The replica's status once it has replayed everything the primary wrote."""
    return replica_caught_up(pair.primary.cluster.settings, timeout)


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    """A throwaway primary with two populated projects and a candidate queue in A, and
    its replica, started by `secinf db replica up`."""
    with throwaway_cluster(prefix="secinf-replica-") as tc:
        with psycopg.connect(tc.conninfo, row_factory=dict_row) as db:
            a = make_project(db, "acme", "north")
            b = make_project(db, "globex", "south")
            populate(db, a, "a")
            populate(db, b, "b")
            add_candidates(db, make_scene(db, a, sources=1), 30)
            db.commit()
        env = {**tc.env, "SECINF_REPLICA_HOME": str(tc.home / "replica")}
        up = json.loads(secinf_db(env, "replica", "up", "--json").stdout)
        try:
            assert up["streaming"] and up["port"] != tc.cluster.settings.port
            yield Pair(tc, env, up["conninfo"], a, b)
        finally:
            secinf_db(env, "replica", "down")


@pytest.fixture
def read_env(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> Pair:
    """load_settings() sees the throwaway primary and SECINF_READ_DSN its replica."""
    for key, value in {**pair.env, "SECINF_READ_DSN": pair.read_dsn}.items():
        monkeypatch.setenv(key, value)
    return pair


def test_the_replica_is_a_hot_standby_with_the_primarys_data(read_env: Pair) -> None:
    with psycopg.connect(read_env.primary.conninfo, autocommit=True) as conn:
        conn.execute("CREATE TABLE public.probe (n int)")
        conn.execute("INSERT INTO public.probe SELECT generate_series(1, 500)")
    caught_up(read_env)
    with connect_read() as conn:
        row = conn.execute("SELECT pg_is_in_recovery() AS standby, count(*) AS n, "
                           "current_setting('port')::int AS port FROM public.probe").fetchone()
    assert row == {"standby": True, "n": 500,
                   "port": int(conninfo_to_dict(read_env.read_dsn)["port"])}


def test_an_analyst_on_the_replica_sees_only_its_project_and_no_chunk(read_env: Pair) -> None:
    # `secinf analysts add` (on the primary) prints the replica's address to connect to.
    added = CliRunner().invoke(analysts_app, ["add", "-p", "acme/north", "-n", "replica",
                                              "--json"])
    assert added.exit_code == 0, added.stdout
    login = json.loads(added.stdout)
    port = conninfo_to_dict(read_env.read_dsn)["port"]
    assert login["dsn"] == (f"host=127.0.0.1 port={port} dbname=secinf "
                            f"user={login['role']}")
    with psycopg.connect(read_env.primary.conninfo, row_factory=dict_row) as db:
        chunk = db.execute("SELECT format('%I.%I', chunk_schema, chunk_name) AS c "
                           "FROM timescaledb_information.chunks "
                           "WHERE hypertable_name = 'track_points' LIMIT 1").fetchone()
    assert chunk is not None
    caught_up(read_env)
    # As the analyst connects from it: TCP, with the password shown once.
    with psycopg.connect(login["dsn"], password=login["password"],
                         row_factory=dict_row) as conn:
        assert conn.execute("SELECT pg_is_in_recovery() AS r").fetchone() == {"r": True}
        for rel in ("ingest.track_points", "ingest.sources", "candidates.candidates",
                    "core.projects"):
            rows = conn.execute(sql.SQL("SELECT DISTINCT project_id::text AS p FROM {}")
                                .format(sql.SQL(rel))).fetchall()
            assert {r["p"] for r in rows} == {read_env.project_a}, rel
        with pytest.raises(psycopg.errors.InsufficientPrivilege,
                           match="permission denied for table"):
            conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.SQL(chunk["c"])))
        conn.rollback()
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction,
                           match="cannot execute DELETE in a read-only transaction"):
            conn.execute("DELETE FROM ingest.track_points")


def test_analytics_exports_read_on_the_replica(read_env: Pair) -> None:
    with psycopg.connect(read_env.primary.conninfo, autocommit=True) as conn:
        conn.execute("SELECT analytics.refresh(false)")
    caught_up(read_env)
    out = CliRunner().invoke(analytics_app, ["export", "-p", "acme/north", "--json"])
    assert out.exit_code == 0, out.stdout
    doc = json.loads(out.stdout)
    assert doc["refreshed_at"] is not None  # the views as the primary refreshed them
    # and the export fails where there is no replica to read: it did not use the primary.
    rs = rp.replica_settings(read_env.primary.cluster.settings)
    LocalCluster(rs).stop()
    try:
        down = CliRunner().invoke(analytics_app, ["export", "-p", "acme/north", "--json"])
        assert isinstance(down.exception, DatabaseUnavailable)
        assert "Cannot connect to the read replica in SECINF_READ_DSN" in str(down.exception)
    finally:
        LocalCluster(rs).start()
    caught_up(read_env)


def test_a_write_on_the_read_connection_names_the_primary(read_env: Pair) -> None:
    primary = read_env.primary.cluster.settings
    replica_port = conninfo_to_dict(read_env.read_dsn)["port"]
    with pytest.raises(ReadOnlyConnection) as err, connect_read() as conn:
        conn.execute("INSERT INTO core.organizations (slug, name) VALUES ('x', 'x')")
    assert str(err.value).startswith(
        f"this is the read replica at {rp.replica_settings(primary).socket_dir}:"
        f"{replica_port}/secinf; writes go to the primary at {primary.socket_dir}:"
        f"{primary.port}/secinf")
    assert "cannot execute INSERT in a read-only transaction" in str(err.value)


def test_lag_is_reported_by_replica_status_and_db_status(read_env: Pair) -> None:
    with psycopg.connect(read_env.primary.conninfo, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS public.lag (n int)")
        conn.execute("INSERT INTO public.lag SELECT generate_series(1, 20000)")
    caught_up(read_env)
    st = json.loads(secinf_db(read_env.env, "replica", "status", "--json").stdout)
    assert st["streaming"] and st["running"] and st["lag_bytes"] == 0
    assert st["lag_seconds"] == 0.0 and st["slot_retained_bytes"] is not None
    again = json.loads(secinf_db(read_env.env, "replica", "up", "--json").stdout)
    assert (again["port"], again["streaming"]) == (st["port"], True)  # nothing copied twice
    text = secinf_db(read_env.env, "replica", "status").stdout
    assert "streaming · lag 0 B, 0.0 s" in text, text
    info = json.loads(secinf_db(read_env.env, "status", "--json").stdout)
    [row] = info["replication"]
    assert row["application_name"] == rp.SLOT and row["state"] == "streaming"
    assert "replica secinf_replica: streaming" in secinf_db(read_env.env, "status").stdout
    # The metric: monitoring.replication as the exporter's login (postgres_exporter).
    with psycopg.connect(read_env.primary.conninfo, autocommit=True) as conn:
        conn.execute("SET ROLE secinf_monitor")
        [(name, state, lag_bytes, lag_s)] = conn.execute(
            "SELECT * FROM monitoring.replication").fetchall()
    assert (name, state) == ("secinf_replica", "streaming")
    assert 0 <= lag_bytes < 1_000_000 and 0 <= lag_s < 5  # (the CLI's own WAL since)


def test_the_app_reads_through_the_replica_and_decides_through_the_primary(
        read_env: Pair) -> None:
    with psycopg.connect(read_env.primary.conninfo, row_factory=dict_row) as db:
        key = make_person_key(db, read_env.project_a)["api_key"]
        total = db.execute("SELECT count(*) AS n FROM candidates.candidates "
                           "WHERE project_id = %s", (read_env.project_a,)).fetchone()
    assert total is not None and total["n"] >= 30
    caught_up(read_env)
    app = AppDB.from_settings()
    try:
        assert app.read_conninfo is not None
        assert conninfo_to_dict(app.read_conninfo)["port"] == \
            conninfo_to_dict(read_env.read_dsn)["port"]
        who = app.sign_in_key(key)  # on the primary (sign-in is not a read)
        page = app_api.review_queue(app, who, app_api.QueueFilter(),
                                    order="newest", limit=5)
        assert len(page) == 5
        every = app_api.QueueFilter(statuses=app_api.STATUSES)
        counts = app_api.review_counts(app, who, every)
        assert counts["total"] == total["n"]
        detail = app_api.candidate_detail(app, who, page[0]["candidate_id"])
        assert detail["candidate"]["candidate_id"] == page[0]["candidate_id"]
        assert app_api.me(app, who)["project_ids"] == [read_env.project_a]
        app_api.decide(app, who, page[0]["candidate_id"], "accept")  # on the primary
        caught_up(read_env)
        after = app_api.review_counts(app, who, app_api.QueueFilter(statuses=("accepted",)))
        assert after["total"] == counts["by_status"].get("accepted", 0) + 1
        # A write sent down the read path is refused with the replica's message.
        with pytest.raises(ReadOnlyConnection, match=r"this is the read replica at .*; "
                                                     r"writes go to the primary at "):
            app.request(who.role, who.claims, sql.SQL("SELECT api.undo_last_decision()"),
                        read_only=True)
    finally:
        app.close()


def test_the_review_queue_page_runs_on_the_replica(read_env: Pair) -> None:
    import streamlit as st

    from tests.app.conftest import app_test

    with psycopg.connect(read_env.primary.conninfo, row_factory=dict_row) as db:
        key = make_person_key(db, read_env.project_a)["api_key"]
    caught_up(read_env)
    app = AppDB.from_settings()
    try:
        who = app.sign_in_key(key)
        undecided = app_api.QueueFilter(statuses=("new", "scored"))  # the page's default
        expected = app_api.review_counts(app, who, undecided)["total"]
    finally:
        app.close()
    try:
        at = app_test("pages/1_Review_queue.py", who)
        at.run()
        assert not at.exception and not at.error
        assert {m.label: m.value for m in at.metric}["Matching candidates"] == str(expected)
        with psycopg.connect(read_env.read_dsn, autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM pg_stat_activity "
                               "WHERE usename = 'authenticator'").fetchone()
        assert row is not None and row[0] >= 1  # the page's read pool is on the replica
    finally:
        st.cache_resource.clear()
        st.cache_data.clear()


def test_an_external_server_gets_the_operators_steps(monkeypatch: pytest.MonkeyPatch
                                                     ) -> None:
    monkeypatch.setenv("SECINF_DSN", "host=db.example port=5432 dbname=secinf user=admin")
    with pytest.raises(UserError) as err:
        rp.up(load_settings())
    text = str(err.value)
    assert text.startswith("SECINF_DSN is set: secinf starts a replica only of the cluster "
                           "it runs itself. For the server at db.example:5432/secinf")
    assert "pg_basebackup -h <primary host> -p 5432 -U replicator" in text


def test_down_removes_the_replica_and_its_slot(pair: Pair) -> None:
    """Last in the module: the fixture's own `down` then finds nothing to do."""
    settings = pair.primary.cluster.settings
    home = rp.replica_settings(settings).home
    assert (home / "pg15" / "standby.signal").exists()
    assert "read replica stopped and removed" in secinf_db(pair.env, "replica", "down").stdout
    assert not home.exists()
    with psycopg.connect(pair.primary.conninfo, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_replication_slots").fetchone() == (0,)
    assert "no read replica" in secinf_db(pair.env, "replica", "status", code=3).stdout
