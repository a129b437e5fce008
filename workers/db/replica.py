"""A streaming read replica of the project's cluster, for local use (`secinf db replica`).

`up` copies the running primary with `pg_basebackup -R` (a physical slot keeps the WAL the
replica still needs) into `<home>/replica` (SECINF_REPLICA_HOME): its own pg15/, run/ and
postgres.log, on its own port (SECINF_REPLICA_PORT, else the first free one after the
primary's, remembered in replica.json), and starts it as a hot standby. `status` reads the
lag from both sides; `down` stops the replica, deletes its directory and drops the slot.
Read-only work reaches it through SECINF_READ_DSN (workers.db.connect.connect_read).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from workers.db.backup import free_port, port_free
from workers.db.cluster import LocalCluster
from workers.db.connect import address
from workers.db.queries import query
from workers.errors import ClusterError, DatabaseUnavailable, UserError
from workers.settings import Settings

SLOT = "secinf_replica"
"""The physical replication slot on the primary (and the replica's cluster_name, which its
WAL receiver reports as application_name in pg_stat_replication)."""
STATE_FILE = "replica.json"
STREAM_TIMEOUT_S = 60.0

REPLICA_CONF = """\
# Written by `secinf db replica up`: a hot standby of the cluster at {primary}.
# (postgresql.auto.conf holds primary_conninfo and primary_slot_name, from pg_basebackup -R.)
cluster_name = '{slot}'
hot_standby = on
# Long analyst queries are not cancelled by the primary's vacuum (it keeps the rows they
# read instead); a replay conflict waits at most this long for a query to finish.
hot_standby_feedback = on
max_standby_streaming_delay = 30s
"""

EXTERNAL_STEPS = """\
SECINF_DSN is set: secinf starts a replica only of the cluster it runs itself. For the \
server at {primary}, its operator would:
  1. on the primary: CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD '…';
     pg_hba.conf: host replication replicator <replica host>/32 scram-sha-256; reload
  2. on the replica host (same PostgreSQL 15, TimescaleDB and pg_cron), as postgres:
     pg_basebackup -h <primary host> -p {port} -U replicator -D <data dir> -R -X stream \
-C -S {slot}
     then start it (hot_standby = on, hot_standby_feedback = on, the primary's
     shared_preload_libraries)
  3. here: SECINF_READ_DSN='host=<replica host> port=<its port> dbname={dbname} \
user=<as in SECINF_DSN>'
`secinf db replica status` then shows its lag (it reads SECINF_DSN and SECINF_READ_DSN)."""

Step = Callable[[str], None]


@dataclass(frozen=True)
class ReplicaStatus:
    """What `secinf db replica status` reports (one standby)."""

    managed: bool
    """True for the local replica of `secinf db replica up`; False for SECINF_READ_DSN's."""
    exists: bool
    running: bool
    home: Path | None
    port: int | None
    conninfo: str | None
    """The replica's admin conninfo (what SECINF_READ_DSN should hold)."""
    streaming: bool
    """The primary lists it in pg_stat_replication in state `streaming`."""
    lag_bytes: int | None
    """The primary's WAL position minus the replica's replay position."""
    lag_seconds: float | None
    """0 when everything is replayed; else the primary's measured replay lag, or (when it
    has none, after an idle spell) the age of the last replayed commit."""
    replay_lag_seconds: float | None
    """The primary's own estimate (pg_stat_replication.replay_lag; NULL when idle)."""
    last_replay_at: Any
    slot_retained_bytes: int | None
    """WAL the primary keeps for the slot (grows while the replica is down)."""

    def row(self) -> dict[str, Any]:
        return {"managed": self.managed, "exists": self.exists, "running": self.running,
                "home": str(self.home) if self.home else None, "port": self.port,
                "conninfo": self.conninfo, "streaming": self.streaming,
                "lag_bytes": self.lag_bytes, "lag_seconds": self.lag_seconds,
                "replay_lag_seconds": self.replay_lag_seconds,
                "last_replay_at": self.last_replay_at,
                "slot_retained_bytes": self.slot_retained_bytes}


# --------------------------------------------------------------------------- where
def require_managed(settings: Settings) -> None:
    if not settings.managed:
        raise UserError(EXTERNAL_STEPS.format(primary=address(settings.conninfo()),
                                              port=_port_of(settings), slot=SLOT,
                                              dbname=settings.database))


def _port_of(settings: Settings) -> str:
    from psycopg.conninfo import conninfo_to_dict

    return str(conninfo_to_dict(settings.conninfo()).get("port") or 5432)


