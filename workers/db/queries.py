"""Named SQL queries kept in `workers/queries/*.sql`, loaded by name.

A file holds blocks that start with `-- name: <query_name> :<kind>`, as sqlc's query files
do, followed by a one-line purpose comment; the block runs until the next such line.
Parameters use psycopg's `%(name)s` style. The kind says what the statement returns:

- `:one`  one row (or none): read it with `.fetchone()` or `fetch_one`;
- `:many` any number of rows: `.fetchall()`, iteration or `fetch_all`;
- `:exec` no rows (DDL, DML without RETURNING, SET): `execute`;
- `:copy` a COPY statement, run through `cursor.copy()`.

`query()` serves every kind; the helpers below refuse a query of another kind.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, cast

import psycopg
from psycopg import sql

QUERIES_DIR = Path(__file__).resolve().parent.parent / "queries"
Kind = Literal["one", "many", "exec", "copy"]
KINDS: frozenset[str] = frozenset({"one", "many", "exec", "copy"})
NAME_LINE = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*(?::([a-z]+))?\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Named:
    """One named query: its text, its result kind and its purpose line."""

    group: str
    name: str
    kind: Kind
    purpose: str
    text: str


def parse(group: str, text: str) -> dict[str, Named]:
    """The named queries of one file's `text`; ValueError on a missing or unknown kind or a
    name defined twice."""
    out: dict[str, Named] = {}
    found = list(NAME_LINE.finditer(text))
    for at, m in enumerate(found):
        name, kind = m.group(1), m.group(2)
        if kind not in KINDS:
            raise ValueError(f"workers/queries/{group}.sql: query {name!r} needs a kind, one "
                             f"of {', '.join(':' + k for k in sorted(KINDS))} (got {kind!r})")
        if name in out:
            raise ValueError(f"workers/queries/{group}.sql: query {name!r} defined twice")
        end = found[at + 1].start() if at + 1 < len(found) else len(text)
        body = text[m.end():end].strip()
        first = body.splitlines()[0] if body else ""
        purpose = first[2:].strip() if first.startswith("--") else ""
        out[name] = Named(group, name, cast("Kind", kind), purpose, body)
    return out


@cache
def _load(group: str) -> dict[str, Named]:
    return parse(group, (QUERIES_DIR / f"{group}.sql").read_text())


def groups() -> list[str]:
    """The names of every queries file, without `.sql`."""
    return sorted(p.stem for p in QUERIES_DIR.glob("*.sql"))


def named(group: str, name: str) -> Named:
    """The query `name` of `workers/queries/<group>.sql`, with its kind and purpose."""
    try:
        return _load(group)[name]
    except KeyError as exc:
        raise KeyError(f"no query {name!r} in workers/queries/{group}.sql") from exc


def all_named() -> list[Named]:
    """Every named query of every file."""
    return [q for g in groups() for q in _load(g).values()]


def query(group: str, name: str, kind: Kind | None = None) -> sql.SQL:
    """The query `name` from `workers/queries/<group>.sql`; with `kind`, TypeError unless the
    query is of that kind."""
    q = named(group, name)
    if kind is not None and q.kind != kind:
        raise TypeError(f"query {group}.{name} is :{q.kind}, not :{kind}")
    return sql.SQL(q.text)


Params = Mapping[str, Any] | None


def fetch_one(conn: psycopg.Connection[Any], group: str, name: str,
              params: Params = None) -> Any:
    """The row of a `:one` query, or None when it found nothing."""
    return conn.execute(query(group, name, "one"), params).fetchone()


def fetch_all(conn: psycopg.Connection[Any], group: str, name: str,
              params: Params = None) -> list[Any]:
    """The rows of a `:many` query."""
    return conn.execute(query(group, name, "many"), params).fetchall()


def execute(conn: psycopg.Connection[Any], group: str, name: str,
            params: Params = None) -> int:
    """Run an `:exec` query; the number of rows it touched."""
    return conn.execute(query(group, name, "exec"), params).rowcount
