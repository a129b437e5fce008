"""Backups and point-in-time restore of the project's cluster with Debian's pgBackRest.

One stanza (`secinf`) with a local repository (`SECINF_BACKUP_REPO`, default
`<home>/backups`) and a configuration file of its own (`<home>/pgbackrest/pgbackrest.conf`,
passed with `--config`; /etc/pgbackrest.conf is never read). pgBackRest runs as the
`postgres` OS user when secinf runs as root (like `cluster.py`), else as the invoking user,
who must own the data directory. A restore goes into a second cluster directory on its own
port; over the cluster itself only with `in_place` and the cluster stopped.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import socket
import subprocess
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from workers.db.archiving import STANZA, BackupPaths, backup_paths, pgbackrest_exe
from workers.db.cluster import LocalCluster
from workers.db.queries import query
from workers.errors import BackupError, UserError
from workers.settings import Settings

BACKUP_TYPES = ("full", "diff", "incr")
RETENTION_FULL = 2
"""Full backups kept (with the differentials, incrementals and WAL that depend on them)."""
PROMOTE_TIMEOUT_S = 600.0
Progress = Callable[[float], None]
"""Called with the percentage done of a backup or restore."""

CONFIG = """\
# Written by `secinf db backup` on every run (settings: SECINF_BACKUP_REPO); edits are lost.
# Used by secinf and by the cluster's archive_command, always through --config.
[global]
repo1-path={repo}
repo1-retention-full={retention}
log-path={log}
lock-path={lock}
start-fast=y
compress-type=zst
process-max=2
log-level-console=warn
log-level-file=info

[{stanza}]
pg1-path={pgdata}
pg1-port={port}
pg1-socket-path={socket}
pg1-user=postgres
"""

EXTERNAL_CONFIG = """\
# pgBackRest for the server in SECINF_DSN: run on the database host, as its OS user.
# /etc/pgbackrest/pgbackrest.conf
[global]
repo1-path=/var/lib/pgbackrest
repo1-retention-full={retention}
start-fast=y
compress-type=zst

[{stanza}]
pg1-path={pgdata}
pg1-port={port}

