"""`secinf route` (workers/route) in front of two shards' HTTP services: each request of a
project reaches its shard's upstream and no other. The shards are two copies of the
migrated template on the test cluster (a shard is one secinf database; where it runs does
not matter to HTTP routing), the shard map a third database. The upstreams are stand-ins
(tests/support/shard_upstreams.py): no PostgREST binary is reachable on this machine, so
PostgREST is played by its request model on the shard's database, verifying JWTs with that
shard's own secret."""

from __future__ import annotations

import hashlib
import http.client
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import jwt
import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row
from pytest_postgresql.janitor import DatabaseJanitor

from tests.support.file_service import Service, serving
from tests.support.shard_upstreams import (
    CHUNK,
    Seen,
    content,
    files_standin,
    postgrest_standin,
)
from workers import shards, tenancy
from workers.errors import UserError
from workers.route.app import make_app
from workers.route.table import MISS_S
from workers.settings import Settings, load_settings

pytestmark = pytest.mark.db
SIZE = 5 * CHUNK + 123


@dataclass
class Shard:
    name: str
    dsn: str
    api: Seen
    files: Seen


@dataclass
class Setup:
    proxy: Service
    a: Shard
    b: Shard
    north: dict[str, Any]
    south: dict[str, Any]
    keys: dict[str, str]
    gate: threading.Event
    settings: Settings

    def clear(self) -> None:
        for s in (self.a, self.b):
            s.api.requests.clear()
            s.files.requests.clear()


@contextmanager
def _database(server: Any, name: str, template: bool) -> Iterator[str]:
    janitor = DatabaseJanitor(user=server.user, host=server.host, port=server.port,
                              dbname=name, password=server.password,
                              template_dbname=server.template_dbname if template else None)
    with janitor:
        yield make_conninfo(host=server.host, port=server.port, user=server.user,
                            dbname=name, password=server.password or None)


@pytest.fixture(scope="module")
def setup(postgresql_server: Any) -> Iterator[Setup]:
    base = f"{postgresql_server.dbname}_route"
    mp = pytest.MonkeyPatch()
    with ExitStack() as stack:
        dsn_a = stack.enter_context(_database(postgresql_server, f"{base}_a", True))
        dsn_b = stack.enter_context(_database(postgresql_server, f"{base}_b", True))
        control = stack.enter_context(_database(postgresql_server, f"{base}_ctl", False))
        # Copies of one template share its JWT secret: b gets its own, as a shard has.
        with psycopg.connect(dsn_b, row_factory=dict_row) as conn:
            tenancy.rotate_secret(conn)
        gate = threading.Event()
        made = {}
        for name, dsn in (("a", dsn_a), ("b", dsn_b)):
            api, files = Seen(), Seen()
            api_url = stack.enter_context(serving(postgrest_standin(dsn, api))).base_url
            files_url = stack.enter_context(
                serving(files_standin(name, files, SIZE, gate))).base_url
            made[name] = Shard(name, dsn, api, files)
            mp.setenv("SECINF_SHARDS", control)
            shards.add_shard(name, dsn, api_url=api_url, files_url=files_url)
        north = shards.create_project("acme", "north", shard="a")
        south = shards.create_project("acme", "south", shard="b")
        keys = {}
        for project in ("north", "south"):
            with shards.connect_for_project(f"acme/{project}") as conn:
                keys[project] = tenancy.create_key(conn, f"acme/{project}", "reviewer")["api_key"]
        settings = load_settings()  # SECINF_SHARDS: the tests' own env is cleared per test
        proxy = stack.enter_context(serving(make_app(settings)))  # type: ignore[arg-type]
        try:
            yield Setup(proxy, made["a"], made["b"], north, south, keys, gate, settings)
        finally:
            gate.set()
            mp.undo()


