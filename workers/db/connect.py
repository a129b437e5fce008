"""Connections with database errors wrapped at the boundary.

`connect` reaches the primary (read-write); `connect_read` reaches the server of read-only
work: the replica in SECINF_READ_DSN, else the primary, in read-only transactions either
way, so a write fails alike with or without a replica (ReadOnlyConnection, naming both).
Under a shard map a command's `--project` picks the shard of both: its primary, and its
replica (`secinf shards replica`) or, without one, its primary again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row

from workers.errors import DatabaseUnavailable, ReadOnlyConnection
from workers.settings import Settings, load_settings

READ_ONLY_STATE = "25006"
"""read_only_sql_transaction: a write on a hot standby or in a READ ONLY transaction."""


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


def read_only(conninfo: str) -> str:
    """The conninfo with every transaction READ ONLY by default (libpq's `options`)."""
    params = conninfo_to_dict(conninfo)
    flag = "-c default_transaction_read_only=on"
    params["options"] = f"{params.get('options') or ''} {flag}".strip()
    return make_conninfo(**params)  # type: ignore[arg-type]


def address(conninfo: str) -> str:
    """host:port/dbname of a conninfo (never its password), for messages."""
    params = conninfo_to_dict(conninfo)
    return (f"{params.get('host') or 'localhost'}:{params.get('port') or 5432}/"
            f"{params.get('dbname') or ''}")


def read_only_refusal(read_conninfo: str, primary_conninfo: str, *, replica: bool,
                      detail: str = "") -> ReadOnlyConnection:
    """The message of a write refused on a read connection (SQLSTATE 25006)."""
    where = (f"this is the read replica at {address(read_conninfo)}" if replica
             else f"this is a read-only connection to the primary at "
                  f"{address(read_conninfo)} (SECINF_READ_DSN is unset)")
    tail = f" (the server said: {detail})" if detail else ""
    return ReadOnlyConnection(f"{where}; writes go to the primary at "
                              f"{address(primary_conninfo)}{tail}")


def _with_user(conninfo: str, user: str | None) -> str:
    params = conninfo_to_dict(conninfo)
    if user is not None:
        params["user"] = user
    return make_conninfo(**params)  # type: ignore[arg-type]


@contextmanager
def connect_read(
    settings: Settings | None = None,
    *,
    dbname: str | None = None,
    user: str | None = None,
    autocommit: bool = False,
) -> Iterator[psycopg.Connection[dict[str, object]]]:
    """A read-only connection (dict rows) for read work: the replica in SECINF_READ_DSN,
    else the primary; under a shard map, for a command's `--project`, its shard's replica,
    else that shard. A write inside raises ReadOnlyConnection naming both servers."""
    settings = settings or load_settings()
    shard = None
    if settings.shards is not None and dbname is None:
        from workers.shards import read_route

        shard = read_route(settings)
    if shard is not None:
        target = _with_user(shard.read_target, user)
        primary = _with_user(shard.conninfo, user)
        replica = shard.read_conninfo is not None
    else:
        target = settings.read_conninfo(dbname=dbname, user=user)
        primary = settings.conninfo(dbname=dbname)
        replica = settings.read_dsn is not None
    try:
        conn = psycopg.connect(read_only(target), autocommit=autocommit, row_factory=dict_row)
    except psycopg.OperationalError as exc:
        why = str(exc).strip().splitlines()[0]
        if shard is not None:
            raise DatabaseUnavailable(
                f"Cannot connect to the {'read replica' if replica else 'server'} of shard "
                f"{shard.name} ({address(target)}): {why}. Check that server, or its "
                f"conninfo in `secinf shards list` (`secinf shards replica {shard.name}` "
                "with no conninfo sends the shard's reads to its primary).") from exc
        if settings.read_dsn is None:
            where = "SECINF_DSN" if settings.dsn else f"the local cluster on port {settings.port}"
            raise DatabaseUnavailable(f"Cannot connect to {where}: {why}. Start it with "
                                      "`secinf db up` (or fix SECINF_DSN).") from exc
        raise DatabaseUnavailable(
            f"Cannot connect to the read replica in SECINF_READ_DSN ({address(target)}): "
            f"{why}. Start it with `secinf db replica up`, or unset SECINF_READ_DSN to read "
            "from the primary.") from exc
    try:
        yield conn
    except psycopg.Error as exc:
        if exc.sqlstate != READ_ONLY_STATE:
            raise
        raise read_only_refusal(target, primary, replica=replica,
                                detail=exc.diag.message_primary or "") from exc
    finally:
        conn.close()
