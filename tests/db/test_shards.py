"""Tenant shards end to end: two throwaway clusters, one project on each, a shard map in a
control database, the CLI routing by --project, one worker pool draining both queues, and
no row of either project on the other cluster (docs/scale.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from tests.conftest import _SETTINGS
from tests.support.throwaway_cluster import ThrowawayCluster, throwaway_cluster
from workers import shards
from workers.appdb import AppDB
from workers.appdb import shards as app_shards
from workers.errors import UserError
from workers.queue import client
from workers.queue.sharded import ShardedWorker
from workers.queue.worker import WorkerConfig
from workers.simulate import preset_config, simulate
from workers.simulate.writer import write_outputs

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]


@pytest.fixture(scope="module")
def clusters() -> Iterator[tuple[ThrowawayCluster, ThrowawayCluster]]:
    """Two private clusters, migrated with the product's migrate (not the shared one)."""
    if not _SETTINGS.managed:
        pytest.skip("SECINF_DSN is set: the server is not managed by secinf here, so no "
                    "second and third cluster can be started beside it")
    if not (_SETTINGS.pg_bin / "initdb").exists():
        pytest.skip(f"{_SETTINGS.pg_bin / 'initdb'} is absent: cannot start test clusters")
    with ExitStack() as stack:
        a = stack.enter_context(throwaway_cluster("secinf-shard-a-"))
        b = stack.enter_context(throwaway_cluster("secinf-shard-b-"))
        yield a, b


