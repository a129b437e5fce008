"""Where pgBackRest keeps its files for the project's cluster, and the server's WAL archiving.

Separate from `backup.py` so that `cluster.py` can write `archive_command` without importing
the backup commands (which import the cluster).
"""

from __future__ import annotations

import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from workers.settings import Settings

STANZA = "secinf"
"""The pgBackRest stanza of the project's cluster (one cluster, one stanza)."""
PGBACKREST = "pgbackrest"
DISCARD = "/bin/true"
"""archive_command until backups are configured: no backup exists that could use the WAL,
and an empty command would make the server keep every segment (a full disk)."""


@dataclass(frozen=True)
class BackupPaths:
    """pgBackRest's files for one secinf home; all owned by the server's OS user."""

    base: Path
    """`<home>/pgbackrest`: the configuration, logs and locks."""
    repo: Path
    """The repository (backups and archived WAL): SECINF_BACKUP_REPO, else `<home>/backups`."""

    @property
    def config(self) -> Path:
        return self.base / "pgbackrest.conf"

    @property
    def log_dir(self) -> Path:
        return self.base / "log"

    @property
    def lock_dir(self) -> Path:
        return self.base / "lock"


def backup_paths(settings: Settings) -> BackupPaths:
    return BackupPaths(base=settings.home / "pgbackrest",
                       repo=settings.backup_repo or settings.home / "backups")


def pgbackrest_exe() -> str | None:
    return shutil.which(PGBACKREST)


def archive_command(settings: Settings) -> str:
    """The server's archive_command: pgBackRest's archive-push once `secinf db backup` has
    written the stanza's configuration, else a command that discards the segment."""
    paths = backup_paths(settings)
    if not paths.config.exists():
        return DISCARD
    exe = pgbackrest_exe() or f"/usr/bin/{PGBACKREST}"
    return (f"{shlex.quote(exe)} --config={shlex.quote(str(paths.config))} "
            f"--stanza={STANZA} archive-push %p")


def conf_quote(value: str) -> str:
    """A postgresql.conf string literal."""
    return "'" + value.replace("'", "''") + "'"
