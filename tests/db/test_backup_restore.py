"""`secinf db backup|backups|restore` with the real pgBackRest, on a private throwaway
cluster (never the shared one): a full backup, transaction A, a time T from the server,
transaction B, an incremental backup, then a restore to T into a second cluster on its own
port holds A's rows and not B's, while the first cluster runs on untouched; last, the same
restore --in-place over the stopped first cluster, which then backs up on a new timeline."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import replace
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner, Result

from tests.support.throwaway_cluster import free_port, throwaway_cluster
from workers.cli.db_cmd import app as db_app
from workers.db.cluster import LocalCluster

pytestmark = [
    pytest.mark.db,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("pgbackrest") is None,
                       reason="pgbackrest is not installed: `make system` installs Debian's "
                              "package (CI has it)"),
]


def secinf_db(*args: str) -> Result:
    result = CliRunner().invoke(db_app, list(args))
    assert result.exit_code == 0, (
        f"secinf db {' '.join(args)} exited {result.exit_code}: {result.exception}\n"
        f"{result.stdout}\n{result.stderr}")
    return result


def one(conninfo: str, sql: str) -> Any:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute(sql).fetchone()
        assert row is not None
        return row[0]


def ledger(conninfo: str) -> dict[str, int]:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        return dict(conn.execute(
            "SELECT tx, count(*)::int FROM public.ledger GROUP BY tx ORDER BY tx").fetchall())


def test_restore_to_a_time_has_the_rows_before_it_and_not_after(
        monkeypatch: pytest.MonkeyPatch) -> None:
    started = time.monotonic()
    with throwaway_cluster(prefix="secinf-backup-") as tc:
        for key, value in tc.env.items():
            monkeypatch.setenv(key, value)
        src = tc.conninfo
        src_port = tc.cluster.settings.port
        # A cluster secinf starts archives from the first start (no restart needed later),
        # discarding segments until backups are configured.
        assert one(src, "SHOW archive_mode") == "on"
        assert one(src, "SHOW archive_command") == "/bin/true"

        full = json.loads(secinf_db("backup", "--type", "full", "--json").stdout)
        assert full["type"] == "full" and full["repo"] == str(tc.home / "backups")
        command = one(src, "SHOW archive_command")
        assert "archive-push %p" in command and "--stanza=secinf" in command
        time.sleep(1.1)  # pgBackRest keeps whole seconds: T falls after the full's last one

        with psycopg.connect(src, autocommit=True) as conn:
            conn.execute("CREATE TABLE public.ledger (id int PRIMARY KEY, tx text NOT NULL)")
            with conn.transaction():  # transaction A
                conn.execute("INSERT INTO public.ledger SELECT g, 'A' "
                             "FROM generate_series(1, 50) g")
            row = conn.execute("SELECT now()").fetchone()  # after A committed
            assert row is not None
            target = row[0]
            time.sleep(0.05)
            with conn.transaction():  # transaction B, after T
                conn.execute("INSERT INTO public.ledger SELECT g, 'B' "
                             "FROM generate_series(51, 100) g")
            conn.execute("SELECT pg_switch_wal()")  # B's commit on its way to the archive

        incr = json.loads(secinf_db("backup", "--type", "incr", "--json").stdout)
        assert incr["type"] == "incr" and incr["prior"] == full["label"]
        listed = json.loads(secinf_db("backups", "--json").stdout)
        assert [b["label"] for b in listed["backups"]] == [full["label"], incr["label"]]
        assert listed["status"] == "ok" and listed["wal_max"] is not None
        assert "backups in" in secinf_db("backups").stdout

        restored_home = tc.home / "restored"
        port = free_port()
        assert port != src_port
        try:
            done = json.loads(secinf_db("restore", "--to", target.isoformat(), "--target-dir",
                                        str(restored_home), "--port", str(port),
                                        "--json").stdout)
            assert done["port"] == port and done["pgdata"] == str(restored_home / "pg15")
            assert done["backup"] == full["label"]  # the newest backup that ended before T
            copy = done["conninfo"]
            assert ledger(copy) == {"A": 50}  # A committed before T, B after it
            assert one(copy, "SELECT pg_is_in_recovery()") is False  # promoted
            assert one(copy, "SHOW port") == str(port)
            assert one(copy, "SHOW archive_command") == "/bin/true"  # not into our repository
            assert one(copy, "SELECT count(*) FROM _yoyo_migration") > 0  # the whole database
            # The first cluster is untouched: both transactions, still primary, same port.
            assert ledger(src) == {"A": 50, "B": 50}
            assert one(src, "SELECT pg_is_in_recovery()") is False
            assert one(src, "SHOW port") == str(src_port)
            assert tc.cluster.status().running
        finally:
            LocalCluster(replace(tc.cluster.settings, home=restored_home, port=port)
                         ).stop(mode="immediate")

        # Over the cluster itself: refused while it runs, then (stopped, confirmed) it comes
        # back at T on its own port and goes on archiving and backing up on a new timeline.
        refused = CliRunner().invoke(db_app, ["restore", "--to", target.isoformat(),
                                              "--in-place", "--yes"])
        assert "which is running: stop it first with `secinf db down`" in str(
            refused.exception)
        tc.cluster.stop()
        done = json.loads(secinf_db("restore", "--to", target.isoformat(), "--in-place",
                                    "--yes", "--json").stdout)
        assert done["in_place"] is True and done["port"] == src_port
        assert ledger(src) == {"A": 50}
        assert one(src, "SELECT pg_is_in_recovery()") is False
        after = json.loads(secinf_db("backup", "--json").stdout)
        assert after["type"] == "incr" and after["label"] != incr["label"]
    print(f"\nbackup and restore test: {time.monotonic() - started:.1f} s")
