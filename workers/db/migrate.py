"""Schema management: versioned migrations (yoyo) then the repeatable `sql/` tier.

`migrations/NNNN_name.sql` run once each, in order, recorded by yoyo (with a rollback file
beside each). `sql/*.sql` are idempotent and re-applied after every migration run, in file-name
order, all in one transaction, grants last. A file in `sql/` runs as the owner role
`secinf_owner` unless its first line says `-- secinf: run-as superuser`.
`{{plpython:NAME}}` in a `sql/` file is replaced by the source of `plpython/NAME.py`.
"""

from __future__ import annotations

import contextlib
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import psycopg
import psycopg.sql
from psycopg.conninfo import conninfo_to_dict
from yoyo import get_backend, read_migrations

from workers.errors import SecinfError
from workers.settings import MIGRATIONS_DIR, PLPYTHON_DIR, SQL_DIR

OWNER_ROLE = "secinf_owner"
RUN_AS_SUPERUSER = "-- secinf: run-as superuser"
_PLPY_MARKER = re.compile(r"\{\{plpython:([a-z_][a-z0-9_]*)\}\}")


@dataclass(frozen=True)
class MigrationReport:
    applied: list[str]
    pending_before: int
    sql_files: list[str]


def yoyo_uri(conninfo: str) -> str:
    """Turn a libpq conninfo into the URI yoyo's psycopg 3 backend understands."""
    params = {k: str(v) for k, v in conninfo_to_dict(conninfo).items() if v is not None}
    user = quote(params.pop("user", ""), safe="")
    password = params.pop("password", None)
    dbname = quote(params.pop("dbname", ""), safe="")
    auth = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
    query = f"?{urlencode(params)}" if params else ""
    return f"postgresql+psycopg://{auth}/{dbname}{query}"


def _migrations() -> Any:
    """yoyo's MigrationList (yoyo ships no type hints)."""
    return read_migrations(str(MIGRATIONS_DIR))


def pending(conninfo: str) -> list[str]:
    backend = get_backend(yoyo_uri(conninfo))
    try:
        return [m.id for m in backend.to_apply(_migrations())]
    finally:
        backend.connection.close()


def _grant_database(conninfo: str) -> None:
    """The owner role creates schemas, so it needs CREATE on *this* database. Database ACLs
    are not copied by CREATE DATABASE … TEMPLATE, so this runs before every migration run."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (OWNER_ROLE,)).fetchone():
            dbname = conn.info.dbname
            conn.execute(
                psycopg.sql.SQL("GRANT CONNECT, CREATE ON DATABASE {} TO {}").format(
                    psycopg.sql.Identifier(dbname), psycopg.sql.Identifier(OWNER_ROLE)
                )
            )


def apply_migrations(conninfo: str) -> list[str]:
    """Apply pending migrations under yoyo's lock; returns the ids applied."""
    _grant_database(conninfo)
    backend = get_backend(yoyo_uri(conninfo))
    try:
        with backend.lock():
            todo = backend.to_apply(_migrations())
            ids = [m.id for m in todo]
            # yoyo prints the result of every SELECT in a migration; keep stdout for us.
            with contextlib.redirect_stdout(io.StringIO()):
                backend.apply_migrations(todo)
        return ids
    finally:
        backend.connection.close()


def rollback_migrations(conninfo: str, count: int = 1) -> list[str]:
    """Roll back the newest `count` applied migrations (each has a .rollback.sql)."""
    backend = get_backend(yoyo_uri(conninfo))
    try:
        with backend.lock():
            applied = backend.to_rollback(_migrations())
            todo = applied[:count]
            backend.rollback_migrations(todo)
        return [m.id for m in todo]
    finally:
        backend.connection.close()


def render_sql(text: str, plpython_dir: Path = PLPYTHON_DIR) -> str:
    """Inline PL/Python module sources where a `sql/` file names them."""

    def inline(match: re.Match[str]) -> str:
        source = (plpython_dir / f"{match.group(1)}.py").read_text()
        if "$$" in source:
            raise SecinfError(f"plpython/{match.group(1)}.py must not contain '$$'")
        # The body runs inside a function PL/Python defines, where a __future__ import
        # is a syntax error; annotations evaluate fine at run time on Python 3.11.
        return "\n".join(
            line for line in source.splitlines() if not line.startswith("from __future__")
        )

    return _PLPY_MARKER.sub(inline, text)


def sql_files(sql_dir: Path = SQL_DIR) -> list[Path]:
    return sorted(p for p in sql_dir.glob("*.sql") if p.is_file())


def apply_sql(conninfo: str, sql_dir: Path = SQL_DIR) -> list[str]:
    """Re-apply every repeatable file in one transaction; nothing changes if one fails."""
    files = sql_files(sql_dir)
    with psycopg.connect(conninfo) as conn:
        # A deploy waits for locks a little, then fails loudly instead of hanging.
        conn.execute("SET lock_timeout = '60s'")
        for path in files:
            text = path.read_text()
            as_super = text.startswith(RUN_AS_SUPERUSER)
            try:
                with conn.cursor() as cur:
                    cur.execute("RESET ROLE" if as_super else f"SET ROLE {OWNER_ROLE}")
                    cur.execute(render_sql(text).encode())
            except psycopg.Error as exc:
                conn.rollback()
                raise SecinfError(
                    f"sql/{path.name} failed and nothing of sql/ was applied: "
                    f"{str(exc).strip()}"
                ) from exc
        conn.execute("RESET ROLE")
        conn.commit()
    return [p.name for p in files]


def migrate(conninfo: str) -> MigrationReport:
    """Migrations, then the repeatable tier: what `secinf db migrate` and `db up` run."""
    before = pending(conninfo)
    applied = apply_migrations(conninfo)
    files = apply_sql(conninfo)
    return MigrationReport(applied=applied, pending_before=len(before), sql_files=files)