def _saved_port(home: Path) -> int | None:
    try:
        return int(json.loads((home / STATE_FILE).read_text())["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def replica_settings(settings: Settings, port: int | None = None) -> Settings:
    """The replica's own settings: its home and port (no backups of its own)."""
    home = settings.replica_dir.absolute()
    chosen = port or _saved_port(home) or settings.replica_port or settings.port + 1
    return replace(settings, home=home, port=chosen, backup_repo=None, replica_home=None,
                   read_dsn=None)


def _check_home(settings: Settings) -> Path:
    home = settings.replica_dir.absolute()
    for theirs in (settings.home.absolute(), settings.pgdata.absolute()):
        if home == theirs or theirs.is_relative_to(home) or (
                theirs == settings.pgdata.absolute() and home.is_relative_to(theirs)):
            raise UserError(f"SECINF_REPLICA_HOME={home} holds the primary's data: choose "
                            "a directory of its own (default <home>/replica)")
    return home


def _admin(settings: Settings) -> psycopg.Connection[dict[str, Any]]:
    return psycopg.connect(settings.conninfo(dbname="postgres"), autocommit=True,
                           row_factory=dict_row, connect_timeout=5)


def _slot(settings: Settings) -> dict[str, Any] | None:
    with _admin(settings) as conn:
        return conn.execute(query("replica", "slot"), {"slot": SLOT}).fetchone()


def _drop_slot(settings: Settings, wait_s: float = 10.0) -> bool:
    """Drop the slot once no WAL sender holds it; True when one was dropped."""
    deadline = time.monotonic() + wait_s
    while True:
        slot = _slot(settings)
        if slot is None:
            return False
        if not slot["active"]:
            with _admin(settings) as conn:
                conn.execute(query("replica", "drop_slot"), {"slot": SLOT})
            return True
        if time.monotonic() > deadline:
            raise ClusterError(f"the replication slot {SLOT} is still in use on the primary: "
                               "is another replica streaming from it? (pg_stat_replication)")
        time.sleep(0.2)


# --------------------------------------------------------------------------- verbs
def up(settings: Settings, step: Step | None = None) -> ReplicaStatus:
    """Create (once) and start the local replica; returns its status once it streams."""
    say = step or (lambda _: None)
    require_managed(settings)
    primary = LocalCluster(settings)
    if not primary.status().running:
        raise UserError(f"the primary at {settings.pgdata} is not running: start it with "
                        "`secinf db up` first")
    # Rewrites the primary's files (pg_hba.conf's replication line) and reloads if changed.
    primary.start()
    home = _check_home(settings)
    rs = replica_settings(settings)
    replica = LocalCluster(rs)
    if (rs.pgdata / "PG_VERSION").exists():
        if not (home / STATE_FILE).exists():
            raise UserError(f"{rs.pgdata} holds a data directory secinf did not make a "
                            "replica: choose another SECINF_REPLICA_HOME")
        say(f"starting the replica on port {rs.port}")
        replica.start()
    else:
        if rs.pgdata.exists() and any(rs.pgdata.iterdir()):
            raise UserError(f"{rs.pgdata} is not empty: delete it, or choose another "
                            "SECINF_REPLICA_HOME")
        if not settings.replica_port and not port_free(rs.port):
            rs = replica_settings(settings, free_port(settings.port + 1))
            replica = LocalCluster(rs)
        elif not port_free(rs.port):
            raise UserError(f"SECINF_REPLICA_PORT={rs.port} is in use: choose a free port, "
                            "or unset it to take the first free one")
        _create(settings, rs, say)
    return _wait_streaming(settings, rs)


def _create(settings: Settings, rs: Settings, say: Step) -> None:
    replica = LocalCluster(rs)
    replica._prepare_home()
    _drop_slot(settings, wait_s=0.0)  # an inactive one left by a replica deleted by hand
    say(f"copying the primary (pg_basebackup) into {rs.pgdata}")
    try:
        replica._run(
            replica._bin("pg_basebackup"), "-h", str(settings.socket_dir),
            "-p", str(settings.port), "-U", "postgres", "-D", str(rs.pgdata),
            "-R", "-X", "stream", "-C", "-S", SLOT, "--checkpoint=fast", "--no-password")
        (rs.home / STATE_FILE).write_text(json.dumps(
            {"port": rs.port, "primary": address(settings.conninfo()), "slot": SLOT}) + "\n")
        replica.write_config()  # its own port, socket directory and pg_hba.conf
        replica._write_as_owner(rs.pgdata / "replica.conf", REPLICA_CONF.format(
            primary=address(settings.conninfo()), slot=SLOT))
        conf = rs.pgdata / "postgresql.conf"
        text = conf.read_text()
        if "include 'replica.conf'" not in text:
            replica._write_as_owner(conf, text + "include 'replica.conf'\n")
        say(f"starting the replica on port {rs.port}")
        replica.start()
    except BaseException:
        if (rs.pgdata / "PG_VERSION").exists():
            replica.stop(mode="immediate")
        shutil.rmtree(rs.home, ignore_errors=True)
        _drop_slot(settings, wait_s=5.0)
        raise


def _wait_streaming(settings: Settings, rs: Settings) -> ReplicaStatus:
    deadline = time.monotonic() + STREAM_TIMEOUT_S
    while True:
        st = status(settings)
        if st.streaming:
            return st
        if time.monotonic() > deadline:
            raise ClusterError(f"the replica on port {rs.port} does not stream from the "
                               f"primary after {STREAM_TIMEOUT_S:.0f} s: see its log "
                               f"{rs.log_file}")
        time.sleep(0.2)


def down(settings: Settings) -> bool:
    """Stop the local replica, delete its directory and drop its slot; False when there
    was none."""
    require_managed(settings)
    home = _check_home(settings)
    if not home.exists():
        dropped = _drop_slot(settings, wait_s=0.0) if _primary_up(settings) else False
        return dropped
    if not (home / STATE_FILE).exists():
        raise UserError(f"{home} is not a replica secinf made (no {STATE_FILE}): "
                        "nothing deleted")
    rs = replica_settings(settings)
    if (rs.pgdata / "PG_VERSION").exists():
        LocalCluster(rs).stop()
    shutil.rmtree(home)
    if _primary_up(settings):
        _drop_slot(settings)
    return True


def _primary_up(settings: Settings) -> bool:
    return LocalCluster(settings).status().running


# --------------------------------------------------------------------------- status
def primary_view(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """pg_stat_replication on the primary, one row per standby (`secinf db status`)."""
    return [dict(r) for r in conn.execute(query("replica", "primary_replication"))]


def status(settings: Settings) -> ReplicaStatus:
    """The replica's state from both sides: the local one, or SECINF_READ_DSN's."""
    managed = (settings.managed and settings.read_dsn is None) or _is_local(settings)
    home: Path | None = None
    port: int | None = None
    exists = running = False
    conninfo: str | None = settings.read_conninfo() if settings.read_dsn else None
    if managed:
        rs = replica_settings(settings)
        home, port = rs.home, rs.port
        exists = (rs.pgdata / "PG_VERSION").exists()
        running = exists and LocalCluster(rs).status().running
        conninfo = conninfo or rs.conninfo()
    elif conninfo is None:
        raise UserError("no replica to report on: SECINF_DSN is set and SECINF_READ_DSN is "
                        "not (see `secinf db replica up` for how to make one)")
    mine: dict[str, Any] | None = None
    if conninfo is not None and (running or not managed):
        try:
            with psycopg.connect(conninfo, autocommit=True, row_factory=dict_row,
                                 connect_timeout=5) as conn:
                mine = conn.execute(query("replica", "replica_state")).fetchone()
            running = True
        except psycopg.OperationalError:
            mine = None
    try:
        with psycopg.connect(settings.conninfo(), autocommit=True, row_factory=dict_row,
                             connect_timeout=5) as conn:
            rows = primary_view(conn)
            slot = conn.execute(query("replica", "slot"), {"slot": SLOT}).fetchone()
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(
            f"cannot reach the primary at {address(settings.conninfo())} to read the "
            f"replication state: {str(exc).strip().splitlines()[0]} (`secinf db up`)") from exc
    name = (mine or {}).get("cluster_name") or SLOT
    ours = [r for r in rows if r["application_name"] == name] or (
        rows if len(rows) == 1 and not managed else [])
    row = ours[0] if ours else None
    lag_bytes = int(row["lag_bytes"]) if row and row["lag_bytes"] is not None else None
    replay_lag = row["replay_lag_seconds"] if row else None
    lag_seconds: float | None = None
    if mine is not None and mine["in_recovery"]:
        age = mine["last_replay_age_seconds"]
        if lag_bytes == 0:
            lag_seconds = 0.0
        elif replay_lag is not None:  # measured by the primary while WAL flows
            lag_seconds = float(replay_lag)
        elif mine["replay_caught_up"]:  # replayed all it got: the rest is on its way
            lag_seconds = 0.0
        elif age is not None:
            lag_seconds = max(float(age), 0.0)
    return ReplicaStatus(
        managed=managed, exists=exists or mine is not None, running=running, home=home,
        port=port, conninfo=conninfo,
        streaming=bool(row and row["state"] == "streaming"),
        lag_bytes=lag_bytes, lag_seconds=lag_seconds,
        replay_lag_seconds=replay_lag,
        last_replay_at=mine["last_replay_at"] if mine else None,
        slot_retained_bytes=int(slot["retained_bytes"]) if slot and
        slot["retained_bytes"] is not None else None)


def _is_local(settings: Settings) -> bool:
    """SECINF_READ_DSN names the local replica (its socket directory)."""
    if not settings.managed or settings.read_dsn is None:
        return False
    from psycopg.conninfo import conninfo_to_dict

    host = str(conninfo_to_dict(settings.read_dsn).get("host") or "")
    return host == str(replica_settings(settings).socket_dir)