# postgresql.conf (archive_mode needs a restart; archive_command a reload):
#   archive_mode = on
#   archive_command = 'pgbackrest --stanza={stanza} archive-push %p'
# then, as the server's OS user:
#   pgbackrest --stanza={stanza} stanza-create
#   pgbackrest --stanza={stanza} check
#   pgbackrest --stanza={stanza} --type=full backup      # and --type=incr, e.g. daily
#   pgbackrest --stanza={stanza} info
"""

_PERCENT = re.compile(r", ([0-9.]+)%\)")
_ERROR = re.compile(r"ERROR: \[(\d+)\]: (.*)")
# pgBackRest's error codes (src/build/error/error.yaml) with the fix a user can act on.
_HINTS = {
    "082": "WAL did not reach the repository in time: the server's archive_command must run "
           "`pgbackrest … archive-push` (`secinf db backup` sets it and reloads); look for "
           "archive errors in the server log {server_log}",
    "028": "the repository {repo} holds the backups of another cluster (was the data "
           "directory re-created?): point SECINF_BACKUP_REPO at an empty directory",
    "055": "a file pgBackRest needs is missing: run `secinf db backup` to write its "
           "configuration and create the stanza",
    "075": "the repository {repo} has no backup yet: run `secinf db backup --type full`",
    "038": "another pgBackRest command holds the stanza's lock: wait for it to finish "
           "(locks: {lock})",
    "050": "another pgBackRest command holds the stanza's lock: wait for it to finish "
           "(locks: {lock})",
}


@dataclass(frozen=True)
class Backup:
    """One backup set, as `pgbackrest info` reports it."""

    label: str
    type: str
    started: datetime
    stopped: datetime
    size: int
    """Bytes of the database at backup time."""
    repo_size: int
    """Bytes stored in the repository for this backup (compressed, this set's files only)."""
    prior: str | None
    wal_start: str | None
    wal_stop: str | None

    def row(self) -> dict[str, Any]:
        return {"label": self.label, "type": self.type, "started": self.started,
                "stopped": self.stopped, "size": self.size, "repo_size": self.repo_size,
                "prior": self.prior, "wal_start": self.wal_start, "wal_stop": self.wal_stop}


@dataclass(frozen=True)
class Restored:
    """Where a restore went."""

    home: Path
    pgdata: Path
    port: int
    conninfo: str
    backup: str
    target: datetime
    in_place: bool


# --------------------------------------------------------------------------- running
def require_pgbackrest() -> str:
    exe = pgbackrest_exe()
    if exe is None:
        raise BackupError("pgbackrest is not installed: run `make system` (as root), which "
                          "installs Debian's pgbackrest package")
    return exe


def require_managed(settings: Settings, does: str) -> None:
    if not settings.managed:
        raise UserError(
            f"SECINF_DSN is set: secinf {does} only the cluster it runs itself. Backups of "
            "an external server are that server's operator's job; `secinf db backup` prints "
            "a pgBackRest configuration they could use.")


def _check_owner(settings: Settings) -> None:
    """Without root, pgBackRest runs as the invoking user: they must own the data dir."""
    if settings.run_as_postgres or not settings.pgdata.exists():
        return
    owner = settings.pgdata.stat().st_uid
    if owner != os.geteuid():
        raise BackupError(
            f"{settings.pgdata} belongs to uid {owner}, not to you (uid {os.geteuid()}): "
            "run secinf as that user, or as root (then pgBackRest runs as `postgres`)")


class PgBackRest:
    """The pgbackrest binary with the stanza's configuration, as the data directory's user."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.paths = backup_paths(settings)
        self.exe = require_pgbackrest()
        _check_owner(settings)

    def command(self, verb: str, *args: str) -> list[str]:
        cmd = [self.exe, f"--config={self.paths.config}", f"--stanza={STANZA}", *args, verb]
        if self.settings.run_as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return cmd

    def run(self, verb: str, *args: str, progress: Progress | None = None,
            level: str | None = None) -> str:
        """Run one command; its console output (detail level when progress is wanted)."""
        level = level or ("detail" if progress is not None else "info")
        cmd = self.command(verb, f"--log-level-console={level}", *args)
        tail: deque[str] = deque(maxlen=60)
        lines: list[str] = []
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip())
            if progress is None:
                lines.append(line)
            else:
                m = _PERCENT.search(line)
                if m:
                    progress(float(m.group(1)))
        rc = proc.wait()
        if rc != 0:
            raise BackupError(self.explain(verb, rc, tail))
        return "".join(lines)

    def explain(self, verb: str, rc: int, tail: Iterable[str]) -> str:
        lines = list(tail)
        errors = [m for m in map(_ERROR.search, lines) if m]
        what = errors[-1].group(2).strip() if errors else (lines[-1] if lines else "no output")
        code = errors[-1].group(1) if errors else f"{rc:03d}"
        hint = _HINTS.get(code, "").format(repo=self.paths.repo, lock=self.paths.lock_dir,
                                           server_log=self.settings.log_file)
        return (f"`pgbackrest {verb}` failed ({code}): {what}"
                + (f"\nFix: {hint}" if hint else "")
                + f"\nLog: {self.paths.log_dir}/{STANZA}-{verb}.log")


def _chown_to_server_user(settings: Settings, *paths: Path) -> None:
    if settings.run_as_postgres:
        pg = pwd.getpwnam("postgres")
        for p in paths:
            os.chown(p, pg.pw_uid, pg.pw_gid)


# --------------------------------------------------------------------------- configuration
def render_config(settings: Settings, paths: BackupPaths) -> str:
    return CONFIG.format(repo=paths.repo, retention=RETENTION_FULL, log=paths.log_dir,
                         lock=paths.lock_dir, stanza=STANZA, pgdata=settings.pgdata,
                         port=settings.port, socket=settings.socket_dir)


def write_config(settings: Settings) -> BackupPaths:
    """Create the repository and pgBackRest's directories; (re)write its configuration."""
    paths = backup_paths(settings)
    for d in (paths.base, paths.log_dir, paths.lock_dir, paths.repo):
        d.mkdir(mode=0o750, parents=True, exist_ok=True)
    paths.config.write_text(render_config(settings, paths))
    paths.config.chmod(0o640)
    _chown_to_server_user(settings, paths.base, paths.log_dir, paths.lock_dir, paths.repo,
                          paths.config)
    return paths


def external_config(settings: Settings) -> str:
    """A pgBackRest configuration for the SECINF_DSN server, filled in where it tells."""
    params = conninfo_to_dict(settings.conninfo())
    pgdata, port = "<the server's data_directory>", str(params.get("port") or 5432)
    try:
        with psycopg.connect(settings.conninfo(), row_factory=dict_row,
                             connect_timeout=5) as conn:
            row = conn.execute(query("backup", "server_location")).fetchone()
            if row:
                pgdata, port = str(row["data_directory"]), str(row["port"])
    except psycopg.Error:
        pass
    return EXTERNAL_CONFIG.format(retention=RETENTION_FULL, stanza=STANZA, pgdata=pgdata,
                                  port=port)


def _settings_of(conn: psycopg.Connection[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in conn.execute(query("backup", "archive_settings"))}


def ensure_archiving(settings: Settings, *, restart: bool = False) -> list[str]:
    """Point the running cluster's archive_command at pgBackRest (a reload) and make sure
    archive_mode is on; that takes a restart, done only when `restart` is given. Returns
    what was done, for the user."""
    cluster = LocalCluster(settings)
    notes: list[str] = []
    cluster.start()  # running: rewrites secinf.conf and reloads if it changed
    deadline = time.monotonic() + 10
    while True:
        with psycopg.connect(settings.conninfo(dbname="postgres"), row_factory=dict_row,
                             autocommit=True) as conn:
            current = _settings_of(conn)
        if "pgbackrest" in current["archive_command"]["setting"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)  # the reload reaches new backends within moments
    if "pgbackrest" not in current["archive_command"]["setting"]:
        raise BackupError(
            f"the server still archives with {current['archive_command']['setting']!r} after "
            f"a reload: is {settings.pgdata}/postgresql.conf still including secinf.conf "
            "last, or does postgresql.auto.conf set archive_command (ALTER SYSTEM RESET "
            "archive_command)?")
    if current["wal_level"]["setting"] == "minimal":
        raise BackupError("wal_level is minimal: ALTER SYSTEM RESET wal_level, then restart "
                          "with `secinf db down && secinf db up`")
    if current["archive_mode"]["setting"] != "on":
        if not restart:
            raise BackupError(
                f"archive_mode is off on the running cluster ({settings.pgdata}): it changes "
                "only at a restart, which cuts every connection. Restart once with "
                "`secinf db down && secinf db up` at a quiet moment, or repeat with "
                "`--restart` to let `secinf db backup` do it now.")
        cluster.restart()
        notes.append("restarted the cluster once: archive_mode = on takes a restart "
                     "(later backups need none)")
    return notes


def prepare(settings: Settings, *, restart: bool = False) -> tuple[PgBackRest, list[str]]:
    """Configuration, archiving and the stanza; safe to repeat (stanza-create is)."""
    require_managed(settings, "backs up")
    pgbr = PgBackRest(settings)
    if not LocalCluster(settings).status().running:
        raise BackupError(f"the cluster at {settings.pgdata} is not running: start it with "
                          "`secinf db up` (an online backup needs the server)")
    write_config(settings)
    notes = ensure_archiving(settings, restart=restart)
    pgbr.run("stanza-create")
    return pgbr, notes


# --------------------------------------------------------------------------- verbs
def backup(pgbr: PgBackRest, kind: str = "incr", progress: Progress | None = None) -> Backup:
    """Check that WAL reaches the repository, then take a backup; returns it."""
    if kind not in BACKUP_TYPES:
        raise UserError(f"--type {kind!r}: use one of {', '.join(BACKUP_TYPES)}")
    pgbr.run("check")
    pgbr.run("backup", f"--type={kind}", progress=progress)
    return backups(pgbr.settings)[-1]


def info(settings: Settings) -> dict[str, Any]:
    """The stanza's entry of `pgbackrest info --output=json`."""
    require_managed(settings, "lists the backups of")
    pgbr = PgBackRest(settings)
    if not pgbr.paths.config.exists():
        raise UserError("no backups are configured for this cluster: run `secinf db backup` "
                        "(the first one is full)")
    data = json.loads(pgbr.run("info", "--output=json", level="warn"))
    stanza = next((s for s in data if s.get("name") == STANZA), None)
    if stanza is None:
        raise BackupError(f"`pgbackrest info` knows no stanza {STANZA!r} in {pgbr.paths.repo}: "
                          "run `secinf db backup`")
    return dict(stanza)


def _stamp(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def parse_backups(stanza: dict[str, Any]) -> list[Backup]:
    out = []
    for b in stanza.get("backup", []):
        arch = b.get("archive") or {}
        out.append(Backup(
            label=b["label"], type=b["type"], started=_stamp(b["timestamp"]["start"]),
            stopped=_stamp(b["timestamp"]["stop"]), size=int(b["info"]["size"]),
            repo_size=int(b["info"]["repository"]["delta"]), prior=b.get("prior"),
            wal_start=arch.get("start"), wal_stop=arch.get("stop")))
    return sorted(out, key=lambda x: x.stopped)


def backups(settings: Settings) -> list[Backup]:
    return parse_backups(info(settings))


def parse_time(text: str) -> datetime:
    """An ISO 8601 time with a zone (`2026-05-01 12:00:00+02`, `…Z`) for `--to`."""
    raw = text.strip()
    try:
        value = datetime.fromisoformat(raw.replace(" ", "T", 1) if " " in raw else raw)
    except ValueError as exc:
        raise UserError(f"--to {text!r} is not a time: give ISO 8601 with a zone, e.g. "
                        "'2026-05-01 12:00:00+00' (as `SELECT now()` prints it)") from exc
    if value.tzinfo is None:
        raise UserError(f"--to {text!r} has no time zone: add one, e.g. '{raw}+00' for UTC")
    return value.astimezone(UTC)


def choose_backup(sets: list[Backup], target: datetime) -> Backup:
    """The newest backup that ended before `target` (pgBackRest's stop times are whole
    seconds, truncated: one that ended in the target's second is taken only when no older
    one exists)."""
    if not sets:
        raise UserError("the repository holds no backup yet: run `secinf db backup`")
    safe = [b for b in sets if b.stopped.timestamp() + 1 <= target.timestamp()]
    close = [b for b in sets if b.stopped <= target]
    chosen = (safe or close)
    if not chosen:
        first = sets[0]
        raise UserError(
            f"--to {target.isoformat()} is before the end of the oldest backup "
            f"({first.label}, ended {first.stopped.isoformat()}): no backup can be recovered "
            "to that time; choose a later one (`secinf db backups` lists them)")
    return chosen[-1]


def free_port(start: int, count: int = 50) -> int:
    for port in range(start, start + count):
        if port_free(port):
            return port
    raise UserError(f"no free port in {start}-{start + count - 1}: pass --port N")


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _seal_wal(pgbr: PgBackRest) -> None:
    """Have a commit stamped now in the archive, so recovery can find the end of any target
    up to now (`check` switches the WAL segment and waits until it is archived)."""
    with psycopg.connect(pgbr.settings.conninfo(), autocommit=True,
                         row_factory=dict_row) as conn:
        conn.execute(query("backup", "seal_wal"))
    pgbr.run("check")


def restore(settings: Settings, target: datetime, *, target_home: Path | None = None,
            port: int | None = None, in_place: bool = False,
            progress: Progress | None = None, on_step: Callable[[str], None] | None = None
            ) -> Restored:
    """Restore the backups to `target` (a time) and start the result, promoted.

    By default into a second cluster (`target_home`/pg15 on `port`); with `in_place`, over
    the project's own data directory, which must be stopped.
    """
    step = on_step or (lambda _: None)
    target = target.astimezone(UTC)
    require_managed(settings, "restores")
    pgbr = PgBackRest(settings)
    sets = parse_backups(info(settings))
    source = LocalCluster(settings)
    running = source.status().running
    if running:
        with psycopg.connect(settings.conninfo(), row_factory=dict_row) as conn:
            row = conn.execute(query("backup", "server_now")).fetchone()
            now: datetime = row["now"] if row else datetime.now(UTC)
    else:
        now = datetime.now(UTC)
    if target > now:
        raise UserError(f"--to {target.isoformat()} is in the future (the server's time is "
                        f"{now.isoformat()}): give a past time")
    chosen = choose_backup(sets, target)

    if in_place:
        if running:
            raise UserError(f"--in-place restores over {settings.pgdata}, which is running: "
                            "stop it first with `secinf db down`")
        restored = settings
        extra = ["--delta"]
    else:
        home = (target_home or settings.home / f"restore-{now:%Y%m%dT%H%M%S}").absolute()
        pgdata_now = settings.pgdata.absolute()
        if pgdata_now.is_relative_to(home) or home.is_relative_to(pgdata_now):
            raise UserError(f"--target-dir {home} holds the running cluster's data: choose "
                            "another directory (or --in-place, with the cluster stopped)")
        pgdata = home / "pg15"
        if pgdata.exists() and any(pgdata.iterdir()):
            raise UserError(f"{pgdata} is not empty: choose another --target-dir, or delete "
                            "the old restore (stop it first: SECINF_HOME=… secinf db down)")
        if port is None:
            port = free_port(settings.port + 1)
        elif port == settings.port or not port_free(port):
            raise UserError(f"--port {port} is in use: choose a free port, or leave it out "
                            "to take the first free one")
        home.mkdir(mode=0o755, parents=True, exist_ok=True)
        pgdata.mkdir(mode=0o700, exist_ok=True)
        _chown_to_server_user(settings, home, pgdata)
        # No pgBackRest configuration under the new home: its archive_command discards WAL,
        # so the copy never writes into this cluster's repository.
        restored = replace(settings, home=home, port=port, backup_repo=None)
        extra = []

    if running:
        step("archiving the WAL up to now")
        _seal_wal(pgbr)
    step(f"restoring {chosen.label} and the WAL to {target.isoformat()}")
    pgbr.run("restore", "--type=time",
             f"--target={target.strftime('%Y-%m-%d %H:%M:%S.%f')}+00",
             "--target-action=promote", f"--set={chosen.label}",
             f"--pg1-path={restored.pgdata}", *extra, progress=progress)
    step(f"starting the restored cluster on port {restored.port} (recovering)")
    cluster = LocalCluster(restored)
    cluster.start()
    _wait_promoted(restored, target)
    return Restored(home=restored.home, pgdata=restored.pgdata, port=restored.port,
                    conninfo=restored.conninfo(), backup=chosen.label, target=target,
                    in_place=in_place)


def _wait_promoted(settings: Settings, target: datetime) -> None:
    """Until recovery reached the target and promoted; the server log's end if it died."""
    cluster = LocalCluster(settings)
    deadline = time.monotonic() + PROMOTE_TIMEOUT_S
    while time.monotonic() < deadline:
        if not cluster.status().running:
            break
        try:
            with psycopg.connect(settings.conninfo(dbname="postgres"), row_factory=dict_row,
                                 autocommit=True, connect_timeout=5) as conn:
                row = conn.execute(query("backup", "in_recovery")).fetchone()
                if row and not row["in_recovery"]:
                    return
        except psycopg.OperationalError:
            pass
        time.sleep(0.3)
    log = _log_tail(settings.log_file)
    if "before configured recovery target was reached" in log:
        raise BackupError(
            f"the archive ends before --to {target.isoformat()}: recovery stopped short. "
            f"Choose an earlier time (`secinf db backups` shows the archived WAL). Server log "
            f"{settings.log_file}:\n{log}")
    raise BackupError(f"the restored cluster at {settings.pgdata} did not finish recovery "
                      f"(port {settings.port}); server log {settings.log_file}:\n{log}")


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
