"""Connections with database errors wrapped at the boundary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.rows import dict_row

from workers.errors import DatabaseUnavailable
from workers.settings import Settings, load_settings


@contextmanager
def connect(
    settings: Settings | None = None,
    *,
    dbname: str | None = None,
    autocommit: bool = False,
    conninfo: str | None = None,
) -> Iterator[psycopg.Connection[dict[str, object]]]:
    """An admin connection (dict rows) to the application database. Under a shard map
    (SECINF_SHARDS) a `secinf` command that names a `--project` reaches that project's
    shard (workers/shards.py); `conninfo` or `dbname` given: exactly that database."""
    settings = settings or load_settings()
    target = conninfo
    if target is None and dbname is None and settings.shards is not None:
        from workers.shards import route

        target = route(settings)
    routed = target is not None and conninfo is None
    target = target or settings.conninfo(dbname=dbname)
    try:
        conn = psycopg.connect(target, autocommit=autocommit, row_factory=dict_row)
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0]
        if routed:
            raise DatabaseUnavailable(
                f"Cannot connect to the shard of the project: {first}. Check that server, or "
                "its conninfo in `secinf shards list` (fix it with `secinf shards add`)."
            ) from exc
        where = "SECINF_DSN" if settings.dsn else f"the local cluster on port {settings.port}"
        raise DatabaseUnavailable(
            f"Cannot connect to {where}: {first}. "
            "Start it with `secinf db up` (or fix SECINF_DSN)."
        ) from exc
    try:
        yield conn
    finally:
        conn.close()
