"""The PL/Python JWT module, outside Postgres."""

from __future__ import annotations

import json
import time

import jwt
import pytest

from plpython.jwt_tokens import sign, verify

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
