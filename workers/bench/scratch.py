"""A throwaway database for a benchmark: created beside the application database from the
current migrations and `sql/`, dropped afterwards, so benchmarks never touch real data."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from workers.db.connect import connect
from workers.db.migrate import migrate
from workers.settings import Settings, load_settings


@contextmanager
def scratch_database(purpose: str, settings: Settings | None = None) -> Iterator[str]:
    """Yield the conninfo of a fresh, migrated database named secinf_bench_<purpose>_<pid>."""
    settings = settings or load_settings()
    dbname = f"secinf_bench_{purpose}_{os.getpid()}"
    with connect(settings, dbname="postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(dbname)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    try:
        target = settings.conninfo(dbname=dbname)
        migrate(target)
        yield target
    finally:
        with connect(settings, dbname="postgres", autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(dbname)))


def settle(conn: psycopg.Connection[Any]) -> bool:
    """CHECKPOINT so a timed phase does not pay for the previous phase's writes; False when
    the role may not (needs superuser or pg_checkpoint): the figures are then noisier."""
    try:
        conn.execute("CHECKPOINT")
        conn.commit()
        return True
    except psycopg.errors.InsufficientPrivilege:
        conn.rollback()
        return False


def as_authenticator(target: str, settings: Settings) -> str:
    """The scratch database `target` as `authenticator`, as PostgREST logs in (its password
    from SECINF_AUTHENTICATOR_PASSWORD where one is set)."""
    params = conninfo_to_dict(target)
    params["user"] = "authenticator"
    params.pop("password", None)
    if settings.authenticator_password:
        params["password"] = settings.authenticator_password
    return make_conninfo(**params)  # type: ignore[arg-type]
