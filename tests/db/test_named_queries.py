"""Every named query of workers/queries/*.sql prepares against the migrated template.

Each query is PREPAREd (libpq's PQprepare, no parameter types given: the server infers
them from context) and described: a `:one`/`:many` query returns columns, an `:exec` one
returns none. A query that cannot be prepared must be in SKIP with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import pq

from workers.db.queries import Named, all_named

pytestmark = pytest.mark.db

SKIP: dict[str, str] = {
    "bench_prerequest.bench_plan": "several statements (a prepared statement holds one)",
    "bench_prerequest.baseline_function": "several statements (a prepared statement holds one)",
    "ingest.stage_tables": "several statements (a prepared statement holds one)",
    "shards.ensure_control": "several statements (a prepared statement holds one)",
    # CREATE/DROP ROLE are utility statements, and their role name is composed in with
    # psycopg.sql (an identifier cannot be a parameter).
    "bench_queue.create_login": "a utility statement composed with psycopg.sql",
    "bench_queue.drop_login": "a utility statement composed with psycopg.sql",
    # COPY is not a preparable statement (only SELECT, INSERT, UPDATE, DELETE, MERGE and
    # VALUES are); these run through cursor.copy().
    **{f"{q.group}.{q.name}": "COPY cannot be prepared" for q in all_named() if q.kind == "copy"},
}
"""Queries PREPARE cannot check, and why."""

SETUP: dict[str, tuple[str, ...]] = {
    "bench_prerequest.without_limits": ("bench_prerequest.baseline_function",),
    "ingest.orphan_poses": ("ingest.stage_tables",),
    "ingest.drop_orphan_poses": ("ingest.stage_tables",),
    "ingest.close_batch": ("ingest.stage_tables",),
    "pipeline.merge_stage": ("pipeline.create_stage",),
    # the shard map lives in a control database, whose tables its first use creates
    **{f"shards.{n}": ("shards.ensure_control",)
       for n in ("add_shard", "list_shards", "least_loaded", "place", "placement",
                 "set_project_id", "find_placements", "list_placements", "set_replica",
                 "route_table")},
}
"""Queries that read what another query creates (a session's temp tables, the benchmark's
baseline function): those queries, run first."""

_PARAM = re.compile(r"%\((\w+)\)s")


def to_dollar(text: str) -> str:
    """psycopg's `%(name)s` placeholders as `$n` (one number per name), `%%` as `%`."""
    numbers: dict[str, int] = {}

    def number(m: re.Match[str]) -> str:
        return f"${numbers.setdefault(m.group(1), len(numbers) + 1)}"

    return _PARAM.sub(number, text).replace("%%", "%")


def test_to_dollar_numbers_each_name_once() -> None:
    assert (to_dollar("SELECT %(a)s, %(b)s, %(a)s, 5 %% 2")
            == "SELECT $1, $2, $1, 5 % 2")


@pytest.fixture(scope="module")
def conn(module_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(module_dsn, autocommit=True) as c:
        yield c


@pytest.mark.parametrize("q", all_named(), ids=lambda q: f"{q.group}.{q.name}")
def test_named_query_prepares(conn: psycopg.Connection[Any], q: Named) -> None:
    key = f"{q.group}.{q.name}"
    if key in SKIP:
        pytest.skip(SKIP[key])
    stmt = f"check_{q.group}_{q.name}".encode()
    pg = conn.pgconn
    # In a transaction rolled back at the end: setup's temp tables live until then, and
    # what it creates does not outlast the test.
    with conn.transaction(force_rollback=True):
        for setup in SETUP.get(key, ()):
            group, name = setup.split(".")
            conn.execute(next(s.text for s in all_named() if (s.group, s.name) == (group, name)))
        res = pg.prepare(stmt, to_dollar(q.text).encode())
        error = (res.error_message or b"").decode().strip()
        columns = -1
        if res.status == pq.ExecStatus.COMMAND_OK:
            desc = pg.describe_prepared(stmt)
            assert desc.status == pq.ExecStatus.COMMAND_OK
            columns = desc.nfields
            conn.execute(f"DEALLOCATE {stmt.decode()}")
    assert columns >= 0, f"{key} does not prepare: {error}"
    if q.kind == "exec":
        assert columns == 0, f"{key} is :exec but returns {columns} column(s)"
    else:
        assert columns > 0, f"{key} is :{q.kind} but returns no rows"
