"""The routing proxy's pure parts (workers/route): what a request is routed by, read from
the request alone, without a JWT secret; the refusals name the input and the fix."""

from __future__ import annotations

import jwt
import pytest

from workers import shards
from workers.errors import UserError
from workers.route import claims
from workers.route.app import make_app
from workers.route.table import Upstream
from workers.settings import load_settings

PROJECT = "0b9e4d5c-6a1f-4c3e-9d2b-7f8e9a0b1c2d"
ORG = "5f2a7e1d-3c4b-4a5e-8f6d-1e2f3a4b5c6d"


def test_the_project_claim_is_read_without_the_secret() -> None:
    token = jwt.encode({"role": "reviewer", "project_id": PROJECT}, "a secret the proxy "
                       "never sees, long enough for HS256", algorithm="HS256")
    assert claims.bearer(f"Bearer {token}") == token
    assert claims.bearer(f"bearer  {token} ") == token
    assert claims.token_project(token) == PROJECT


def test_tokens_without_a_project_or_not_jwts_are_refused_with_the_fix() -> None:
    with pytest.raises(claims.BadToken, match="not 'Bearer <JWT>'"):
        claims.bearer("Basic dXNlcjpwYXNz")
    assert claims.bearer(None) is None and claims.bearer("") is None
    with pytest.raises(claims.BadToken, match="not a JWT") as bad:
        claims.token_project("not.a.jwt")
    assert bad.value.status == 401
    operator = jwt.encode({"role": "admin"}, "s" * 32, algorithm="HS256")
    with pytest.raises(claims.BadToken, match="no project_id claim") as none:
        claims.token_project(operator)
    assert "--api-url" in none.value.hint


def test_file_urls_route_by_the_project_in_the_key() -> None:
    path = f"/files/org/{ORG}/project/{PROJECT}/datasets/d/1/points.parquet"
    assert claims.file_project(path) == PROJECT
    for bad in ("/files/org/x/project/y/z", f"/files/org/{ORG}/project/{PROJECT}",
                f"/files/project/{PROJECT}/a"):
        with pytest.raises(claims.Refused, match="is not a file URL of a project") as exc:
            claims.file_project(bad)
        assert exc.value.status == 404


def test_a_login_names_its_project_or_not() -> None:
    assert claims.login_project(b'{"username": "u", "password": "p", '
                                b'"project": " acme/north "}') == "acme/north"
    assert claims.login_project(b'{"username": "u", "password": "p"}') is None
    assert claims.login_project(b"not json") is None
    assert claims.login_project(b"[1]") is None


def test_a_shard_without_an_upstream_url_names_the_option() -> None:
    up = Upstream("eu-1", "http://api:3000", None)
    assert up.url(False) == "http://api:3000"
    with pytest.raises(claims.Refused, match="shard eu-1 has no file service URL") as exc:
        up.url(True)
    assert "--files-url" in exc.value.hint and exc.value.status == 502


def test_upstream_urls_are_checked() -> None:
    assert shards.base_url(" http://files-1:8600/ ", "--files-url") == "http://files-1:8600"
    assert shards.base_url("https://gw.example.com/api", "--api-url") == \
        "https://gw.example.com/api"
    for bad in ("files-1:8600", "http://x?y=1", "ftp://x"):
        with pytest.raises(UserError, match=r"--api-url .* is not an http"):
            shards.base_url(bad, "--api-url")


def test_without_a_shard_map_the_proxy_is_not_needed() -> None:
    with pytest.raises(UserError, match="without SECINF_SHARDS there is one PostgREST"):
        make_app(load_settings())
