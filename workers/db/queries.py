"""Named SQL queries kept in `workers/queries/*.sql`, loaded by name.

A file holds blocks that start with `-- name: <query_name>`; the block runs until the next
such line. Parameters use psycopg's `%(name)s` style.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from psycopg import sql

QUERIES_DIR = Path(__file__).resolve().parent.parent / "queries"
_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


@cache
def _load(group: str) -> dict[str, str]:
    text = (QUERIES_DIR / f"{group}.sql").read_text()
    parts = _NAME.split(text)
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts), 2)}


def query(group: str, name: str) -> sql.SQL:
    """The query `name` from `workers/queries/<group>.sql`."""
    try:
        return sql.SQL(_load(group)[name])
    except KeyError as exc:
        raise KeyError(f"no query {name!r} in workers/queries/{group}.sql") from exc
