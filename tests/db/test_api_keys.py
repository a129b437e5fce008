"""API keys: shown once, stored hashed, exchanged for a JWT, revocable, expiring."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import psycopg
import pytest

from plpython.jwt_tokens import verify
from tests.support.factories import make_key, make_project
from tests.support.postgrest import Api, ApiError
from workers import tenancy

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]
KEY_RE = re.compile(r"^sik_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$")
REFUSAL = "invalid, revoked or expired API key"


def test_key_is_shown_once_and_only_its_hash_is_stored(db: Conn) -> None:
    pid = make_project(db, "acme", "north")
    key = make_key(db, pid, "customer")
    assert KEY_RE.match(key["api_key"]), key["api_key"]
    stored = db.execute("SELECT * FROM core.api_keys WHERE key_id = %s",
                        (key["key_id"],)).fetchone()
    assert stored is not None
    assert bytes(stored["key_hash"]) == hashlib.sha256(key["api_key"].encode()).digest()
    assert stored["lookup_prefix"] == key["api_key"][:16]
    dump = str(db.execute("SELECT array_agg(k::text) AS a FROM core.api_keys k").fetchone())
    assert key["api_key"] not in dump
    secret = key["api_key"].split("_", 2)[2]
    assert secret not in str(db.execute("SELECT array_agg(l::text) AS a FROM audit.log l")
                             .fetchone())


def test_exchange_gives_a_signed_jwt_with_project_claims(db: Conn, dsn: str) -> None:
    pid = make_project(db, "acme", "north")
    key = make_key(db, pid, "reviewer")
    answer = Api(dsn).rpc("exchange_key", api_key=key["api_key"])
    claims = answer["claims"]
    assert claims["role"] == "reviewer" and claims["project_id"] == pid
    secret = tenancy.jwt_secret(db)
    decoded = verify(answer["token"], secret)
    assert decoded["project_id"] == pid and decoded["role"] == "reviewer"
    assert decoded["exp"] - decoded["iat"] <= 3600


@pytest.mark.parametrize("case", ["wrong", "malformed", "revoked", "expired", "other_secret"])
def test_bad_keys_get_one_clear_refusal(db: Conn, dsn: str, case: str) -> None:
    pid = make_project(db, "acme", "north")
    key = make_key(db, pid, "customer")["api_key"]
    if case == "wrong":
        key = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    elif case == "malformed":
        key = "not-a-key"
    elif case == "revoked":
        tenancy.revoke_key(db, key[:16])
    elif case == "expired":
        db.execute("UPDATE core.api_keys SET expires_at = now() - interval '1 s' "
                   "WHERE lookup_prefix = %s", (key[:16],))
        db.commit()
    elif case == "other_secret":
        key = "sik_000000000000_" + "A" * 43
    with pytest.raises(ApiError) as err:
        Api(dsn).rpc("exchange_key", api_key=key)
    assert err.value.status == 401
    assert err.value.message == REFUSAL


def test_tokens_die_with_their_key(db: Conn, dsn: str) -> None:
    pid = make_project(db, "acme", "north")
    key = make_key(db, pid, "customer")
    claims = Api(dsn).rpc("exchange_key", api_key=key["api_key"])["claims"]
    api = Api(dsn, "customer", claims)
    assert [str(r["project_id"]) for r in api.get("projects")] == [claims["project_id"]]
    tenancy.revoke_key(db, key["lookup_prefix"])
    with pytest.raises(ApiError) as err:
        api.get("projects")
    assert (err.value.status, err.value.message) == (401, "API key revoked or expired")


def test_expiry_durations_and_past_expiry(db: Conn) -> None:
    pid = make_project(db, "acme", "north")
    key = make_key(db, pid, "customer", expires="2d")
    assert key["expires_at"] is not None
    with pytest.raises(tenancy.UserError, match="in the past"):
        make_key(db, pid, "customer", expires="2020-01-01T00:00:00")


def test_project_admins_manage_keys_of_their_own_project_only(db: Conn, dsn: str) -> None:
    a = make_project(db, "acme", "north")
    b = make_project(db, "globex", "south")
    admin_a = Api(dsn).as_("project_admin", project_id=a)
    created = admin_a.rpc("create_api_key", role="customer")
    assert KEY_RE.match(created["api_key"])
    listed = admin_a.get("api_keys")
    assert {str(r["project_id"]) for r in listed} == {a}
    assert "key_hash" not in listed[0]
    key_b = make_key(db, b, "customer")
    # Another project's key is "not found", and stays live (the answer names no project).
    assert admin_a.rpc("revoke_api_key", lookup_prefix=key_b["lookup_prefix"]) is False
    assert db.execute("SELECT revoked_at FROM core.api_keys WHERE lookup_prefix = %s",
                      (key_b["lookup_prefix"],)).fetchone() == {"revoked_at": None}
    customer_a = Api(dsn).as_("customer", project_id=a)
    with pytest.raises(ApiError) as err:
        customer_a.rpc("create_api_key", role="project_admin")
    assert err.value.status == 403
    assert err.value.message == "permission denied for function create_api_key"


def test_anonymous_callers_only_reach_the_exchange(dsn: str, db: Conn) -> None:
    make_project(db, "acme", "north")
    anon = Api(dsn)
    with pytest.raises(ApiError) as err:
        anon.get("projects")
    assert err.value.status == 401
    assert err.value.message == "permission denied for view projects"