def _control_db(a: ThrowawayCluster) -> str:
    """The shard map's control database: on cluster a, apart from its secinf database."""
    with psycopg.connect(a.cluster.settings.conninfo(dbname="postgres"),
                         autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS secinf_control"))
        conn.execute(sql.SQL("CREATE DATABASE secinf_control"))
    return a.cluster.settings.conninfo(dbname="secinf_control")


def _secinf(env: dict[str, str], *args: str) -> Any:
    proc = subprocess.run([sys.executable, "-m", "workers.cli.main", *args, "--json"],
                          capture_output=True, text=True, env=env, timeout=180)
    assert proc.returncode == 0, f"secinf {' '.join(args)}: {proc.stderr}"
    return json.loads(proc.stdout)


def _tenant_tables(conn: Conn) -> list[tuple[str, str]]:
    """Every table (hypertables' parents included, chunks not) with a project_id column."""
    rows = conn.execute(
        "SELECT c.table_schema, c.table_name FROM information_schema.columns c "
        "JOIN information_schema.tables t USING (table_schema, table_name) "
        "WHERE c.column_name = 'project_id' AND t.table_type = 'BASE TABLE' "
        "AND c.table_schema NOT LIKE '\\_timescaledb%%' ORDER BY 1, 2").fetchall()
    return [(r["table_schema"], r["table_name"]) for r in rows]


def _rows_of(conn: Conn, project_id: str) -> dict[str, int]:
    """Rows of the project per tenant table (as the superuser: RLS does not hide any)."""
    counts = {}
    for schema, table in _tenant_tables(conn):
        row = conn.execute(sql.SQL("SELECT count(*) AS n FROM {}.{} WHERE project_id = %s")
                           .format(sql.Identifier(schema), sql.Identifier(table)),
                           (project_id,)).fetchone()
        assert row is not None
        if row["n"]:
            counts[f"{schema}.{table}"] = int(row["n"])
    return counts


def test_two_projects_on_two_clusters_one_worker_pool_no_cross_writes(
        clusters: tuple[ThrowawayCluster, ThrowawayCluster], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = clusters
    started = time.monotonic()
    env = {**a.env, "SECINF_SHARDS": _control_db(a), "PATH": "/usr/bin:/bin",
           "HOME": os.environ.get("HOME", "/tmp"), "SECINF_LOG_FORMAT": "text"}

    # The map: two shards; the second project goes to the least loaded one, which is b.
    _secinf(env, "shards", "add", "a", a.conninfo)
    added = _secinf(env, "shards", "add", "b", b.conninfo)
    assert added["name"] == "b"
    north = _secinf(env, "project", "create", "--org", "acme", "--name", "north",
                    "--shard", "a")
    south = _secinf(env, "project", "create", "--org", "acme", "--name", "south")
    assert (north["shard"], south["shard"]) == ("a", "b")
    again = _secinf(env, "project", "create", "--org", "acme", "--name", "south")
    assert again["project_id"] == south["project_id"] and again["shard"] == "b"
    listed = {(p["slug"], p["shard"]) for p in _secinf(env, "project", "list")}
    assert listed == {("north", "a"), ("south", "b")}

    # A small simulated scene into each, through the CLI (routed by --project).
    scene = simulate(preset_config("corridor", seed=3, duration=20.0))
    files = write_outputs(scene, tmp_path / "scene", formats=("csv",))
    for project, home in (("north", a), ("south", b)):
        loaded = _secinf(env, "ingest", str(files["csv"]), "--project", f"acme/{project}",
                         "--source", f"cam-{project}", "--scene", str(files["scene"]))
        assert loaded["inserted"] > 0
        with psycopg.connect(home.conninfo) as conn:
            found = conn.execute("SELECT source_id FROM ingest.sources WHERE name = %s",
                                 (f"cam-{project}",)).fetchone()
        assert found is not None, f"cam-{project} is not on its shard"
        queued = _secinf(env, "jobs", "enqueue", "pipeline_run", "--project",
                         f"acme/{project}", "--payload", json.dumps({"source_id": found[0]}))
        assert queued["kind"] == "pipeline_run"
        _secinf(env, "jobs", "enqueue", "echo", "--project", f"acme/{project}",
                "--payload", json.dumps({"message": project, "steps": 2}))

    # One worker pool over both shards drains both queues.
    stats = _secinf(env, "worker", "--until-idle", "--concurrency", "2", "--poll", "0.5")
    assert stats["succeeded"] == 4 and stats["dead"] == 0
    assert {name: s["succeeded"] for name, s in stats["shards"].items()} == {"a": 2, "b": 2}

    mine = {"north": (a, north["project_id"]), "south": (b, south["project_id"])}
    home_name = {"north": "a", "south": "b"}
    for project, (home, project_id) in mine.items():
        other_project, (_, other_id) = next(
            (k, v) for k, v in mine.items() if k != project)
        with psycopg.connect(home.conninfo, row_factory=dict_row) as conn:
            states = conn.execute("SELECT kind, state, project_id::text AS p, "
                                  "(SELECT r.result FROM jobs.results r "
                                  " WHERE r.job_id = j.job_id) AS result "
                                  "FROM jobs.jobs j ORDER BY job_id").fetchall()
            assert {(r["kind"], r["state"], r["p"]) for r in states} == {
                ("pipeline_run", "succeeded", project_id), ("echo", "succeeded", project_id)}
            # Claimed and written back by the pool's loop of this shard, and no other.
            workers = conn.execute("SELECT DISTINCT worker FROM jobs.attempts").fetchall()
            assert [r["worker"].rsplit("@", 1)[1] for r in workers] == [home_name[project]]
            echoed = next(r["result"] for r in states if r["kind"] == "echo")
            assert echoed["echo"] == project
            own = _rows_of(conn, project_id)
            for table in ("core.projects", "ingest.track_points", "features.kinematics",
                          "jobs.jobs", "jobs.results"):
                assert own.get(table, 0) > 0, f"{project}: no rows in {table} on its shard"
            # No cross-cluster writes: nothing of the other project here, not even its row.
            assert _rows_of(conn, other_id) == {}
            slugs = conn.execute("SELECT slug FROM core.projects").fetchall()
            assert [r["slug"] for r in slugs] == [project], f"{other_project} leaked"

    # The app: a key of acme/south signs in on shard b (tried after a, which refuses it),
    # and the session's requests go there.
    key = _secinf(env, "keys", "create", "-p", "acme/south", "-r", "reviewer")["api_key"]
    monkeypatch.setenv("SECINF_SHARDS", env["SECINF_SHARDS"])
    monkeypatch.setenv("SECINF_HOME", env["SECINF_HOME"])
    monkeypatch.setenv("SECINF_PORT", env["SECINF_PORT"])
    dbs = [AppDB(c) for c in app_shards.shard_conninfos()]
    try:
        assert len(dbs) == 2
        db, who = app_shards.sign_in(lambda d: d.sign_in_key(key), dbs)
        assert db is dbs[1] and who.project_id == south["project_id"]
        assert conninfo_to_dict(db.conninfo)["port"] == str(b.cluster.settings.port)
    finally:
        for d in dbs:
            d.close()

    # Run forever: a job queued later on either shard is woken up (NOTIFY on its shard) and
    # done; one stop() ends every loop.
    pool = ShardedWorker(shards.shards(),
                         WorkerConfig(concurrency=1, poll_s=5.0, grace_s=2.0, worker_id="t"))
    runner = threading.Thread(target=pool.run, daemon=True)
    runner.start()
    try:
        for home, project_id in ((a, north["project_id"]), (b, south["project_id"])):
            with psycopg.connect(home.conninfo, row_factory=dict_row, autocommit=True) as conn:
                job = client.enqueue(conn, project_id, "echo", {"message": "late"})
                deadline = time.monotonic() + 20
                while conn.execute("SELECT state FROM jobs.jobs WHERE job_id = %s",
                                   (job,)).fetchone() != {"state": "succeeded"}:
                    assert time.monotonic() < deadline, "the pool did not run the late job"
                    time.sleep(0.1)
    finally:
        pool.stop()
        runner.join(10)
    assert not runner.is_alive()
    assert {n: w.stats.succeeded for n, w in pool.workers.items()} == {"a": 1, "b": 1}

    # A project that exists keeps its shard: moving it is a shard move, not a placement.
    with pytest.raises(UserError, match="exists on shard a"):
        shards.place("acme", "north", "b")
    assert {(p["project"], p["shard"], str(p["project_id"])) for p in shards.placements()} == {
        ("north", "a", north["project_id"]), ("south", "b", south["project_id"])}
    assert shards.shard_of(south["project_id"]).name == "b"  # by id as well as by name

    # A key names no project: revoking it finds its shard.
    prefix = _secinf(env, "keys", "list", "-p", "acme/south")[0]["lookup_prefix"]
    revoked = subprocess.run([sys.executable, "-m", "workers.cli.main", "keys", "revoke",
                              prefix], capture_output=True, text=True, env=env, timeout=120)
    assert revoked.returncode == 0, revoked.stderr
    with psycopg.connect(b.conninfo) as conn:
        gone = conn.execute("SELECT revoked_at IS NOT NULL FROM core.api_keys "
                            "WHERE lookup_prefix = %s", (prefix,)).fetchone()
    assert gone == (True,)

    # An unplaced project is refused with the fix.
    unplaced = subprocess.run([sys.executable, "-m", "workers.cli.main", "jobs", "list",
                              "--project", "acme/nowhere"], capture_output=True, text=True,
                             env=env, timeout=120)
    assert unplaced.returncode == 2 and "is on no shard" in unplaced.stderr
    print(f"\nshards test: {time.monotonic() - started:.1f}s after the clusters were up")


def test_without_a_map_everything_is_one_default_shard(dsn: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECINF_DSN", dsn)
    found = shards.shards()
    assert [s.name for s in found] == ["default"]
    assert conninfo_to_dict(found[0].conninfo)["dbname"] == conninfo_to_dict(dsn)["dbname"]
    made = shards.create_project("acme", "Solo")
    assert made["shard"] == "default"
    assert shards.shard_of("acme/solo").conninfo == found[0].conninfo
    with shards.connect_for_project("acme/solo") as conn:
        row = conn.execute("SELECT count(*) AS n FROM core.projects").fetchone()
        assert row is not None and row["n"] == 1