def _exchange(s: Setup, key: str, proxy: Service | None = None
              ) -> tuple[int, dict[str, Any], str]:
    r = (proxy or s.proxy).request("POST", "/rpc/exchange_key",
                                   json.dumps({"api_key": key}).encode(),
                                   {"Content-Type": "application/json"})
    return r.status, r.json(), r.headers.get("x-secinf-shard", "")


def _get(s: Setup, path: str, token: str) -> Any:
    return s.proxy.request("GET", path, headers={"Authorization": f"Bearer {token}"})


def test_key_exchange_finds_the_shard_and_tokens_route_by_their_project(setup: Setup) -> None:
    s = setup
    tokens = {}
    for project, home, other in (("north", s.a, s.b), ("south", s.b, s.a)):
        s.clear()
        status, grant, shard = _exchange(s, s.keys[project])
        assert status == 200, grant
        assert shard == home.name
        tokens[project] = grant["token"]
        # Tried in the map's order: a first; b only when a does not know the key.
        assert home.api.paths() == ["POST /rpc/exchange_key"]
        assert other.api.paths() == ([] if home is s.a else ["POST /rpc/exchange_key"])

    for project, home, other in (("north", s.a, s.b), ("south", s.b, s.a)):
        s.clear()
        reply = _get(s, "/projects?select=slug", tokens[project])
        assert reply.status == 200, reply.body
        assert [p["slug"] for p in reply.json()] == [project]  # RLS on its own shard
        assert home.api.paths() == ["GET /projects"] and other.api.requests == []
        seen = home.api.requests[0]
        assert seen["headers"]["authorization"] == f"Bearer {tokens[project]}"
        assert seen["headers"]["x-forwarded-for"] == "127.0.0.1"
        assert "host" in seen["headers"] and "x-forwarded-host" in seen["headers"]

    # A key no shard knows: every shard is asked, and the last refusal is the answer.
    s.clear()
    status, body, _ = _exchange(s, "sik_000000000000_" + "A" * 43)
    assert status == 401 and "invalid, revoked or expired API key" in body["message"]
    assert len(s.a.api.requests) == len(s.b.api.requests) == 1


def test_the_proxy_reads_the_claim_and_the_shard_verifies_the_token(setup: Setup) -> None:
    s = setup
    s.clear()
    forged = jwt.encode({"role": "project_admin", "project_id": str(s.south["project_id"])},
                        "not the shard's secret, but long enough", algorithm="HS256")
    reply = _get(s, "/projects", forged)
    assert reply.status == 401 and "JWT invalid" in reply.json()["message"]
    assert s.b.api.paths() == ["GET /projects"] and s.a.api.requests == []


def test_an_unknown_project_is_refused_naming_it_and_the_fix(setup: Setup) -> None:
    s = setup
    s.clear()
    nowhere = str(uuid.uuid4())
    token = jwt.encode({"role": "reviewer", "project_id": nowhere}, "x" * 32,
                       algorithm="HS256")
    reply = _get(s, "/projects", token)
    assert reply.status == 404
    body = reply.json()
    assert body["code"] == "unknown_project"
    assert body["message"] == f"project {nowhere} is on no shard of the shard map"
    assert "secinf project create" in body["hint"]
    org = s.north["org_id"]
    reply = s.proxy.request("GET", f"/files/org/{org}/project/{nowhere}/x.bin")
    assert reply.status == 404 and reply.json()["error"] == "unknown_project"
    reply = _get(s, "/projects", jwt.encode({"role": "admin"}, "x" * 32, algorithm="HS256"))
    assert reply.status == 400 and "no project_id claim" in reply.json()["message"]
    assert s.a.api.requests == s.b.api.requests == []


