"""The named queries of workers/queries/*.sql: each has a kind and a purpose line, is used
somewhere, and is read the way its kind says where the code runs it directly.

(tests/db/test_named_queries.py prepares each against the database.)
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

from workers.db import queries as q

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("workers", "tests", "streamlit_app", "scripts")


@cache
def sources() -> dict[Path, str]:
    me = {Path(__file__).resolve(), ROOT / "tests/db/test_named_queries.py"}
    return {p: p.read_text() for d in SOURCES for p in sorted((ROOT / d).rglob("*.py"))
            if p.resolve() not in me}


WRAPPERS = {"app": r"\bAppDB\b|workers\.appdb", "records": r"from workers\.records import"}
"""Groups whose queries a wrapper runs by bare name: what a file that uses it contains."""


def _loads_group(text: str, group: str) -> bool:
    g = re.escape(group)
    return bool(re.search(rf'(?:query|named|fetch_one|fetch_all|execute)\(\s*(?:conn,\s*)?"{g}"'
                          rf'|GROUP\s*=\s*"{g}"', text)
                or (group in WRAPPERS and re.search(WRAPPERS[group], text)))


def unused() -> list[str]:
    """Names no source file writes as a string. Wrappers run most queries by bare name
    (AppDB.call, records.rows, queue.client._run …), so the name alone counts, except for
    a name two files define: then a file that loads its group must write it."""
    everything = q.all_named()
    shared = {n.name for n in everything if sum(m.name == n.name for m in everything) > 1}
    out = []
    for n in everything:
        literal = re.compile(rf"""["']{re.escape(n.name)}["']""")
        if not any(literal.search(t) and (n.name not in shared or _loads_group(t, n.group))
                   for t in sources().values()):
            out.append(f"{n.group}.{n.name}")
    return out


def test_every_named_query_is_used() -> None:
    assert unused() == [], "named queries nothing runs: delete them"


def test_every_named_query_has_a_kind_and_a_purpose_line() -> None:
    everything = q.all_named()
    assert len({(n.group, n.name) for n in everything}) == len(everything)
    assert [f"{n.group}.{n.name}" for n in everything if not n.purpose] == []


_DIRECT = re.compile(r'query\(\s*"(\w+)"\s*,\s*"(\w+)"\s*\)')
_FETCH = re.compile(r"\.fetch(one|all)\(\)")


def misread() -> list[str]:
    """Direct `conn.execute(query(g, n), …).fetchone()/.fetchall()` calls whose fetch does not
    match the query's kind."""
    out = []
    for path, text in sources().items():
        for m in _DIRECT.finditer(text):
            tail = text[m.end():m.end() + 200]
            stop = re.search(r"\bquery\(|\n\s*\n|\n\s*(?:conn|cur|with|for|if|return)\b", tail)
            fetch = _FETCH.search(tail[:stop.start()] if stop else tail)
            if not fetch:
                continue
            kind = q.named(m.group(1), m.group(2)).kind
            want = {"one": "one", "all": "many"}[fetch.group(1)]
            if kind != want:
                out.append(f"{path.relative_to(ROOT)}: {m.group(1)}.{m.group(2)} is :{kind} "
                           f"but read with fetch{fetch.group(1)}()")
    return out


def test_direct_calls_read_rows_as_the_kind_says() -> None:
    assert misread() == []


def test_the_kind_is_required_and_checked() -> None:
    with pytest.raises(ValueError, match="needs a kind"):
        q.parse("x", "-- name: plain\nSELECT 1;\n")
    with pytest.raises(ValueError, match="defined twice"):
        q.parse("x", "-- name: a :one\nSELECT 1;\n-- name: a :one\nSELECT 2;\n")
    got = q.parse("x", "-- name: a :many\n-- Purpose.\nSELECT 1;\n")["a"]
    assert (got.kind, got.purpose, got.text) == ("many", "Purpose.", "-- Purpose.\nSELECT 1;")
    with pytest.raises(TypeError, match=r"demo\.queue_head is :many, not :one"):
        q.query("demo", "queue_head", "one")
