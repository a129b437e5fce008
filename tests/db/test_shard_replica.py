"""A shard with a read replica (`secinf shards add … --read-conninfo`, `secinf shards
replica`): read-only work of a project on that shard goes to the replica (a real streaming
replica of a throwaway shard), writes to the shard's primary, and without a replica reads
go to the primary again (docs/scale.md, "Replicas of shards")."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from tests.support.replica import (
    NEEDS_LOCAL_REPLICA,
    caught_up,
    primary_settings,
    streaming_replica,
)
from tests.support.throwaway_cluster import ThrowawayCluster, throwaway_cluster
from workers import shards
from workers.appdb import shards as app_shards
from workers.db.connect import connect, connect_read
from workers.errors import ReadOnlyConnection, UserError
from workers.settings import Settings, load_settings

pytestmark = [pytest.mark.db, pytest.mark.slow, *NEEDS_LOCAL_REPLICA]


@dataclass
class Sharded:
    primary: ThrowawayCluster
    replica_conninfo: str
    control: str


@pytest.fixture(scope="module")
def sharded() -> Iterator[Sharded]:
    """A throwaway shard, its streaming replica, and a shard map beside the shard."""
    with throwaway_cluster(prefix="secinf-shard-replica-") as tc:
        with psycopg.connect(tc.cluster.settings.conninfo(dbname="postgres"),
                             autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE secinf_control"))
        with streaming_replica(tc) as replica:
            assert replica.conninfo is not None
            yield Sharded(tc, replica.conninfo, tc.cluster.settings.conninfo(
                dbname="secinf_control"))


@pytest.fixture
def settings(sharded: Sharded, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("SECINF_SHARDS", sharded.control)
    return load_settings()


def _server(conn: psycopg.Connection[dict[str, object]]) -> dict[str, object]:
    row = conn.execute("SELECT pg_is_in_recovery() AS standby, current_setting('port')::int "
                       "AS port, (SELECT count(*) FROM core.projects WHERE slug = 'north') "
                       "AS north").fetchone()
    assert row is not None
    return row


def test_reads_of_a_project_go_to_its_shards_replica_and_writes_to_its_primary(
        sharded: Sharded, settings: Settings) -> None:
    primary_port = sharded.primary.cluster.settings.port
    replica_port = int(str(conninfo_to_dict(sharded.replica_conninfo)["port"]))

    # The replica must be a hot standby: the primary named as one is refused.
    with pytest.raises(UserError, match="is not a hot standby"):
        shards.add_shard("s1", sharded.primary.conninfo, settings,
                         read_conninfo=sharded.primary.conninfo)
    added = shards.add_shard("s1", sharded.primary.conninfo, settings,
                             read_conninfo=sharded.replica_conninfo)
    assert conninfo_to_dict(added["read_conninfo"])["port"] == str(replica_port)
    made = shards.create_project("acme", "north", shard="s1", settings=settings)
    assert made["shard"] == "s1"
    caught_up(primary_settings(sharded.primary))

    def as_command(project: str | None = None) -> dict[str, dict[str, object]]:
        """What a `secinf` command with --project sees (routed as workers/cli/main.py does)."""
        with connect_read() as read, connect() as write:
            seen = {"read": _server(read), "write": _server(write)}
        with pytest.raises(ReadOnlyConnection) as refused, connect_read() as read:
            read.execute("INSERT INTO core.organizations (slug, name) VALUES ('x', 'x')")
        message = str(refused.value)
        assert message.startswith("this is the read replica at ")
        assert f":{replica_port}/secinf; writes go to the primary at " in message
        assert f":{primary_port}/secinf" in message
        return seen

    seen = shards.routed(as_command)(project="acme/north")
    assert seen["read"] == {"standby": True, "port": replica_port, "north": 1}
    assert seen["write"] == {"standby": False, "port": primary_port, "north": 1}

    # `secinf shards list` shows the replica (as the console script prints it).
    env = {"SECINF_SHARDS": sharded.control, "PATH": "/usr/bin:/bin",
           "SECINF_LOG_FORMAT": "text", **sharded.primary.env}
    listed = subprocess.run([sys.executable, "-m", "workers.cli.main", "shards", "list",
                             "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert row["name"] == "s1" and row["projects"] == 1
    assert f"port={replica_port}" in row["read_conninfo"]

    # The app's pools of the shard: its reads on the replica, as `authenticator`.
    ((write_ci, read_ci),) = app_shards.shard_pools(settings, "acme/north")
    assert conninfo_to_dict(write_ci)["port"] == str(primary_port)
    assert read_ci is not None and conninfo_to_dict(read_ci)["port"] == str(replica_port)
    assert conninfo_to_dict(read_ci)["user"] == "authenticator"

    # Without a replica the shard's reads go to its primary, still read-only.
    shards.set_replica("s1", None, settings)
    seen_after = shards.routed(lambda project=None: _read_server())(project="acme/north")
    assert seen_after == {"standby": False, "port": primary_port, "north": 1}
    assert app_shards.shard_pools(settings, "acme/north")[0][1] is None
    with pytest.raises(UserError, match="no shard 'nope'"):
        shards.set_replica("nope", None, settings)


def _read_server() -> dict[str, object]:
    with connect_read() as conn:
        return _server(conn)