def test_a_project_created_after_the_proxy_started_is_routed(setup: Setup) -> None:
    s = setup
    east = shards.create_project("acme", "east", shard="b", settings=s.settings)
    token = jwt.encode({"role": "reviewer", "project_id": str(east["project_id"])}, "y" * 32,
                       algorithm="HS256")
    s.clear()
    time.sleep(MISS_S)  # a miss re-reads the map, at most every MISS_S (not per request)
    assert _get(s, "/projects", token).status == 401  # b's PostgREST refuses the forgery
    assert len(s.b.api.requests) == 1 and s.a.api.requests == []


def test_file_urls_route_by_the_key_and_stream_both_ways(setup: Setup) -> None:
    s = setup
    for project, home, other in ((s.north, s.a, s.b), (s.south, s.b, s.a)):
        key = f"org/{project['org_id']}/project/{project['project_id']}/datasets/d/1/p.bin"
        s.clear()
        s.gate.set()
        whole = s.proxy.request("GET", f"/files/{key}?method=GET&sig=abc")
        assert whole.status == 200 and whole.body == content(home.name, SIZE)
        assert whole.headers["content-length"] == str(SIZE)
        assert whole.headers["x-secinf-shard"] == home.name
        part = s.proxy.request("GET", f"/files/{key}", headers={"Range": "bytes=100-299"})
        assert part.status == 206 and part.body == content(home.name, SIZE)[100:300]
        assert part.headers["content-range"] == f"bytes 100-299/{SIZE}"
        assert [r["path"] for r in home.files.requests] == [f"/files/{key}"] * 2
        assert home.files.requests[1]["headers"]["range"] == "bytes=100-299"
        assert other.files.requests == [] and other.api.requests == []

        # Uploads stream through: a chunked body of many pieces, and a sized one.
        pieces = [bytes([i]) * 50_000 for i in range(40)]
        up = s.proxy.request("PUT", f"/files/{key}", pieces, chunked=True)
        assert up.status == 200
        blob = b"".join(pieces)
        assert up.json()["bytes"] == len(blob)
        assert up.json()["sha256"] == hashlib.sha256(blob).hexdigest()
        sized = s.proxy.request("PUT", f"/files/{key}", blob[:1000])
        assert sized.json()["bytes"] == 1000
        assert home.files.requests[-1]["headers"]["content-length"] == "1000"
        assert other.files.requests == []


def test_downloads_are_passed_on_before_the_upstream_finishes(setup: Setup) -> None:
    """The first chunk arrives through the proxy while the upstream still holds the rest:
    the proxy does not buffer a download."""
    s = setup
    s.gate.clear()
    key = f"org/{s.north['org_id']}/project/{s.north['project_id']}/big.bin"
    conn = http.client.HTTPConnection(s.proxy.host, s.proxy.port, timeout=15)
    try:
        conn.request("GET", f"/files/{key}")
        resp = conn.getresponse()
        assert resp.status == 200
        first = resp.read(CHUNK)  # would time out if the proxy waited for the whole body
        assert first == content("a", SIZE)[:CHUNK]
        s.gate.set()
        assert first + resp.read() == content("a", SIZE)
    finally:
        s.gate.set()
        conn.close()


def test_checkouts_go_to_the_callers_file_service_and_stripe_is_not_routed(
        setup: Setup) -> None:
    s = setup
    s.clear()
    status, grant, _ = _exchange(s, s.keys["south"])
    assert status == 200
    reply = s.proxy.request("POST", "/billing/checkout-session", b"{}",
                            {"Authorization": f"Bearer {grant['token']}"})
    assert reply.status == 200 and reply.json() == {"shard": "b"}
    assert [r["path"] for r in s.b.files.requests] == ["/billing/checkout-session"]
    assert s.a.files.requests == []
    hook = s.proxy.request("POST", "/stripe/webhook", b"{}")
    assert hook.status == 404 and hook.json()["error"] == "not_routable"
    assert "Point Stripe's webhook endpoint at the file service" in hook.json()["hint"]


def test_healthz_lists_the_shards(setup: Setup) -> None:
    reply = setup.proxy.request("GET", "/healthz")
    assert reply.status == 200 and reply.json() == {"status": "ok", "shards": ["a", "b"]}


