"""A private Postgres cluster for tests that must stop or restart the server.

Never touch the shared cluster (port 5433): this one lives in a temp directory on a free
port in 5491-5499, runs as the `postgres` OS user when the tests run as root, is migrated
like any secinf database, and is destroyed afterwards.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg
from psycopg import sql

from workers.db.cluster import LocalCluster
from workers.db.migrate import migrate
from workers.settings import load_settings

PORTS = range(5491, 5500)
SMALL_SERVER = "\n# throwaway test cluster: small\nshared_buffers = 64MB\nmax_connections = 60\n"


def free_port() -> int:
    for port in PORTS:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS.start}-{PORTS.stop - 1} for a test cluster")


def _temp_root() -> Path:
    """A directory the `postgres` user can traverse (as root: under /var/lib/secinf)."""
    if os.geteuid() == 0:
        root = Path(load_settings().home) / "tmp"
        root.mkdir(mode=0o755, exist_ok=True)
        return root
    return Path(tempfile.gettempdir())


@dataclass
class ThrowawayCluster:
    cluster: LocalCluster
    home: Path

    @property
    def conninfo(self) -> str:
        return self.cluster.settings.conninfo()

    @property
    def env(self) -> dict[str, str]:
        """SECINF_* variables that make `secinf` (load_settings) manage this cluster."""
        s = self.cluster.settings
        return {"SECINF_HOME": str(s.home), "SECINF_PORT": str(s.port)}

    def restart(self) -> None:
        """`pg_ctl restart -m fast`: every connection is cut."""
        self.cluster.restart()


@contextmanager
def throwaway_cluster(prefix: str = "secinf-queue-") -> Iterator[ThrowawayCluster]:
    """initdb, start and migrate a private cluster; stop and delete it afterwards."""
    home = Path(tempfile.mkdtemp(prefix=prefix, dir=_temp_root()))
    settings = replace(load_settings(), dsn=None, home=home, port=free_port(),
                       storage_root=home / "datasets")
    cluster = LocalCluster(settings)
    try:
        cluster.init()
        cluster.write_config()
        conf = settings.pgdata / "postgresql.conf"
        conf.write_text(conf.read_text() + SMALL_SERVER)  # after the include: these win
        cluster.start()
        with psycopg.connect(settings.conninfo(dbname="postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(settings.dbname)))
        migrate(settings.conninfo())
        yield ThrowawayCluster(cluster, home)
    finally:
        try:
            cluster.stop(mode="immediate")
        finally:
            shutil.rmtree(home, ignore_errors=True)
