"""The PL/Python JWT module, outside Postgres."""

from __future__ import annotations

import json
import time

import jwt
import pytest

from plpython.jwt_tokens import check, sign, verify

SECRET = "s" * 40


def test_sign_then_verify_round_trips() -> None:
    claims = {"role": "customer", "project_id": "p", "exp": int(time.time()) + 60}
    token = sign(json.dumps(claims), SECRET)
    assert verify(token, SECRET) == claims


def test_wrong_secret_and_expiry_are_refused() -> None:
    token = sign(json.dumps({"role": "x", "exp": int(time.time()) + 60}), SECRET)
    with pytest.raises(jwt.InvalidSignatureError):
        verify(token, "t" * 40)
    old = sign(json.dumps({"role": "x", "exp": int(time.time()) - 10}), SECRET)
    with pytest.raises(jwt.ExpiredSignatureError):
        verify(old, SECRET)


def test_claims_must_be_an_object() -> None:
    with pytest.raises(ValueError, match="JSON object"):
        sign("[1, 2]", SECRET)


def test_check_reports_why_a_token_is_refused() -> None:
    """`check` is `verify` for SQL callers (auth.verify_jwt): every outcome, never a raise."""
    secret = "s" * 32
    good = sign(json.dumps({"role": "customer", "exp": 4102444800}), secret)
    assert json.loads(check(good, secret)) == {"claims": {"role": "customer", "exp": 4102444800}}
    assert json.loads(check(good, "t" * 32)) == {"error": "signature"}
    expired = sign(json.dumps({"role": "customer", "exp": 1}), secret)
    assert json.loads(check(expired, secret)) == {"error": "expired", "exp": 1}
    early = sign(json.dumps({"role": "customer", "nbf": 4102444800}), secret)
    assert json.loads(check(early, secret)) == {"error": "immature", "nbf": 4102444800}
    assert json.loads(check("a.b.c", secret)) == {"error": "malformed"}
    other = jwt.encode({"role": "customer"}, secret * 2, algorithm="HS512")
    assert json.loads(check(other, secret)) == {"error": "algorithm"}