def test_a_shard_map_made_before_the_upstream_columns_is_upgraded_on_first_use(
        dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with psycopg.connect(dsn) as conn:  # the control schema as the first release made it
        conn.execute("CREATE SCHEMA control")
        conn.execute("CREATE TABLE control.shards (name text PRIMARY KEY, conninfo text "
                     "NOT NULL, added_at timestamptz NOT NULL DEFAULT now())")
        conn.execute("CREATE TABLE control.placements (org text, project text, shard text "
                     "REFERENCES control.shards (name), project_id uuid UNIQUE, placed_at "
                     "timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (org, project))")
        conn.execute("INSERT INTO control.shards (name, conninfo) VALUES ('old', %s)", (dsn,))
    monkeypatch.setenv("SECINF_SHARDS", dsn)
    (old,) = shards.list_shards()
    assert (old["name"], old["read_conninfo"], old["api_url"], old["files_url"]) == (
        "old", None, None, None)
    added = shards.add_shard("old", dsn, files_url="http://files-old:8600/")
    assert added["files_url"] == "http://files-old:8600" and added["api_url"] is None
    with pytest.raises(UserError, match="--api-url 'files-old' is not an http"):
        shards.add_shard("old", dsn, api_url="files-old")


def test_api_reads_go_to_the_replicas_read_only_postgrest(setup: Setup) -> None:
    """GETs of a shard with `read_api_url` reach that upstream, writes and GETs asking for
    the primary its PostgREST. The replica's PostgREST is a stand-in on the shard's own
    database (RLS and refused writes on a real replica: tests/db/test_replica.py)."""
    s = setup
    reads = Seen()
    with serving(postgrest_standin(s.a.dsn, reads)) as replica, \
            serving(make_app(s.settings)) as proxy:  # type: ignore[arg-type]
        with pytest.raises(UserError, match="pass the replica's CONNINFO too"):
            shards.set_replica("a", None, s.settings, read_api_url=replica.base_url)
        row = shards.add_shard("a", s.a.dsn, s.settings, read_api_url=replica.base_url + "/")
        assert row["read_api_url"] == replica.base_url and row["api_url"]
        try:
            s.clear()
            status, grant, _ = _exchange(s, s.keys["north"], proxy)
            assert status == 200 and s.a.api.paths() == ["POST /rpc/exchange_key"]
            token = grant["token"]
            auth = {"Authorization": f"Bearer {token}"}
            s.clear()
            reply = proxy.request("GET", "/projects?select=slug", headers=auth)
            assert reply.status == 200 and [p["slug"] for p in reply.json()] == ["north"]
            assert reads.paths() == ["GET /projects"] and s.a.api.requests == []
            assert reply.headers.get("x-secinf-shard") == "a"
            # read your own write at once: the primary, by asking
            reads.requests.clear()
            reply = proxy.request("GET", "/projects?select=slug",
                                  headers={**auth, "Secinf-Read": "primary"})
            assert reply.status == 200
            assert s.a.api.paths() == ["GET /projects"] and reads.requests == []
            # a write with the token: the primary
            s.clear()
            proxy.request("POST", "/rpc/exchange_key", b"{}",
                          {**auth, "Content-Type": "application/json"})
            assert s.a.api.paths() == ["POST /rpc/exchange_key"] and reads.requests == []
            # a shard without a read-only PostgREST reads from its own
            s.clear()
            south = _exchange(s, s.keys["south"])[1]["token"]
            s.clear()
            assert proxy.request("GET", "/projects", headers={
                "Authorization": f"Bearer {south}"}).status == 200
            assert s.b.api.paths() == ["GET /projects"] and reads.requests == []
        finally:
            cleared = shards.set_replica("a", None, s.settings)
        assert cleared["read_api_url"] is None and cleared["read_conninfo"] is None
