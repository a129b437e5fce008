"""The project's own Postgres cluster: initdb, start, stop, status.

Run as the `postgres` OS user when invoked as root (initdb and pg_ctl refuse root). Never
used when SECINF_DSN is set: then the user's server is the only server.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from workers.db.archiving import archive_command, conf_quote
from workers.errors import ClusterError
from workers.settings import Settings

SERVER_CONF = """\
# Rewritten by `secinf db up` on every start. To change a setting for good, use
# ALTER SYSTEM (postgresql.auto.conf is read after this file) or SECINF_* variables.
port = {port}
listen_addresses = '127.0.0.1'
unix_socket_directories = '{socket_dir}'
unix_socket_permissions = 0700
max_connections = 200
shared_buffers = 512MB
work_mem = 64MB
maintenance_work_mem = 256MB
max_wal_size = 4GB
shared_preload_libraries = 'timescaledb,pg_cron'
# pg_cron runs its jobs in background workers, so no password ever sits in a file.
cron.database_name = '{dbname}'
cron.use_background_workers = on
cron.log_run = on
max_worker_processes = 32
# Apache-only TimescaleDB: no job scheduler is needed (pg_cron schedules everything), and
# without per-database schedulers a database can serve as a template for test copies.
timescaledb.max_background_workers = 0
timescaledb.telemetry_level = off
log_min_messages = warning
log_line_prefix = '%m [%p] %q%u@%d '
# WAL archiving (docs/operations.md, "Backups"): on from the first start, so that enabling
# backups needs no restart. Until `secinf db backup` has configured pgBackRest, the command
# discards each segment (no backup exists that could use it); a reload switches it.
archive_mode = on
archive_command = {archive_command}
"""

HBA_CONF = """\
# Written by `secinf db up`. Unix socket (a private directory): trust. TCP: passwords.
# Members of `analyst` (analyst logins) reach secinf databases only: never the maintenance
# database or a template (docs/operations.md, "Analyst limits").
local   postgres,template1   +analyst                  reject
host    postgres,template1   +analyst   127.0.0.1/32   reject
host    postgres,template1   +analyst   ::1/128        reject
local   all   all                  trust
# Streaming replication (`secinf db replica up`): the superuser over the private socket only.
local   replication   postgres         trust
host    all   all   127.0.0.1/32   scram-sha-256
host    all   all   ::1/128        scram-sha-256
"""


@dataclass(frozen=True)
class ClusterStatus:
    initialised: bool
    running: bool
    pgdata: Path
    port: int


class LocalCluster:
    """Manage the cluster under `settings.home`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    # ------------------------------------------------------------------ helpers
    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if self.settings.run_as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if check and proc.returncode != 0:
            raise ClusterError(
                f"`{' '.join(args[:2])}` failed ({proc.returncode}): "
                f"{(proc.stderr or proc.stdout).strip()[-800:]}\n"
                f"See the server log at {self.settings.log_file}."
            )
        return proc

    def _bin(self, name: str) -> str:
        path = self.settings.pg_bin / name
        if not path.exists():
            raise ClusterError(
                f"{path} not found: PostgreSQL 15 is not installed. "
                "Run `make setup` (as root) or set SECINF_DSN to an existing server."
            )
        return str(path)

    def _prepare_home(self) -> None:
        home = self.settings.home
        for d in (home, self.settings.socket_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.settings.socket_dir.chmod(0o700)
        if self.settings.run_as_postgres:
            pg = pwd.getpwnam("postgres")
            for d in (home, self.settings.socket_dir):
                os.chown(d, pg.pw_uid, pg.pw_gid)
            if self.settings.log_file.exists():
                os.chown(self.settings.log_file, pg.pw_uid, pg.pw_gid)

    # ------------------------------------------------------------------ verbs
    def status(self) -> ClusterStatus:
        pgdata = self.settings.pgdata
        initialised = (pgdata / "PG_VERSION").exists()
        running = False
        if initialised:
            proc = self._run(self._bin("pg_ctl"), "status", "-D", str(pgdata), check=False)
            running = proc.returncode == 0
        return ClusterStatus(initialised, running, pgdata, self.settings.port)

    def init(self) -> bool:
        """Create the data directory once; returns True when it was created now."""
        self._prepare_home()
        if (self.settings.pgdata / "PG_VERSION").exists():
            return False
        self._run(
            self._bin("initdb"), "-D", str(self.settings.pgdata), "-U", "postgres",
            "--auth-local=trust", "--auth-host=scram-sha-256",
            "--encoding=UTF8", "--locale=C.UTF-8",
        )
        return True

    def write_config(self) -> bool:
        """Write the server's configuration; returns True when pg_hba.conf or secinf.conf
        changed (a running server needs a reload)."""
        s = self.settings
        conf = SERVER_CONF.format(port=s.port, socket_dir=s.socket_dir, dbname=s.dbname,
                                  archive_command=conf_quote(archive_command(s)))
        target = s.pgdata / "secinf.conf"
        main_conf = s.pgdata / "postgresql.conf"
        hba = s.pgdata / "pg_hba.conf"
        changed = not hba.exists() or hba.read_text() != HBA_CONF
        changed |= not target.exists() or target.read_text() != conf
        self._write_as_owner(target, conf)
        self._write_as_owner(hba, HBA_CONF)
        text = main_conf.read_text()
        if "include 'secinf.conf'" not in text:
            self._write_as_owner(main_conf, text + "\ninclude 'secinf.conf'\n")
        return changed

    def _write_as_owner(self, path: Path, text: str) -> None:
        path.write_text(text)
        if self.settings.run_as_postgres:
            pg = pwd.getpwnam("postgres")
            os.chown(path, pg.pw_uid, pg.pw_gid)
            path.chmod(0o600)

    def start(self) -> bool:
        """Start the server if it is not running; returns True when started now."""
        self.init()
        changed = self.write_config()
        if self.status().running:
            if changed:  # a running server reads its files again on reload only
                self._run(self._bin("pg_ctl"), "reload", "-D", str(self.settings.pgdata))
            return False
        self._prepare_home()
        log = self.settings.log_file
        if self.settings.run_as_postgres and not log.exists():
            log.touch()
            pg = pwd.getpwnam("postgres")
            os.chown(log, pg.pw_uid, pg.pw_gid)
        self._run(
            self._bin("pg_ctl"), "start", "-w", "-t", "60",
            "-D", str(self.settings.pgdata), "-l", str(log),
        )
        return True

    def stop(self, mode: str = "fast") -> bool:
        if not self.status().running:
            return False
        self._run(self._bin("pg_ctl"), "stop", "-w", "-m", mode, "-D", str(self.settings.pgdata))
        return True

    def restart(self) -> None:
        self.write_config()
        self._run(
            self._bin("pg_ctl"), "restart", "-w", "-t", "60", "-m", "fast",
            "-D", str(self.settings.pgdata), "-l", str(self.settings.log_file),
        )

    def destroy(self) -> None:
        """Stop and delete the data directory (used by `secinf db destroy`)."""
        self.stop()
        shutil.rmtree(self.settings.pgdata, ignore_errors=True)
